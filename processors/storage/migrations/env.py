"""Alembic environment of a processor cell's database, configured from code by
:func:`processors.storage.db.alembic_config`.

The URL comes from ``config.attributes["url"]``. The version table is ``cell_alembic_version`` and only
``cell_*`` tables are compared, so a cell's tables may live in the same database as the switch's own (which
has its own migrations and version table). SQLite migrations run in batch mode (Alembic "batch migrations").
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from processors.storage.db import TABLE_PREFIX, VERSION_TABLE
from processors.storage.tables import metadata
from switch.storage.db import make_engine

config = context.config


def _include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Autogenerate looks at the cell's tables only, never at the switch's sharing the database."""
    return type_ != "table" or (name or "").startswith(TABLE_PREFIX)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = config.attributes["url"]
    context.configure(
        url=url,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
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
