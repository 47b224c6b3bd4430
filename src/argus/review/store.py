"""Kept images: a row each in ``review_items`` and the bytes content-addressed under
``<home>/review`` (the layout of :func:`argus.fsutil.addressed`), bounded by a disk budget.

After each keep the oldest unlabelled images are deleted until the kept bytes fit the budget.
Labelled ones are never deleted by it: a label is a person's work (and its image is filed in
the dataset folder already), so they stay until discarded. Every method is blocking: callers
on an event loop run them in a thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from argus.db.schema import PredictionRecord, ReviewItem, utcnow
from argus.errors import BadInput, Conflict, NotFound
from argus.fsutil import addressed, atomic_write
from argus.models.transactions import write_session
from argus.review.dataset import ExportItem, check_label, content_type, file_image

log = logging.getLogger(__name__)

REASONS = ("uncertain", "disagreement")
MAX_LIMIT = 1000
MIN_PREFIX = 8
_HEX = re.compile(r"^[0-9a-f]{1,64}$")


@dataclass(frozen=True)
class Keep:
    """One image to keep, with what the model made of it."""

    digest: str
    data: bytes
    ext: str
    model: str
    version: int
    question: str
    guess: str
    score: float
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)
    source: str = "http"
    app: str | None = None


def item_dict(row: ReviewItem, record_id: int | None = None) -> dict[str, Any]:
    """A kept image as the API and ``argus review list --json`` show it."""
    return {
        "digest": row.digest,
        "model": row.model,
        "version": row.version,
        "question": row.question,
        "guess": row.guess,
        "score": row.score,
        "reason": row.reason,
        "detail": row.detail,
        "format": row.format,
        "content_type": content_type(row.format),
        "size": row.size,
        "source": row.source,
        "app": row.app,
        "created_at": _iso(row.created_at),
        "label": row.label,
        "labelled_at": _iso(row.labelled_at),
        "filed": row.filed,
        "record_id": record_id,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _record_id() -> Any:
    """The newest prediction record of the same image and question, if one was written
    (records are written off the event loop, after the answer, so their id is looked up
    when read rather than known when the image is kept)."""
    return (
        select(func.max(PredictionRecord.id))
        .where(
            PredictionRecord.image_sha256 == ReviewItem.digest,
            PredictionRecord.question == ReviewItem.question,
        )
        .correlate(ReviewItem)
        .scalar_subquery()
        .label("record_id")
    )


class ReviewStore:
    def __init__(
        self,
        engine: Engine,
        root: Path,
        budget_bytes: int,
        dataset_dir: Callable[[str], Path],
    ) -> None:
        self.engine = engine
        self.root = root
        self.budget_bytes = budget_bytes
        self.dataset_dir = dataset_dir
        """The default dataset folder of a model (``<home>/datasets/NAME``)."""
        self.evicted = 0

    def path(self, digest: str) -> Path:
        return addressed(self.root, digest)

    # -- keeping -----------------------------------------------------------------------

    def keep(self, item: Keep) -> bool:
        """Keep ``item`` (False: that image is kept already), then delete the oldest
        unlabelled images past the budget."""
        with Session(self.engine) as session:
            if session.get(ReviewItem, item.digest) is not None:
                return False
        path = self.path(item.digest)
        wrote = not path.exists()
        if wrote:
            atomic_write(path, item.data)
        row = ReviewItem(
            digest=item.digest, model=item.model[:200], version=item.version,
            question=item.question[:200], guess=item.guess[:200], score=item.score,
            reason=item.reason, detail=item.detail, format=item.ext, size=len(item.data),
            source=item.source[:20], app=item.app[:200] if item.app else None,
            created_at=utcnow(),
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
        except IntegrityError:  # another process kept the same image meanwhile
            return False
        except BaseException:
            if wrote:  # no row will ever name it
                path.unlink(missing_ok=True)
            raise
        self.evict()
        return True

    def used_bytes(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.coalesce(func.sum(ReviewItem.size), 0))) or 0)

    def evict(self) -> int:
        """Delete the oldest unlabelled images until the kept bytes fit the budget; how many
        were deleted."""
        over = self.used_bytes() - self.budget_bytes
        if over <= 0:
            return 0
        with Session(self.engine) as session:
            oldest = session.execute(
                select(ReviewItem.digest, ReviewItem.size)
                .where(ReviewItem.label.is_(None))
                .order_by(ReviewItem.created_at, ReviewItem.digest)
                .limit(1000)
            ).all()
        chosen: list[str] = []
        for digest, size in oldest:
            if over <= 0:
                break
            chosen.append(digest)
            over -= size
        gone: list[str] = []
        with write_session(self.engine) as session:
            for digest in chosen:  # one by one: a row labelled meanwhile is not deleted
                deleted = session.execute(
                    delete(ReviewItem).where(
                        ReviewItem.digest == digest, ReviewItem.label.is_(None)
                    )
                )
                if getattr(deleted, "rowcount", 0):
                    gone.append(digest)
        for digest in gone:
            self.path(digest).unlink(missing_ok=True)
        if over > 0:
            log.warning(
                "kept images take %d bytes over the review budget (%d bytes) and none left "
                "is unlabelled; export and discard labelled ones, or raise "
                "ARGUS_REVIEW_BUDGET_MB", over, self.budget_bytes,
            )
        self.evicted += len(gone)
        return len(gone)

    # -- reading -----------------------------------------------------------------------

    def resolve(self, digest: str) -> str:
        """The full digest of a kept image from its digest or a unique prefix of at least
        8 hex characters."""
        text = digest.strip().lower()
        if not _HEX.match(text):
            raise BadInput(f"{digest!r} is not an image digest (sha256 hex)")
        if len(text) < MIN_PREFIX:
            raise BadInput(f"a digest prefix needs at least {MIN_PREFIX} characters")
        with Session(self.engine) as session:
            if len(text) == 64:
                found = [text] if session.get(ReviewItem, text) is not None else []
            else:
                found = list(session.scalars(
                    select(ReviewItem.digest).where(ReviewItem.digest.like(f"{text}%")).limit(2)
                ))
        if not found:
            raise NotFound(f"no kept image {text!r}")
        if len(found) > 1:  # depends on what is kept now, not on the request's shape
            raise Conflict(f"{text!r} is the start of several kept images' digests; give more")
        return found[0]

    def get(self, digest: str) -> dict[str, Any]:
        full = self.resolve(digest)
        with Session(self.engine) as session:
            found = session.execute(
                select(ReviewItem, _record_id()).where(ReviewItem.digest == full)
            ).first()
            if found is None:
                raise NotFound(f"no kept image {full!r}")
            return item_dict(found[0], found[1])

    def image(self, digest: str) -> tuple[bytes, str]:
        """A kept image's bytes and content type."""
        full = self.resolve(digest)
        with Session(self.engine) as session:
            row = session.get(ReviewItem, full)
            if row is None:
                raise NotFound(f"no kept image {full!r}")
            ext = row.format
        try:
            return self.path(full).read_bytes(), content_type(ext)
        except FileNotFoundError:
            raise NotFound(f"the file of kept image {full!r} is gone") from None

    def items(
        self,
        *,
        model: str | None = None,
        reason: str | None = None,
        labelled: bool | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Kept images, newest first; ``after`` (a digest from the previous page) pages on."""
        if reason is not None and reason not in REASONS:
            raise BadInput(f"reason must be one of {', '.join(REASONS)}, not {reason!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        query = select(ReviewItem, _record_id())
        if model is not None:
            query = query.where(ReviewItem.model == model)
        if reason is not None:
            query = query.where(ReviewItem.reason == reason)
        if labelled is not None:
            query = query.where(
                ReviewItem.label.is_not(None) if labelled else ReviewItem.label.is_(None)
            )
        with Session(self.engine) as session:
            if after is not None:
                mark = session.get(ReviewItem, self.resolve(after))
                if mark is None:
                    raise NotFound(f"no kept image {after!r} to page after")
                query = query.where(or_(
                    ReviewItem.created_at < mark.created_at,
                    and_(ReviewItem.created_at == mark.created_at,
                         ReviewItem.digest < mark.digest),
                ))
            rows = session.execute(
                query.order_by(ReviewItem.created_at.desc(), ReviewItem.digest.desc())
                .limit(limit)
            ).all()
            return [item_dict(row, record_id) for row, record_id in rows]

    # -- labelling ---------------------------------------------------------------------

    def label(self, digest: str, label: str, data_dir: Path | None = None) -> dict[str, Any]:
        """Give a kept image its class: the image is filed as
        ``<data_dir>/<label>/<digest>.<ext>`` (default: its model's dataset folder); a
        relabel moves the file it filed before."""
        check_label(label)
        full = self.resolve(digest)
        with write_session(self.engine) as session:
            # SQLite: the write lock; PostgreSQL: the row's lock. Eviction waits, then sees
            # the label and leaves the image.
            row = session.get(ReviewItem, full, with_for_update=True)
            if row is None:
                raise NotFound(f"no kept image {full!r}")
            try:
                data = self.path(full).read_bytes()
            except FileNotFoundError:
                raise NotFound(f"the file of kept image {full!r} is gone") from None
            folder = data_dir if data_dir is not None else self.dataset_dir(row.model)
            target = file_image(folder, label, full, row.format, data)
            before = row.filed
            row.label, row.labelled_at, row.filed = label, utcnow(), str(target)
        if before and before != str(target):
            Path(before).unlink(missing_ok=True)
        return self.get(full)

    def discard(self, digest: str) -> None:
        """Forget a kept image (a file its label filed in a dataset stays there)."""
        full = self.resolve(digest)
        with write_session(self.engine) as session:
            deleted = session.execute(delete(ReviewItem).where(ReviewItem.digest == full))
            if not getattr(deleted, "rowcount", 0):
                raise NotFound(f"no kept image {full!r}")
        self.path(full).unlink(missing_ok=True)

    def export_items(self, *, model: str | None = None, guesses: bool = False
                     ) -> list[ExportItem]:
        """What ``argus review export`` writes: labelled images under their label, and with
        ``guesses`` the unlabelled ones too, under the model's guess."""
        query = select(ReviewItem).order_by(ReviewItem.created_at, ReviewItem.digest)
        if model is not None:
            query = query.where(ReviewItem.model == model)
        if not guesses:
            query = query.where(ReviewItem.label.is_not(None))
        with Session(self.engine) as session:
            return [
                ExportItem(row.digest, row.format, self.path(row.digest), row.label or row.guess)
                for row in session.scalars(query)
            ]
