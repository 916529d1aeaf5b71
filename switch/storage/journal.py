"""The exchange journal: one row per request/response, durable before the response leaves the switch.

Writes go through :class:`JournalWriter`, a dedicated thread with group commit: it takes everything queued
(up to ``max_batch`` rows, waiting at most ``max_wait`` seconds for more) and writes it in one transaction,
so the fsync (SQLite) or commit round trip (PostgreSQL) is paid once per batch, not per message. On
PostgreSQL the batch goes in with COPY, which measured about twice as fast as executemany here.
Each record's ``done`` callback runs on the writer thread once its batch has committed or failed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, select
from sqlalchemy.exc import DBAPIError

from switch.storage.db import SQLITE_MAX_PARAMETERS
from switch.storage.errors import (
    JournalClosedError,
    JournalTimeoutError,
    JournalWriteError,
    describe,
    storage_errors,
)
from switch.storage.groupcommit import GroupCommit
from switch.storage.models import JOURNAL

log = logging.getLogger(__name__)

OUTCOMES: Final = frozenset(
    {"approved", "declined", "timeout", "unavailable", "stored", "no_route", "format_error", "stand_in", "network",
     "error"}
)
# What switch.masking.mask_pan produces: at most the first six and last four digits in clear.
_MASKED_PAN = re.compile(r"\d{0,6}\*+\d{0,4}")
_PAN_HASH = re.compile(r"[0-9a-f]{64}")

Done = Callable[[BaseException | None], None]


@dataclass(slots=True)
class JournalRecord:
    """One exchange: request in, response out. Card data only masked (first six / last four) or hashed."""

    trace_id: str
    node: str
    source_link: str
    destination: str | None
    route: str | None
    mti_in: str
    mti_out: str | None
    processing_code: str | None
    stan: str | None
    rrn: str | None
    terminal_id: str | None
    pan_masked: str | None
    pan_hash: str | None  # HMAC-SHA256 hex from switch.masking.pan_hash
    amount: int | None
    currency: str | None
    response_code: str | None
    outcome: str
    received_at: datetime  # aware; stored and returned as UTC
    responded_at: datetime
    latency_us: int
    upstream_us: int | None
    request: dict[str, str]  # switch.message.Message.masked()
    response: dict[str, str] | None


def validate(record: JournalRecord) -> None:
    """Refuse a record that could not be stored or would store card data in clear (a caller bug)."""
    if record.outcome not in OUTCOMES:
        raise ValueError(f"journal outcome {record.outcome!r} is not one of {sorted(OUTCOMES)}")
    if record.pan_masked is not None and not _MASKED_PAN.fullmatch(record.pan_masked):
        raise ValueError("pan_masked is not a masked PAN (first six / last four at most)")
    if record.pan_hash is not None and not _PAN_HASH.fullmatch(record.pan_hash):
        raise ValueError("pan_hash is not a lowercase hex HMAC-SHA256")
    if record.received_at.utcoffset() is None:  # None for a naive datetime, whatever its tzinfo says
        raise ValueError("received_at must be timezone-aware")
    if record.responded_at.utcoffset() is None:
        raise ValueError("responded_at must be timezone-aware")


_SCALARS: Final = tuple(
    name for name in JournalRecord.__dataclass_fields__ if name not in ("request", "response")
)
_COLUMNS: Final = (*_SCALARS, "request", "response")
_INSTANTS: Final = (_COLUMNS.index("received_at"), _COLUMNS.index("responded_at"))
_to_json = json.JSONEncoder(separators=(",", ":")).encode

Values = list[Any]  # one row, in _COLUMNS order


def _values(record: JournalRecord) -> Values:
    values = [getattr(record, name) for name in _SCALARS]
    values.append(_to_json(record.request))
    values.append(None if record.response is None else _to_json(record.response))
    return values


def _record(row: Row[Any]) -> JournalRecord:
    values = row._mapping
    response = values["response"]
    return JournalRecord(
        **{name: values[name] for name in _SCALARS},
        request=json.loads(values["request"]),
        response=None if response is None else json.loads(response),
    )


def insert_rows(connection: Connection, rows: Sequence[Values]) -> None:
    """Insert journal rows inside the caller's transaction.

    The two built-in backends skip SQLAlchemy's per-row parameter processing, which profiling showed to
    cost about as much as the insert itself: COPY on psycopg, the driver's executemany on SQLite (with
    timestamps rendered exactly as SQLAlchemy's SQLite DATETIME stores them, so reads see the same
    values). Any other backend goes through a Core executemany.
    """
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy_rows(connection, rows)
    elif dialect.name == "sqlite" and dialect.driver == "pysqlite":
        _sqlite_rows(connection, rows)
    else:
        connection.execute(JOURNAL.insert(), [dict(zip(_COLUMNS, row, strict=True)) for row in rows])


def _copy_rows(connection: Connection, rows: Sequence[Values]) -> None:
    preparer = connection.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in _COLUMNS)
    sql = f"COPY {preparer.format_table(JOURNAL)} ({columns}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


# Rows per multi-row INSERT: powers of two up to this many, so a handful of distinct statements, each prepared
# once and then reused from the driver's statement cache; halved until the columns fit SQLite's bound-parameter
# limit (SQLITE_MAX_PARAMETERS: 256 x 23 on SQLite 3.32+, 32 x 23 before).
_SQLITE_MAX_ROWS: Final = next(n for n in (256, 128, 64, 32, 16, 8, 4, 2, 1)
                               if n * len(_COLUMNS) <= SQLITE_MAX_PARAMETERS)
_sqlite_sql: dict[tuple[str, int], str] = {}


def _sqlite_rows(connection: Connection, rows: Sequence[Values]) -> None:
    """Multi-row ``INSERT ... VALUES (...), (...)`` in chunks, not executemany.

    The sqlite3 module releases the GIL around every row of an executemany, and the writer thread then waits
    for the event loop to give it back each time: measured in a fin-sim profile, executemany was 7% of the
    node's samples. One statement per chunk is one release. (The cells' writer does the same:
    processors/storage/fast.py.)
    """
    for row in rows:
        for index in _INSTANTS:
            # SQLAlchemy's SQLite DATETIME text: "YYYY-MM-DD HH:MM:SS.ffffff", naive UTC.
            row[index] = row[index].astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    table = connection.dialect.identifier_preparer.format_table(JOURNAL)
    start, remaining, size = 0, len(rows), _SQLITE_MAX_ROWS
    while remaining:
        while size > remaining:
            size //= 2
        chunk = rows[start:start + size]
        connection.exec_driver_sql(_sqlite_insert(connection, table, size), tuple(chain.from_iterable(chunk)))
        start += size
        remaining -= size


def _sqlite_insert(connection: Connection, table: str, size: int) -> str:
    sql = _sqlite_sql.get((table, size))
    if sql is None:
        columns = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in _COLUMNS)
        row = "(" + ", ".join("?" for _ in _COLUMNS) + ")"
        sql = _sqlite_sql[table, size] = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row] * size)
    return sql


_Item = tuple[JournalRecord, Done]


class JournalWriter:
    """Group commit on a dedicated thread (:class:`~switch.storage.groupcommit.GroupCommit`): one
    transaction per batch, not per message.

    ``submit`` is thread-safe and never waits for the database. When a batch fails because of one bad
    row (a constraint or data error) the rows are retried one by one so only that row fails; any other
    failure (connection lost, disk full) fails the whole batch, and the writer goes on with the next.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 500, max_wait: float = 0.002) -> None:
        self._engine = engine
        self._thread = GroupCommit(self._write, what="journal writer", max_batch=max_batch, max_wait=max_wait)
        self._batches = 0
        self._rows = 0
        self._largest_batch = 0
        self._failed_rows = 0

    # -- statistics (written by the writer thread only) ---------------------------------------------
    @property
    def batches(self) -> int:
        """Transactions committed."""
        return self._batches

    @property
    def rows(self) -> int:
        """Rows committed."""
        return self._rows

    @property
    def largest_batch(self) -> int:
        return self._largest_batch

    @property
    def failed_rows(self) -> int:
        """Records whose ``done`` was called with an exception."""
        return self._failed_rows

    @property
    def queue_depth(self) -> int:
        """Records submitted and not yet taken by the writer (approximate; for metrics)."""
        return self._thread.queue_depth

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, record: JournalRecord, done: Done) -> None:
        """Queue a record. ``done(None)`` is called on the writer thread once it is committed,
        ``done(exc)`` (a :class:`JournalWriteError`) if its batch failed. Raises ``ValueError`` for
        an invalid record and :class:`JournalClosedError` after :meth:`close`."""
        validate(record)
        if not self._thread.put((record, done)):
            raise JournalClosedError("journal writer is closed")

    def close(self, timeout: float = 10.0) -> None:
        """Flush everything submitted so far, then stop the thread (starting it first if needed)."""
        if not self._thread.close(timeout, start=True):
            raise JournalTimeoutError(f"journal writer still flushing after {timeout} s")

    # -- writer thread ------------------------------------------------------------------------------
    def _write(self, batch: list[_Item]) -> None:
        batch, rows = self._convert(batch)
        if not batch:
            return
        try:
            self._commit(rows)
        except Exception as exc:
            if len(batch) > 1 and self._is_row_error(exc):
                for item in batch:
                    self._write([item])
                return
            self._failed_rows += len(batch)
            log.error("journal batch of %d rows failed: %s", len(batch), describe(exc))
            self._notify(batch, exc)
            return
        self._batches += 1
        self._rows += len(batch)
        self._largest_batch = max(self._largest_batch, len(batch))
        self._notify(batch, None)

    def _convert(self, batch: list[_Item]) -> tuple[list[_Item], list[Values]]:
        """Rows of the records that can be encoded; a record that cannot (say, a field value that is
        not JSON text) fails alone, before the transaction."""
        kept: list[_Item] = []
        rows: list[Values] = []
        for item in batch:
            try:
                rows.append(_values(item[0]))
            except (TypeError, ValueError) as exc:
                self._failed_rows += 1
                self._notify([item], exc)
                continue
            kept.append(item)
        return kept, rows

    def _commit(self, rows: list[Values]) -> None:
        with self._engine.begin() as connection:
            insert_rows(connection, rows)

    def _is_row_error(self, exc: Exception) -> bool:
        """A failure some rows may not share: the DB refused a value (PEP 249 IntegrityError/DataError)."""
        dbapi = self._engine.dialect.loaded_dbapi
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        return isinstance(cause, (dbapi.IntegrityError, dbapi.DataError))

    @staticmethod
    def _notify(batch: list[_Item], cause: Exception | None) -> None:
        for _, done in batch:
            # One exception object per record: each may be raised in a different task.
            error = None if cause is None else _write_error(len(batch), cause)
            try:
                done(error)
            except Exception:
                # A broken callback must not stop the journal for everyone else.
                log.exception("journal done callback raised")


def _write_error(size: int, cause: Exception) -> JournalWriteError:
    error = JournalWriteError(f"journal batch of {size} not committed: {describe(cause)}")
    error.__cause__ = cause
    return error


def find_exchanges(
    engine: Engine,
    *,
    rrn: str | None = None,
    stan: str | None = None,
    trace_id: str | None = None,
    pan_hash: str | None = None,
    terminal_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
) -> list[JournalRecord]:
    """Journal rows matching every criterion given, newest first (all rows when none is given).
    ``since``/``until`` bound ``received_at`` (inclusive / exclusive)."""
    query = select(JOURNAL)
    for column, value in (
        (JOURNAL.c.rrn, rrn),
        (JOURNAL.c.stan, stan),
        (JOURNAL.c.trace_id, trace_id),
        (JOURNAL.c.pan_hash, pan_hash),
        (JOURNAL.c.terminal_id, terminal_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(JOURNAL.c.received_at >= since)
    if until is not None:
        query = query.where(JOURNAL.c.received_at < until)
    query = query.order_by(JOURNAL.c.received_at.desc(), JOURNAL.c.id.desc()).limit(limit)
    with storage_errors("find exchanges"), engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]
