"""Alembic environment: the connection comes from the Store (config.attributes['connection'])."""

from __future__ import annotations

from alembic import context

from w2s_app.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through w2s_app.store (Store.upgrade / migrate)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
