"""Alembic environment: run against the connection Argus hands over."""

from __future__ import annotations

from alembic import context

from argus.db.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("argus migrations run through argus.db.engine.migrate()")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
