"""The model registry: models, immutable content-addressed versions, moving aliases, apps.

Every change is one transaction that also writes an audit event and bumps the registry
generation, so servers notice moves and no error leaves partial state behind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
from argus.models.packages import PackageStore
from argus.models.versions import ModelInfo, Registered, VersionInfo, canary_bucket

log = logging.getLogger(__name__)

PRODUCTION = "production"
CANARY = "canary"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
__all__ = [
    "CANARY",
    "PRODUCTION",
    "ModelInfo",
    "ModelRegistry",
    "Registered",
    "VersionInfo",
    "canary_bucket",
    "check_name",
]


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise BadInput(
            f"{kind} name {name!r} must be lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class ModelRegistry:
    def __init__(self, engine: Engine, store: PackageStore) -> None:
        self.engine = engine
        self.store = store

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # -- reading ---------------------------------------------------------------------

    def generation(self) -> int:
        with Session(self.engine) as session:
            value = session.scalar(select(RegistryState.generation).where(RegistryState.id == 1))
            return int(value or 0)

    def _model(self, session: Session, name: str) -> Model:
        model = session.scalar(select(Model).where(Model.name == name))
        if model is None:
            raise NotFound(f"no model named {name!r}")
        return model

    def _version(self, session: Session, model: Model, number: int) -> ModelVersion:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.number == number
            )
        )
        if row is None:
            raise NotFound(f"model {model.name!r} has no version {number}")
        return row

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
            return [
                {
                    "id": r.id,
                    "action": r.action,
                    "alias": r.alias,
                    "from_version": r.from_version,
                    "to_version": r.to_version,
                    "actor": r.actor,
                    "detail": r.detail,
                    "at": r.created_at.isoformat(),
                }
                for r in rows
            ]

    # -- writing ---------------------------------------------------------------------

    def _bump(self, session: Session, note: str) -> None:
        state = session.get(RegistryState, 1)
        if state is None:
            session.add(RegistryState(id=1, generation=1, note=note))
        else:
            state.generation += 1
            state.note = note

    def _audit(self, session: Session, model: str, action: str, actor: str, **kw: Any) -> None:
        session.add(AuditEvent(model_name=model, action=action, actor=actor, **kw))

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
    ) -> Registered:
        """Store the package and make it the next version of ``name``; identical content
        answers the existing version instead of creating a duplicate."""
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
    ) -> Registered:
        name = package.name
        for attempt in range(3):
            try:
                with self._tx() as session:
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
                            ModelVersion.model_id == model.id,
                            ModelVersion.digest == package.digest,
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
                        source=package.manifest.source.record(),
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
                        session,
                        name,
                        "register",
                        actor,
                        to_version=number,
                        detail={"digest": package.digest},
                    )
                    if alias is not None:
                        self._move(session, model, alias, row, actor, "alias")
                    self._bump(session, f"register {name}:{number}")
                    aliases = self._aliases_of(session, model)
                    return Registered(self._info(model, row, aliases), True)
            except IntegrityError:
                if attempt == 2:
                    raise Conflict(f"model {name!r} was changed concurrently; try again") from None
        raise AssertionError("unreachable")

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
    ) -> int | None:
        check_name("alias", alias)
        current = session.scalar(
            select(Alias).where(Alias.model_id == model.id, Alias.name == alias)
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
            detail={"percent": percent} if alias == CANARY else {},
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
    ) -> VersionInfo:
        with self._tx() as session:
            model = self._model(session, name)
            row = self._move_target(session, model, version)
            self._move(session, model, alias, row, actor, action, expected_revision)
            if alias == PRODUCTION and action == "promote":
                self._end_canary(session, model, actor)
            self._bump(session, f"{action} {name}@{alias}={version}")
            return self._info(model, row, self._aliases_of(session, model))

    def promote(
        self, name: str, version: int, to: str = PRODUCTION, actor: str = ""
    ) -> VersionInfo:
        return self.set_alias(name, to, version, actor=actor, action="promote")

    def canary(self, name: str, version: int, percent: int, actor: str = "") -> VersionInfo:
        if not 0 <= percent <= 100:
            raise BadInput(f"canary percent must be between 0 and 100, not {percent}")
        with self._tx() as session:
            model = self._model(session, name)
            row = self._move_target(session, model, version)
            self._move(session, model, CANARY, row, actor, "canary", percent=percent)
            self._bump(session, f"canary {name}={version} {percent}%")
            return self._info(model, row, self._aliases_of(session, model))

    def _end_canary(self, session: Session, model: Model, actor: str) -> None:
        canary = session.scalar(
            select(Alias).where(Alias.model_id == model.id, Alias.name == CANARY)
        )
        if canary is not None:
            old = session.get(ModelVersion, canary.version_id)
            session.delete(canary)
            self._audit(
                session,
                model.name,
                "end-canary",
                actor,
                alias=CANARY,
                from_version=old.number if old else None,
            )

    def rollback(self, name: str, alias: str = PRODUCTION, actor: str = "") -> VersionInfo:
        """Move ``alias`` back to where it was before its last move (repeatable: each rollback
        undoes one more move)."""
        with self._tx() as session:
            model = self._model(session, name)
            events = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.model_name == name, AuditEvent.alias == alias)
                .order_by(AuditEvent.id)
            ).all()
            stack: list[int | None] = []
            for ev in events:
                if ev.action in ("alias", "promote", "canary"):
                    stack.append(ev.from_version)
                elif ev.action == "rollback" and stack:
                    stack.pop()
            if not stack or stack[-1] is None:
                raise Conflict(f"alias {alias!r} of {name!r} has no earlier version to go back to")
            target = self._version(session, model, stack[-1])
            self._move(session, model, alias, target, actor, "rollback")
            if alias == PRODUCTION:
                self._end_canary(session, model, actor)
            self._bump(session, f"rollback {name}@{alias}")
            return self._info(model, target, self._aliases_of(session, model))

    def delete_version(self, name: str, version: int, actor: str = "") -> None:
        with self._tx() as session:
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
            session.delete(row)
            self._audit(session, name, "delete", actor, from_version=version)
            self._bump(session, f"delete {name}:{version}")

    # -- apps ------------------------------------------------------------------------

    def add_app(self, name: str, actor: str = "") -> None:
        check_name("app", name)
        try:
            with self._tx() as session:
                session.add(App(name=name))
                self._bump(session, f"app {name}")
        except IntegrityError:
            raise Conflict(f"app {name!r} exists already") from None

    def pin(
        self,
        app: str,
        name: str,
        version: int | None = None,
        alias: str | None = None,
        actor: str = "",
    ) -> dict[str, Any]:
        if (version is None) == (alias is None):
            raise BadInput("pin either a version number or an @alias")
        with self._tx() as session:
            app_row = session.scalar(select(App).where(App.name == app))
            if app_row is None:
                raise NotFound(f"no app named {app!r}")
            model = self._model(session, name)
            version_id = self._version(session, model, version).id if version is not None else None
            pin = session.scalar(
                select(AppPin).where(AppPin.app_id == app_row.id, AppPin.model_id == model.id)
            )
            if pin is None:
                session.add(
                    AppPin(app_id=app_row.id, model_id=model.id, version_id=version_id, alias=alias)
                )
            else:
                pin.version_id, pin.alias, pin.updated_at = version_id, alias, utcnow()
            self._audit(
                session, name, "pin", actor, alias=alias, to_version=version, detail={"app": app}
            )
            self._bump(session, f"pin {app} {name}")
        return {"app": app, "model": name, "version": version, "alias": alias}

    def apps(self) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            out = []
            for app in session.scalars(select(App).order_by(App.name)):
                pins = []
                for pin in session.scalars(select(AppPin).where(AppPin.app_id == app.id)):
                    model = session.get(Model, pin.model_id)
                    row = session.get(ModelVersion, pin.version_id) if pin.version_id else None
                    pins.append(
                        {
                            "model": model.name if model else None,
                            "version": row.number if row else None,
                            "alias": pin.alias,
                        }
                    )
                out.append({"name": app.name, "pins": pins})
            return out
