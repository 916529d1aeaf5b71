"""The switch node's database: its migrations (Alembic scripts shipped in ``migrations/``, driven from code by
:mod:`switch.infra.db.migrate`; no ``alembic.ini``). Engines and URLs come from :mod:`switch.infra.db.engine`.

A PostgreSQL schema other than ``public`` is chosen the libpq way, in the URL:
``postgresql+psycopg://user@host/db?options=-csearch_path%3Dswitch`` (the Alembic version table follows the
search path too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from switch.infra.db.engine import make_engine, postgresql_schema_url, sqlite_url
from switch.infra.db.migrate import Migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# The switch's migrations, recorded in Alembic's default version table "alembic_version".
MIGRATIONS: Final = Migrations(MIGRATIONS_DIR)
alembic_config = MIGRATIONS.config
upgrade = MIGRATIONS.upgrade
downgrade = MIGRATIONS.downgrade
head_revision = MIGRATIONS.head_revision
current_revision = MIGRATIONS.current_revision

__all__ = ["MIGRATIONS", "current_revision", "downgrade", "head_revision", "make_engine", "postgresql_schema_url",
           "sqlite_url", "upgrade"]
