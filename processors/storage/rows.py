"""Loading a cell's working set and writing its effects: Core statements, no ORM objects.

:func:`load_rows` reads what a cell keeps in memory (:class:`~processors.state.CellState`); :func:`write_batch`
stores the snapshots of one or more :class:`~processors.model.Effects` inside the caller's transaction
(the cell's group-commit writer: one transaction per batch of decisions, the answers leave only after it).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import Connection, Engine, Select, delete, or_, select

from processors.model import (
    ROW_TYPES,
    CardEvent,
    Customer,
    EarlyReversal,
    Effects,
    Entry,
    ExceptionItem,
    Hold,
    HoldStatus,
    Posting,
    Row,
    StatementLine,
    Txn,
    Usage,
)
from processors.state import CellState
from processors.storage.db import current_revision, head_revision
from processors.storage.fast import INSERT_ONLY, write_latest
from processors.storage.tables import TABLES, field_names
from switch.infra.db.errors import StorageError, storage_errors

# Postings and entries are the ledger's history: written, checked, never loaded into a cell's memory.
LOADED_TYPES: Final = tuple(row_type for row_type in ROW_TYPES if row_type not in INSERT_ONLY)
# Usage of today and yesterday (UTC business days): a restart just after midnight still sees the day before.
USAGE_DAYS: Final = 2


def _select(row_type: type[Row], now: datetime, retention_days: int) -> Select[Any]:
    table = TABLES[row_type]
    query = select(*(table.c[name] for name in field_names(row_type)))
    if row_type is Hold:
        query = query.where(table.c.status == HoldStatus.OPEN)
    elif row_type is EarlyReversal:
        query = query.where(table.c.expires_at > now)  # past their retention: forgotten (purge_early_reversals)
    elif row_type is ExceptionItem:  # the open ones, and what was resolved within the retention (still listed)
        query = query.where(or_(table.c.status == "open",
                                table.c.created_at >= now - timedelta(days=retention_days)))
    elif row_type is Usage:
        query = query.where(table.c.day > now.date() - timedelta(days=USAGE_DAYS))
    elif row_type is Txn or row_type is CardEvent:
        # In creation order, so that of two transactions with one duplicate key the later one is indexed (a card's
        # audit events, kept as long as the transactions they belong to, likewise).
        return query.where(table.c.created_at >= now - timedelta(days=retention_days)).order_by(
            table.c.created_at, table.c.id
        )
    # In key order: card ids grow with issuance, so a replacement card comes after the card it replaces
    # and CellState.put indexes the newer one for a shared PAN hash.
    return query.order_by(*(table.c[name] for name in row_type.KEY))


def load_rows(engine: Engine, cell: int, now: datetime, retention_days: int) -> list[Row]:
    """Every row a running cell keeps in memory, from its database at ``engine``.

    That is all sequences, customers, credit lines, accounts, cards and installment plans; open holds;
    usage of the last two business days; transactions created within ``retention_days`` of ``now``
    (aware); remembered early reversals not yet expired at ``now``; open exceptions, and the others created
    within ``retention_days``. Postings and entries stay in the
    database. Refuses a database that is not migrated to the newest revision, or that holds customers of
    another cell (a ``database_url`` mix-up).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if retention_days < 0:
        raise ValueError("retention_days must not be negative")
    _check_revision(engine)
    rows: list[Row] = []
    with storage_errors(f"load cell {cell:02d}"), engine.connect() as connection, _gc_paused():
        for row_type in LOADED_TYPES:
            result = connection.execute(_select(row_type, now, retention_days)).all()
            # Columns are selected in dataclass field order, so a result row is the constructor's arguments.
            rows.extend(row_type(*values) for values in result)
    for row in rows:
        if isinstance(row, Customer) and row.cell != cell:
            raise StorageError(
                f"cell {cell:02d} database holds customer {row.id} of cell {row.cell:02d}: wrong database?"
            )
    return rows


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while hundreds of thousands of rows are built (none of them is garbage):
    the collector's repeated full passes over the growing heap cost about a third of a large load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_state(engine: Engine, cell: int, now: datetime, retention_days: int) -> CellState:
    """The cell's working state (:func:`load_rows` indexed by :meth:`CellState.from_rows`), with the mini statement
    lines of its accounts (:func:`load_statement_lines`)."""
    state = CellState.from_rows(cell, load_rows(engine, cell, now, retention_days))
    load_statement_lines(engine, state, now, retention_days)
    return state


