"""Migrations of a processor cell's database, driven from code (no ``alembic.ini``).

The engine itself is the switch's (:func:`switch.storage.db.make_engine`: SQLite in WAL mode with
``synchronous=FULL``, or PostgreSQL through psycopg 3); only the scripts and the version table differ.
Each cell has a database of its own (``[cells] database_url`` with ``{cell}`` in it), but the ``cell_`` table
prefix and the ``cell_alembic_version`` version table also let one share a database with the switch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from switch.storage.errors import StorageError, storage_errors

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE: Final = "cell_alembic_version"
TABLE_PREFIX: Final = "cell_"


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code; the URL travels in ``attributes`` so '%' needs no escaping."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the cell database at ``url`` up to ``revision`` (creates every table on an empty database)."""
    with storage_errors(f"cell database upgrade to {revision}"), _alembic_errors(f"upgrade to {revision}"):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the cell database at ``url`` down to ``revision`` ("base" drops every cell table)."""
    with storage_errors(f"cell database downgrade to {revision}"), _alembic_errors(f"downgrade to {revision}"):
        command.downgrade(alembic_config(url), revision)


@contextmanager
def _alembic_errors(action: str) -> Iterator[None]:
    """Alembic's own errors (unknown revision, multiple heads) as StorageError."""
    try:
        yield
    except CommandError as exc:
        raise StorageError(f"cell database {action}: {exc}") from exc


def head_revision() -> str | None:
    """The newest cell-database migration shipped with this version of the package."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the cell database is at, or None for a database never migrated."""
    with storage_errors("read cell schema revision"), engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
