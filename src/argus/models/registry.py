"""The model registry: models, immutable content-addressed versions, moving aliases, apps.

Every change is one transaction that also writes an audit event and bumps the registry
generation, so servers notice moves and no error leaves partial state behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from argus.contracts import parse_int
from argus.db.schema import (
    Alias,
    App,
    AppPin,
    AuditEvent,
    Model,
    ModelVersion,
    RegistryState,
    utcnow,
)
from argus.errors import BadInput, Conflict, NotFound
from argus.manifest import ModelPackage
from argus.models.apps import AppPins
from argus.models.packages import PackageStore
from argus.models.transactions import (
    Raced,
    audit,
    bump,
    find_model,
    find_version,
    run_write,
)
from argus.models.versions import (
    ModelInfo,
    Registered,
    VersionInfo,
    canary_bucket,
    check_alias,
    check_name,
    check_version,
    event_dict,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Detail = dict[str, Any] | None
"""What an audit event keeps besides the move (the reason given, the scores behind it)."""

PRODUCTION = "production"
CANARY = "canary"
__all__ = [
    "CANARY",
    "PRODUCTION",
    "ModelInfo",
    "ModelRegistry",
    "Registered",
    "VersionInfo",
    "canary_bucket",
    "check_alias",
    "check_name",
    "check_version",
]


class ModelRegistry:
    def __init__(self, engine: Engine, store: PackageStore) -> None:
        self.engine = engine
        self.store = store
        self.app_pins = AppPins(engine)

    def _write(self, work: Callable[[Session], T]) -> T:
        return run_write(self.engine, work)

    _model = staticmethod(find_model)
    _version = staticmethod(find_version)
    _bump = staticmethod(bump)
    _audit = staticmethod(audit)

    # -- reading ---------------------------------------------------------------------

    def generation(self) -> int:
        with Session(self.engine) as session:
            value = session.scalar(select(RegistryState.generation).where(RegistryState.id == 1))
            return int(value or 0)

    def _move_target(self, session: Session, model: Model, number: int) -> ModelVersion:
        """The version an alias is to move to; one that does not exist is a conflict (409),
        not a missing resource: the model is there, the move cannot happen."""
        try:
            return self._version(session, model, number)
        except NotFound:
            raise Conflict(
                f"cannot move an alias of {model.name!r} to version {number}: it has no such "
                "version"
            ) from None

    def _aliases_of(self, session: Session, model: Model) -> dict[str, Alias]:
        rows = session.scalars(select(Alias).where(Alias.model_id == model.id)).all()
        return {a.name: a for a in rows}

    def _info(self, model: Model, row: ModelVersion, aliases: dict[str, Alias]) -> VersionInfo:
        return VersionInfo(
            name=model.name,
            number=row.number,
            digest=row.digest,
            task=row.task,
            path=self.store.path_for(row.digest),
            aliases=sorted(n for n, a in aliases.items() if a.version_id == row.id),
            license=row.license,
            source=dict(row.source or {}),
            parent_version=row.parent_version,
            training_data_digest=row.training_data_digest,
            metrics=dict(row.metrics or {}),
            labels=dict(row.labels or {}),
            created_by=row.created_by,
            created_at=row.created_at,
        )

    def names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Model.name).order_by(Model.name)))

    def show(self, name: str) -> ModelInfo:
        with Session(self.engine) as session:
            model = self._model(session, name)
            aliases = self._aliases_of(session, model)
            rows = session.scalars(
                select(ModelVersion)
                .where(ModelVersion.model_id == model.id)
                .order_by(ModelVersion.number)
            ).all()
            by_id = {r.id: r.number for r in rows}
            canary = aliases.get(CANARY)
            return ModelInfo(
                name=model.name,
                task=model.task,
                versions=[self._info(model, r, aliases) for r in rows],
                aliases={n: by_id[a.version_id] for n, a in sorted(aliases.items())},
                canary_percent=canary.percent if canary else None,
            )

    def digests(self) -> set[str]:
        """The package digest of every registered version."""
        with Session(self.engine) as session:
            return set(session.scalars(select(ModelVersion.digest)))

    def list_models(self) -> list[ModelInfo]:
        return [self.show(name) for name in self.names()]

    def resolve(
        self,
        name: str,
        version: int | None = None,
        alias: str | None = None,
        app: str | None = None,
        route_key: str | None = None,
    ) -> VersionInfo:
        """The exact version a request gets: explicit version, else alias, else the app's pin,
        else the canary share (by ``route_key``, the image digest), else ``production``."""
        if version is not None:
            version = check_version(version)  # every transport's pin: in range or BadInput
        with Session(self.engine) as session:
            model = self._model(session, name)
            aliases = self._aliases_of(session, model)
            if version is not None:
                return self._info(model, self._version(session, model, version), aliases)
            if alias is None and app is not None:
                pin = self._pin(session, app, model)
                if pin is not None:
                    if pin.version_id is not None:
                        row = session.get(ModelVersion, pin.version_id)
                        if row is None:
                            raise NotFound(f"app {app!r} pins a version of {name!r} that is gone")
                        return self._info(model, row, aliases)
                    alias = pin.alias
            if alias is None:
                canary = aliases.get(CANARY)
                # bucket < percent also means percent > 0: a 0% canary takes nothing
                if (
                    canary is not None
                    and route_key is not None
                    and canary_bucket(route_key) < canary.percent
                ):
                    alias = CANARY
                alias = alias or PRODUCTION
                if alias == PRODUCTION and PRODUCTION not in aliases:
                    # A model nobody promoted yet answers with its newest version.
                    row = session.scalar(
                        select(ModelVersion)
                        .where(ModelVersion.model_id == model.id)
                        .order_by(ModelVersion.number.desc())
                        .limit(1)
                    )
                    if row is None:
                        raise NotFound(f"model {name!r} has no versions")
                    return self._info(model, row, aliases)
            if alias not in aliases:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            row = session.get(ModelVersion, aliases[alias].version_id)
            if row is None:
                raise NotFound(f"alias {alias!r} of {name!r} points at a missing version")
            return self._info(model, row, aliases)

    def _pin(self, session: Session, app: str, model: Model) -> AppPin | None:
        app_row = session.scalar(select(App).where(App.name == app))
        if app_row is None:
            raise NotFound(f"no app named {app!r}")
        return session.scalar(
            select(AppPin).where(AppPin.app_id == app_row.id, AppPin.model_id == model.id)
        )

    def history(self, name: str) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            self._model(session, name)
            rows = session.scalars(
                select(AuditEvent).where(AuditEvent.model_name == name).order_by(AuditEvent.id)
            ).all()
            return [event_dict(r) for r in rows]

    # -- writing ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        src_dir: Path,
        fields: dict[str, Any],
        *,
        actor: str = "",
        parent_version: int | None = None,
        training_data_digest: str | None = None,
        metrics: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
        alias: str | None = None,
        source: dict[str, Any] | None = None,
    ) -> Registered:
        """Store the package and make it the next version of ``name``; identical content
        answers the existing version instead of creating a duplicate. ``source`` (where it
        came from) is kept with the version, not in the package, so it is no part of the
        identity: the same file added from two folders is one version."""
        check_name("model", name)
        package = self.store.add(src_dir, {**fields, "name": name})
        return self.register_package(
            package,
            actor=actor,
            parent_version=parent_version,
            training_data_digest=training_data_digest,
            metrics=metrics,
            labels=labels,
            alias=alias,
            source=source,
        )

    def register_package(
        self,
        package: ModelPackage,
        *,
        actor: str = "",
        parent_version: int | None = None,
        training_data_digest: str | None = None,
        metrics: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
        alias: str | None = None,
        source: dict[str, Any] | None = None,
    ) -> Registered:
        name = package.name
        if parent_version is not None:
            parent_version = check_version(parent_version, "parent version")

        def work(session: Session) -> Registered:
            model = session.scalar(select(Model).where(Model.name == name))
            if model is None:
                model = Model(name=name, task=package.task, last_number=0)
                session.add(model)
                session.flush()
            elif model.task != package.task:
                raise Conflict(
                    f"model {name!r} is a {model.task} model; a {package.task} package "
                    "cannot be a version of it"
                )
            existing = session.scalar(
                select(ModelVersion).where(
                    ModelVersion.model_id == model.id, ModelVersion.digest == package.digest
                )
            )
            if existing is not None:
                return Registered(
                    self._info(model, existing, self._aliases_of(session, model)), False
                )
            number = model.last_number + 1
            model.last_number = number
            if parent_version is not None:
                self._version(session, model, parent_version)
            row = ModelVersion(
                model_id=model.id,
                number=number,
                digest=package.digest,
                task=package.task,
                source={**package.manifest.source.record(), **(source or {})},
                license=package.manifest.license,
                parent_version=parent_version,
                training_data_digest=training_data_digest,
                metrics=metrics or {},
                labels=labels or {},
                created_by=actor,
            )
            session.add(row)
            session.flush()
            self._audit(
                session, name, "register", actor, to_version=number,
                detail={"digest": package.digest},
            )
            if alias is not None:
                self._move(session, model, alias, row, actor, "alias")
            self._bump(session, f"register {name}:{number}")
            return Registered(self._info(model, row, self._aliases_of(session, model)), True)

        return self._write(work)

    def _move(
        self,
        session: Session,
        model: Model,
        alias: str,
        row: ModelVersion,
        actor: str,
        action: str,
        expected_revision: int | None = None,
        percent: int = 100,
        detail: dict[str, Any] | None = None,
    ) -> int | None:
        check_alias(alias)
        # Locked (PostgreSQL) so concurrent moves of one alias queue instead of racing.
        current = session.scalar(
            select(Alias).where(Alias.model_id == model.id, Alias.name == alias).with_for_update()
        )
        before: int | None = None
        if current is None:
            if expected_revision not in (None, 0):
                raise Conflict(f"alias {alias!r} of {model.name!r} was removed meanwhile")
            session.add(Alias(model_id=model.id, name=alias, version_id=row.id, percent=percent))
        else:
            old = session.get(ModelVersion, current.version_id)
            before = old.number if old else None
            revision = current.revision if expected_revision is None else expected_revision
            result = session.execute(
                update(Alias)
                .where(Alias.id == current.id, Alias.revision == revision)
                .values(
                    version_id=row.id,
                    percent=percent,
                    revision=Alias.revision + 1,
                    updated_at=utcnow(),
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                if expected_revision is None:
                    raise Raced  # nobody asked for a revision: redo the move on fresh rows
                raise Conflict(
                    f"alias {alias!r} of {model.name!r} was moved by someone else meanwhile; "
                    "look again and retry"
                )
        self._audit(
            session,
            model.name,
            action,
            actor,
            alias=alias,
            from_version=before,
            to_version=row.number,
            detail={**({"percent": percent} if alias == CANARY else {}), **(detail or {})},
        )
        return before

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str = "",
        action: str = "alias",
        expected_revision: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> VersionInfo:
        """Point ``alias`` at ``version``; ``detail`` is kept in the audit event (why: the
        scores behind a promotion, say)."""
        version = check_version(version)
        check_alias(alias)

        def work(session: Session) -> VersionInfo:
            model = self._model(session, name)
            row = self._move_target(session, model, version)
            self._move(
                session, model, alias, row, actor, action, expected_revision, detail=detail
            )
            if alias == PRODUCTION and action == "promote":
                self._end_canary(session, model, actor)
            self._bump(session, f"{action} {name}@{alias}={version}")
            return self._info(model, row, self._aliases_of(session, model))

        return self._write(work)

    def promote(
        self,
        name: str,
        version: int,
        to: str = PRODUCTION,
        actor: str = "",
        detail: dict[str, Any] | None = None,
    ) -> VersionInfo:
        return self.set_alias(name, to, version, actor=actor, action="promote", detail=detail)

    def canary(self, name: str, version: int, percent: int, actor: str = "",
               detail: Detail = None) -> VersionInfo:
        version = check_version(version)
        share = parse_int("canary percent", percent, 0, 100)
        if share is None:
            raise BadInput("canary percent is missing")

        def work(session: Session) -> VersionInfo:
            model = self._model(session, name)
            row = self._move_target(session, model, version)
            self._move(session, model, CANARY, row, actor, "canary", percent=share, detail=detail)
            self._bump(session, f"canary {name}={version} {share}%")
            return self._info(model, row, self._aliases_of(session, model))

        return self._write(work)

    def _end_canary(self, session: Session, model: Model, actor: str,
                    detail: Detail = None) -> bool:
        canary = session.scalar(
            select(Alias).where(Alias.model_id == model.id, Alias.name == CANARY)
        )
        if canary is None:
            return False
        old = session.get(ModelVersion, canary.version_id)
        session.delete(canary)
        before = old.number if old else None
        self._audit(session, model.name, "end-canary", actor, alias=CANARY, from_version=before,
                    detail=detail or {})
        return True

    def end_canary(self, name: str, actor: str = "", detail: Detail = None) -> None:
        """Stop sending a share of traffic to the canary version (production takes it all)."""

        def work(session: Session) -> None:
            model = self._model(session, name)
            if not self._end_canary(session, model, actor, detail):
                raise NotFound(f"model {name!r} has no canary running")
            self._bump(session, f"end canary {name}")

        self._write(work)

    def delete_alias(self, name: str, alias: str, actor: str = "") -> None:
        """Remove an alias (refused while an app is pinned to it); ``rollback`` restores it."""

        def work(session: Session) -> None:
            model = self._model(session, name)
            current = self._aliases_of(session, model).get(alias)
            if current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            pinned = session.scalars(
                select(App.name)
                .join(AppPin, AppPin.app_id == App.id)
                .where(AppPin.model_id == model.id, AppPin.alias == alias)
            ).all()
            if pinned:
                raise Conflict(
                    f"alias {alias!r} of {name!r} is pinned by app {', '.join(sorted(pinned))}; "
                    "unpin it first"
                )
            old = session.get(ModelVersion, current.version_id)
            session.delete(current)
            self._audit(
                session, name, "delete-alias", actor, alias=alias,
                from_version=old.number if old else None,
            )
            self._bump(session, f"delete alias {name}@{alias}")

        self._write(work)

    def rollback(self, name: str, alias: str = PRODUCTION, actor: str = "",
                 detail: Detail = None) -> VersionInfo:
        """Move ``alias`` back to where it was before its last move (repeatable: each rollback
        undoes one more move; a removed alias comes back). ``detail`` (a reason, say) is kept
        in the audit event."""

        def work(session: Session) -> VersionInfo:
            model = self._model(session, name)
            events = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.model_name == name, AuditEvent.alias == alias)
                .order_by(AuditEvent.id)
            ).all()
            stack: list[int | None] = []
            for ev in events:
                if ev.action in ("alias", "promote", "canary", "delete-alias"):
                    stack.append(ev.from_version)
                elif ev.action == "rollback" and stack:
                    stack.pop()
            if not stack or stack[-1] is None:
                raise Conflict(f"alias {alias!r} of {name!r} has no earlier version to go back to")
            target = self._move_target(session, model, stack[-1])
            self._move(session, model, alias, target, actor, "rollback", detail=detail)
            if alias == PRODUCTION:
                self._end_canary(session, model, actor)
            self._bump(session, f"rollback {name}@{alias}")
            return self._info(model, target, self._aliases_of(session, model))

        return self._write(work)

    def delete_version(
        self,
        name: str,
        version: int,
        actor: str = "",
        graphs: Mapping[str, Iterable[tuple[str, int | None]]] | None = None,
    ) -> VersionInfo:
        """Remove a version. Refused while an alias or app pin points at it, or while a
        question graph (``graphs``: question → the (model, pinned version or None) of each
        model step) would lose it: a graph pinning this version, or any graph using the
        model when this is its last version. Its package files go when no version of any
        model uses that digest any more."""
        version = check_version(version)

        def work(session: Session) -> VersionInfo:
            model = self._model(session, name)
            row = self._version(session, model, version)
            pointing = session.scalars(select(Alias.name).where(Alias.version_id == row.id)).all()
            if pointing:
                raise Conflict(
                    f"version {version} of {name!r} is still the target of alias "
                    f"{', '.join(sorted(pointing))}; move the alias first"
                )
            pinned = session.scalars(
                select(App.name)
                .join(AppPin, AppPin.app_id == App.id)
                .where(AppPin.version_id == row.id)
            ).all()
            if pinned:
                raise Conflict(
                    f"version {version} of {name!r} is pinned by app {', '.join(sorted(pinned))}"
                )
            others = session.scalars(
                select(ModelVersion.id).where(
                    ModelVersion.model_id == model.id, ModelVersion.id != row.id
                )
            ).all()
            users = sorted(
                question
                for question, refs in (graphs or {}).items()
                if any(m == name and (v == version or (v is None and not others))
                       for m, v in refs)
            )
            if users:
                raise Conflict(
                    f"version {version} of {name!r} is used by question "
                    f"{', '.join(users)}; remove or change the question first"
                )
            info = self._info(model, row, {})
            session.delete(row)
            self._audit(session, name, "delete", actor, from_version=version)
            self._bump(session, f"delete {name}:{version}")
            return info

        removed = self._write(work)
        self._drop_package(removed.digest)
        return removed

    def _drop_package(self, digest: str) -> None:
        """Delete a package's files once no version refers to its digest. A server that
        loaded it keeps its session until the generation bump makes it re-resolve."""
        with Session(self.engine) as session:
            still = session.scalar(
                select(ModelVersion.id).where(ModelVersion.digest == digest).limit(1)
            )
        if still is None:
            self.store.remove(digest)

    # -- apps: argus.models.apps (these three stay for existing callers) ----------------

    def add_app(self, name: str, actor: str = "") -> None:
        self.app_pins.add(name, actor)

    def pin(self, app: str, name: str, version: int | None = None, alias: str | None = None,
            actor: str = "") -> dict[str, Any]:
        return self.app_pins.pin(app, name, version, alias, actor)

    def apps(self) -> list[dict[str, Any]]:
        return self.app_pins.list()

    def app(self, name: str) -> dict[str, Any]:
        return self.app_pins.show(name)