def load_statement_lines(engine: Engine, state: CellState, now: datetime, retention_days: int) -> None:
    """Each customer account's newest postings of the last ``retention_days`` into ``state.statements`` (at most
    :data:`~processors.state.STATEMENT_LINES` each), as :meth:`CellState.note_posting` keeps them while the cell
    runs: one line per posting and account, its entries on the account summed. Postings are read in time order
    through their ``created_at`` index, with their entries on customer accounts (GL and sub-ledger entries left
    out in SQL); a statement therefore shows the same lines before and after a restart."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    postings, entries = TABLES[Posting], TABLES[Entry]
    query = (
        select(postings.c.id, postings.c.created_at, postings.c.description, entries.c.account, entries.c.amount,
               entries.c.currency)
        .join(entries, entries.c.posting_id == postings.c.id)
        .where(postings.c.created_at >= now - timedelta(days=retention_days), ~entries.c.account.like("GL:%"))
        .order_by(postings.c.created_at, postings.c.id, entries.c.id)
    )
    accounts = state.accounts
    with storage_errors("load mini statement lines"), engine.connect() as connection, _gc_paused():
        current = ""
        sums: dict[str, tuple[datetime, str, int, str]] = {}
        for posting_id, created_at, description, account, amount, currency in connection.execute(query):
            if posting_id != current:
                _add_lines(state, sums)
                current, sums = posting_id, {}
            if account in accounts:
                known = sums.get(account)
                sums[account] = (created_at, description, amount + (known[2] if known else 0), currency)
        _add_lines(state, sums)


def _add_lines(state: CellState, sums: dict[str, tuple[datetime, str, int, str]]) -> None:
    for account, (created_at, description, amount, currency) in sums.items():
        if amount:
            state.add_statement_line(account, StatementLine(created_at, description, amount, currency))


def purge_early_reversals(engine: Engine, now: datetime) -> int:
    """Delete the remembered early reversals (:class:`~processors.model.EarlyReversal`) expired at ``now``, so
    the table stays bounded by the retention; returns how many rows went. The cell forgets them in memory first
    (:meth:`processors.engine.CellEngine.forget_expired_reversals`); a row the writer stores again after this
    (one applied just before it expired) is deleted by the next purge."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    table = TABLES[EarlyReversal]
    with storage_errors("purge early reversals"), engine.begin() as connection:
        return connection.execute(delete(table).where(table.c.expires_at <= now)).rowcount


def _check_revision(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise StorageError(
            f"cell database is at revision {current or 'none'}, this version needs {head}: run the migrations"
        )


def write_batch(connection: Connection, batches: Sequence[Effects]) -> int:
    """Store the snapshots of ``batches`` inside the caller's transaction; returns the rows written.

    Every snapshot is upserted by its type's KEY; of several snapshots of one row the last one wins (they
    are deduplicated here first, so each row is written once). Postings and entries are insert-only: a row
    already there is kept as it is. Rows go in with one driver call per table, tables in ROW_TYPES order
    (:mod:`processors.storage.fast`: rendered statements, no per-row SQLAlchemy parameter processing).
    The caller owns the transaction (``with engine.begin() as connection: write_batch(connection, ...)``),
    so a failure leaves nothing of the batch behind once it rolls back.
    """
    latest: dict[type[Row], dict[Any, dict[str, Any]]] = {}
    keys = _KEY_GETTERS
    for effects in batches:
        for row_type, snapshot in effects.rows:
            rows = latest.get(row_type)
            if rows is None:
                if row_type not in TABLES:
                    raise TypeError(f"{row_type.__name__} is not a stored row type")
                rows = latest[row_type] = {}
            rows[keys[row_type](snapshot)] = snapshot
    with storage_errors("write cell batch"):
        return write_latest(connection, latest)


# A snapshot's key (a scalar for one-column keys, a tuple otherwise: only compared within one row type).
_KEY_GETTERS: Final[dict[type[Row], Callable[[dict[str, Any]], Any]]] = {
    row_type: itemgetter(*row_type.KEY) for row_type in TABLES
}
