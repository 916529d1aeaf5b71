"""Alembic environment, configured from code by :func:`switch.storage.db.alembic_config`.

The URL comes from ``config.attributes["url"]``; a caller that already holds a connection may pass it
as ``config.attributes["connection"]`` instead. SQLite migrations run in batch mode, because SQLite can
only change most of a table by copying it (Alembic "batch migrations").
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from switch.storage.db import make_engine
from switch.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = config.attributes["url"]
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = make_engine(config.attributes["url"], poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
