"""Storage of the switch node: journal, store-and-forward queue, routing audit (SQLAlchemy 2 + Alembic).

SQLAlchemy is confined to this package. Everything here is synchronous and thread-safe; trio callers reach
it through the journal writer thread or ``trio.to_thread.run_sync``. Database failures surface as
:class:`~switch.storage.errors.StorageError`; ``Engine`` is re-exported for type annotations, so callers
never import SQLAlchemy themselves.
"""

from sqlalchemy import Engine

from switch.infra.db.engine import make_engine, postgresql_schema_url, sqlite_url
from switch.infra.db.errors import StorageError
from switch.storage.audit import RouteReload, list_route_reloads, record_route_reload
from switch.storage.db import current_revision, downgrade, head_revision, upgrade
from switch.storage.errors import (
    JournalClosedError,
    JournalTimeoutError,
    JournalWriteError,
    SafItemNotFoundError,
    SafStateError,
)
from switch.storage.journal import OUTCOMES, JournalRecord, JournalWriter, find_exchanges
from switch.storage.saf import SafItem, SafStore

__all__ = [
    "OUTCOMES",
    "Engine",
    "JournalClosedError",
    "JournalRecord",
    "JournalTimeoutError",
    "JournalWriteError",
    "JournalWriter",
    "RouteReload",
    "SafItem",
    "SafItemNotFoundError",
    "SafStateError",
    "SafStore",
    "StorageError",
    "current_revision",
    "downgrade",
    "find_exchanges",
    "head_revision",
    "list_route_reloads",
    "make_engine",
    "postgresql_schema_url",
    "record_route_reload",
    "sqlite_url",
    "upgrade",
]
