"""Migrations of a processor cell's database, driven from code (:mod:`switch.infra.db.migrate`; no
``alembic.ini``).

The engine itself is the switch's (:func:`switch.storage.db.make_engine`: SQLite in WAL mode with
``synchronous=FULL``, or PostgreSQL through psycopg 3); only the scripts and the version table differ.
Each cell has a database of its own (``[cells] database_url`` with ``{cell}`` in it), but the ``cell_`` table
prefix and the ``cell_alembic_version`` version table also let one share a database with the switch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from switch.infra.db.migrate import Migrations

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE: Final = "cell_alembic_version"
TABLE_PREFIX: Final = "cell_"


MIGRATIONS: Final = Migrations(MIGRATIONS_DIR, version_table=VERSION_TABLE, name="cell")
alembic_config = MIGRATIONS.config
upgrade = MIGRATIONS.upgrade
downgrade = MIGRATIONS.downgrade
head_revision = MIGRATIONS.head_revision
current_revision = MIGRATIONS.current_revision
