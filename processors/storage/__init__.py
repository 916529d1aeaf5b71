"""Storage of a processor cell's database (SQLAlchemy 2 Core + Alembic), separate from the switch's own.

- :func:`upgrade` / :func:`downgrade` / :func:`current_revision` / :func:`head_revision`: the cell schema's
  migrations (version table ``cell_alembic_version``);
- :func:`load_rows` / :func:`load_state`: a cell's working set at start;
- :func:`purge_early_reversals`: delete remembered early reversals past their retention;
- :func:`write_batch`: the group-commit writer's upsert of effects, inside the caller's transaction;
- :func:`ledger_check`: the double-entry invariants, verified in SQL.

Engines come from :func:`switch.storage.db.make_engine` (re-exported); failures surface as
:class:`~switch.storage.errors.StorageError`. Everything here is synchronous: a trio caller uses a thread.
"""

from sqlalchemy import Connection, Engine

from processors.storage.db import VERSION_TABLE, current_revision, downgrade, head_revision, upgrade
from processors.storage.ledger import LedgerReport, ledger_check
from processors.storage.rows import load_rows, load_state, purge_early_reversals, write_batch
from processors.storage.tables import TABLE_NAMES, TABLES
from switch.infra.db.engine import make_engine, sqlite_url
from switch.infra.db.errors import StorageError

__all__ = [
    "TABLES",
    "TABLE_NAMES",
    "VERSION_TABLE",
    "Connection",
    "Engine",
    "LedgerReport",
    "StorageError",
    "current_revision",
    "downgrade",
    "head_revision",
    "ledger_check",
    "load_rows",
    "load_state",
    "make_engine",
    "purge_early_reversals",
    "sqlite_url",
    "upgrade",
    "write_batch",
]
