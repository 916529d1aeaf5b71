"""Alembic environment of a processor cell's database, configured from code by
:func:`processors.storage.db.alembic_config` and run by :func:`switch.infra.db.migrate.run_env`.

The version table is ``cell_alembic_version`` and only ``cell_*`` tables are compared, so a cell's tables may
live in the same database as the switch's own (which has its own migrations and version table).
"""

from __future__ import annotations

from typing import Any

from processors.storage.db import TABLE_PREFIX, VERSION_TABLE
from processors.storage.tables import metadata
from switch.infra.db.migrate import run_env


def _include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Autogenerate looks at the cell's tables only, never at the switch's sharing the database."""
    return type_ != "table" or (name or "").startswith(TABLE_PREFIX)


run_env(metadata, version_table=VERSION_TABLE, include_name=_include_name)
