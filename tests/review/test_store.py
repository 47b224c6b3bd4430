"""The review store on SQLite and PostgreSQL: kept once, listed newest first with paging,
bounded by its disk budget (oldest unlabelled first out), labels filed into the dataset
folder under the agreed names, discarded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from argus.db.engine import make_engine, migrate
from argus.db.schema import ReviewItem
from argus.errors import BadInput, NotFound
from argus.review import Keep, ReviewStore


def keep_of(data: bytes, model: str = "tiny", reason: str = "uncertain") -> Keep:
    return Keep(
        digest=hashlib.sha256(data).hexdigest(), data=data, ext="png", model=model,
        version=1, question=model, guess="red", score=0.3, reason=reason,
        detail={"labels": [{"label": "red", "score": 0.3}]},
    )


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[ReviewStore]:
    engine = make_engine(db_url)
    migrate(engine)
    try:
        yield ReviewStore(engine, tmp_path / "review", 1000,
                          lambda model: tmp_path / "datasets" / model)
    finally:
        engine.dispose()


def age(store: ReviewStore, digests: list[str]) -> None:
    """Make ``digests`` kept one minute apart, oldest first (no two share a time)."""
    with Session(store.engine) as session, session.begin():
        for i, digest in enumerate(digests):
            first = session.get(ReviewItem, digest)
            assert first is not None
            session.execute(update(ReviewItem).where(ReviewItem.digest == digest).values(
                created_at=first.created_at - timedelta(minutes=len(digests) - i)))


def test_an_image_is_kept_once(store: ReviewStore) -> None:
    item = keep_of(b"x" * 10)
    assert store.keep(item) is True
    assert store.keep(item) is False
    assert store.path(item.digest).read_bytes() == b"x" * 10
    assert store.path(item.digest).is_relative_to(store.root)
    got = store.get(item.digest[:10])
    assert (got["digest"], got["guess"], got["reason"], got["label"], got["size"]) == (
        item.digest, "red", "uncertain", None, 10)
    assert got["content_type"] == "image/png" and got["record_id"] is None


def test_listing_filters_and_pages_newest_first(store: ReviewStore) -> None:
    items = [keep_of(bytes([i]) * 5, model="a" if i % 2 else "b",
                     reason="disagreement" if i == 3 else "uncertain") for i in range(6)]
    for item in items:
        store.keep(item)
    age(store, [i.digest for i in items])
    newest_first = [i.digest for i in reversed(items)]
    assert [x["digest"] for x in store.items()] == newest_first
    page = store.items(limit=4)
    rest = store.items(limit=4, after=page[-1]["digest"])
    assert [x["digest"] for x in page + rest] == newest_first
    assert [x["digest"] for x in store.items(model="a")] == [items[5].digest, items[3].digest,
                                                             items[1].digest]
    assert [x["digest"] for x in store.items(reason="disagreement")] == [items[3].digest]
    store.label(items[0].digest, "cat")
    assert [x["digest"] for x in store.items(labelled=True)] == [items[0].digest]
    assert len(store.items(labelled=False)) == 5
    with pytest.raises(BadInput):
        store.items(reason="bored")


def test_the_budget_deletes_the_oldest_unlabelled_images(store: ReviewStore) -> None:
    items = [keep_of(bytes([i]) * 300) for i in range(3)]  # 900 of 1000 bytes
    for item in items:
        store.keep(item)
    age(store, [i.digest for i in items])
    store.label(items[0].digest, "cat")  # the oldest, but labelled: it stays
    newest = keep_of(b"n" * 300)
    store.keep(newest)  # 1200 bytes: the oldest unlabelled one (items[1]) goes
    left = {x["digest"] for x in store.items()}
    assert left == {items[0].digest, items[2].digest, newest.digest}
    assert not store.path(items[1].digest).exists()
    assert store.used_bytes() == 900
    assert store.evicted == 1


def test_a_label_files_the_image_into_its_models_dataset(store: ReviewStore, tmp_path: Path
                                                         ) -> None:
    item = keep_of(b"picture")
    store.keep(item)
    labelled = store.label(item.digest, "cat")
    filed = tmp_path / "datasets" / "tiny" / "cat" / f"{item.digest}.png"
    assert filed.read_bytes() == b"picture"
    assert labelled["label"] == "cat" and labelled["filed"] == str(filed)
    assert labelled["labelled_at"] is not None
    again = store.label(item.digest, "dog")  # a relabel moves the file
    assert not filed.exists()
    assert (tmp_path / "datasets" / "tiny" / "dog" / f"{item.digest}.png").is_file()
    assert again["label"] == "dog"
    elsewhere = store.label(item.digest, "dog", tmp_path / "mine")
    assert Path(elsewhere["filed"]) == tmp_path / "mine" / "dog" / f"{item.digest}.png"
    assert not (tmp_path / "datasets" / "tiny" / "dog" / f"{item.digest}.png").exists()


def test_a_bad_label_files_nothing(store: ReviewStore, tmp_path: Path) -> None:
    item = keep_of(b"picture")
    store.keep(item)
    for label in ("", "..", "a/b", "x" * 101, "bad\nline"):
        with pytest.raises(BadInput):
            store.label(item.digest, label)
    assert not (tmp_path / "datasets").exists()
    assert store.get(item.digest)["label"] is None


def test_unknown_or_malformed_digests(store: ReviewStore) -> None:
    with pytest.raises(NotFound):
        store.get("0" * 64)
    with pytest.raises(NotFound):
        store.label("0" * 64, "cat")
    with pytest.raises(BadInput):
        store.get("not-hex")
    with pytest.raises(BadInput):
        store.get("abc")  # too short a prefix


def test_discard_forgets_the_image(store: ReviewStore, tmp_path: Path) -> None:
    item = keep_of(b"picture")
    store.keep(item)
    store.label(item.digest, "cat")
    store.discard(item.digest)
    assert store.items() == []
    assert not store.path(item.digest).exists()
    assert (tmp_path / "datasets" / "tiny" / "cat" / f"{item.digest}.png").is_file()
    with pytest.raises(NotFound):
        store.discard(item.digest)


def test_export_items_are_labelled_unless_guesses_are_asked(store: ReviewStore) -> None:
    first, second = keep_of(b"one"), keep_of(b"two")
    store.keep(first)
    store.keep(second)
    store.label(first.digest, "cat")
    assert [(i.digest, i.label) for i in store.export_items()] == [(first.digest, "cat")]
    assert {(i.digest, i.label) for i in store.export_items(guesses=True)} == {
        (first.digest, "cat"), (second.digest, "red")}
