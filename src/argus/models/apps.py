"""Applications and the model versions they are pinned to: add, remove, pin, unpin, show.

Every change is audited. A pin is also an event in its model's history; an app's own events
(created, removed, pinned, unpinned) are kept under ``app:NAME`` (model names cannot hold a
colon), which is what ``apps show`` lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from argus.db.schema import App, AppPin, AuditEvent, Model, ModelVersion, utcnow
from argus.errors import BadInput, Conflict, NotFound
from argus.models.transactions import audit, bump, find_model, find_version, run_write
from argus.models.versions import check_alias, check_name, check_version, event_dict


def _subject(app: str) -> str:
    return f"app:{app}"


class AppPins:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _app(self, session: Session, name: str) -> App:
        row = session.scalar(select(App).where(App.name == name))
        if row is None:
            raise NotFound(f"no app named {name!r}")
        return row

    def add(self, name: str, actor: str = "") -> None:
        check_name("app", name)

        def work(session: Session) -> None:
            if session.scalar(select(App.id).where(App.name == name)) is not None:
                raise Conflict(f"app {name!r} exists already")
            session.add(App(name=name))
            session.flush()
            audit(session, _subject(name), "add-app", actor)
            bump(session, f"app {name}")

        run_write(self.engine, work)

    def remove(self, name: str, actor: str = "") -> None:
        """Remove an app and its pins; requests naming it are then refused (404)."""

        def work(session: Session) -> None:
            row = self._app(session, name)
            session.execute(delete(AppPin).where(AppPin.app_id == row.id))
            session.execute(delete(App).where(App.id == row.id))
            audit(session, _subject(name), "remove-app", actor)
            bump(session, f"remove app {name}")

        run_write(self.engine, work)

    def pin(
        self,
        app: str,
        name: str,
        version: int | None = None,
        alias: str | None = None,
        actor: str = "",
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Pin ``app`` to a version or an alias of model ``name``; ``detail`` (a reason, say)
        goes into the audit events."""
        if (version is None) == (alias is None):
            raise BadInput("pin either a version number or an @alias")
        if version is not None:
            version = check_version(version)
        if alias is not None:
            check_alias(alias)

        def work(session: Session) -> None:
            app_row = self._app(session, app)
            model = find_model(session, name)
            version_id = find_version(session, model, version).id if version is not None else None
            pin = session.scalar(
                select(AppPin).where(AppPin.app_id == app_row.id, AppPin.model_id == model.id)
            )
            if pin is None:
                session.add(
                    AppPin(app_id=app_row.id, model_id=model.id, version_id=version_id, alias=alias)
                )
            else:
                pin.version_id, pin.alias, pin.updated_at = version_id, alias, utcnow()
            for subject in (name, _subject(app)):
                audit(
                    session, subject, "pin", actor, alias=alias, to_version=version,
                    detail={"app": app, "model": name, **(detail or {})},
                )
            bump(session, f"pin {app} {name}")

        run_write(self.engine, work)
        return {"app": app, "model": name, "version": version, "alias": alias}

    def unpin(
        self, app: str, name: str, actor: str = "", detail: dict[str, Any] | None = None
    ) -> None:
        """Drop the app's pin of a model: it then gets what un-pinned requests get."""

        def work(session: Session) -> None:
            app_row = self._app(session, app)
            model = find_model(session, name)
            pin = session.scalar(
                select(AppPin).where(AppPin.app_id == app_row.id, AppPin.model_id == model.id)
            )
            if pin is None:
                raise NotFound(f"app {app!r} has no pin for model {name!r}")
            row = session.get(ModelVersion, pin.version_id) if pin.version_id else None
            session.delete(pin)
            for subject in (name, _subject(app)):
                audit(
                    session, subject, "unpin", actor, alias=pin.alias,
                    from_version=row.number if row else None,
                    detail={"app": app, "model": name, **(detail or {})},
                )
            bump(session, f"unpin {app} {name}")

        run_write(self.engine, work)

    def _pins(self, session: Session, app: App) -> list[dict[str, Any]]:
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
        return sorted(pins, key=lambda p: str(p["model"]))

    def show(self, name: str) -> dict[str, Any]:
        """An app: its pins and its history (oldest first)."""
        with Session(self.engine) as session:
            app = self._app(session, name)
            events = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.model_name == _subject(name))
                .order_by(AuditEvent.id)
            ).all()
            return {
                "name": app.name,
                "created_at": app.created_at.isoformat() if app.created_at else None,
                "pins": self._pins(session, app),
                "history": [event_dict(e) for e in events],
            }

    def list(self) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            return [
                {"name": app.name, "pins": self._pins(session, app)}
                for app in session.scalars(select(App).order_by(App.name))
            ]
