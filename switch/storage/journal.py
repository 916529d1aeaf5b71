"""The exchange journal: one row per request/response, durable before the response leaves the switch.

Writes go through :class:`JournalWriter`, a dedicated thread with group commit: it takes everything queued
(up to ``max_batch`` rows, waiting at most ``max_wait`` seconds for more) and writes it in one transaction,
so the fsync (SQLite) or commit round trip (PostgreSQL) is paid once per batch, not per message. On
PostgreSQL the batch goes in with COPY, which measured about twice as fast as executemany here.
Each record's ``done`` callback runs on the writer thread once its batch has committed or failed.

What a row costs was measured with 0200 purchases (fin-sim): the writer keeps one DBAPI connection across
batches (SQLAlchemy's checkout, transaction and execution layers were ~100 µs per batch, most of a small
batch's CPU); the response is stored as its difference from the request (most response fields echo the
request: 3 fields instead of 18); and ``pan_hash`` has no index (a random key: every row dirtied its own
index page, written to the WAL at each commit), so a card lookup is bounded in time, see
:func:`find_exchanges`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import Any, Final

from sqlalchemy import Engine, Row, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from switch.infra.db.engine import SQLITE_MAX_PARAMETERS
from switch.infra.db.errors import describe, storage_errors
from switch.infra.groupcommit import GroupCommit
from switch.storage.errors import JournalClosedError, JournalTimeoutError, JournalWriteError
from switch.storage.models import JOURNAL
from switch.storage.records import JournalRecord, validate

log = logging.getLogger(__name__)

# How far back a lookup by card (pan_hash) goes when the caller gives no ``since``: see find_exchanges.
CARD_LOOKUP_WINDOW: Final = timedelta(hours=24)

Done = Callable[[BaseException | None], None]







# -- rows -------------------------------------------------------------------------------------------------
# Column order of an encoded row: the plain scalars, the two instants, then the JSON columns.
_INSTANTS: Final = ("received_at", "responded_at")
_SCALARS: Final = tuple(
    name for name in JournalRecord.__dataclass_fields__ if name not in ("request", "response", *_INSTANTS)
)
_COLUMNS: Final = (*_SCALARS, *_INSTANTS, "request", "response", "response_delta")
_scalars_of: Final = attrgetter(*_SCALARS)
# check_circular off: the dicts are flat str -> str, and the circularity bookkeeping was a quarter of the
# encoding time. ASCII output (non-ASCII escaped) is also the encoder's fastest path.
_to_json: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_ABSENT: Final = object()

Values = tuple[Any, ...]  # one row, in _COLUMNS order
Instant = Callable[[datetime], Any]  # how a backend takes a timestamp


def response_delta(request: dict[str, str], response: dict[str, str]) -> dict[str, str | None] | None:
    """The fields of ``response`` that are not the request's (added or changed), and ``None`` for each request
    field the response lacks; None if the response cannot be told this way (it holds a None value itself)."""
    delta: dict[str, str | None] = {k: v for k, v in response.items() if request.get(k, _ABSENT) != v}
    if None in delta.values():
        return None
    for key in request.keys() - response.keys():
        delta[key] = None
    return delta


def apply_delta(request: dict[str, str], delta: dict[str, str | None]) -> dict[str, str]:
    """The response :func:`response_delta` was taken from, its fields in :meth:`Message.masked` order (MTI,
    then by field number)."""
    response = dict(request)
    for key, value in delta.items():
        if value is None:
            response.pop(key, None)
        else:
            response[key] = value
    return dict(sorted(response.items(), key=_field_order))


def _field_order(item: tuple[str, str]) -> tuple[int, int, str]:
    key = item[0]
    if key == "mti":
        return (0, 0, "")
    if key.isdecimal():
        return (1, int(key), "")
    return (2, 0, key)


def _encode(record: JournalRecord, instant: Instant) -> Values:
    """A record as a row. The response goes in as its delta from the request (``response_delta``); only one the
    delta cannot express goes in whole (``response``). Raises TypeError/ValueError for a value JSON cannot
    encode."""
    request = record.request
    response = record.response
    full = delta = None
    if response is not None:
        difference = response_delta(request, response)
        if difference is None:
            full = _to_json(response)
        else:
            delta = _to_json(difference)
    return (*_scalars_of(record), instant(record.received_at), instant(record.responded_at), _to_json(request),
            full, delta)


def _sqlite_instant(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text ("YYYY-MM-DD HH:MM:SS.ffffff", naive UTC), so reads see the same
    values as through the model."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # drops "+00:00"


def _same_instant(value: datetime) -> datetime:
    return value


def _record(row: Row[Any]) -> JournalRecord:
    values = row._mapping
    request = json.loads(values["request"])
    full, delta = values["response"], values["response_delta"]
    if full is not None:  # written whole: before revision 0002, or not expressible as a delta
        response = json.loads(full)
    elif delta is not None:
        response = apply_delta(request, json.loads(delta))
    else:
        response = None
    return JournalRecord(
        **{name: values[name] for name in (*_SCALARS, *_INSTANTS)}, request=request, response=response,
    )


# -- sinks: one transaction per batch, per backend -----------------------------------------------------------
class _Sink:
    """How the writer thread puts rows into one backend. Base: SQLAlchemy Core, for any backend without a
    faster path below."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.instant: Instant = _same_instant

    def write(self, rows: Sequence[Values]) -> None:
        """Insert and commit ``rows`` in one transaction, or raise (nothing committed)."""
        with self._engine.begin() as connection:
            connection.execute(JOURNAL.insert(), [dict(zip(_COLUMNS, row, strict=True)) for row in rows])

    def close(self) -> None:
        """Give back what the sink holds (called on the writer thread as it ends)."""


class _DriverSink(_Sink):
    """Rows straight into the driver, on one pooled connection the writer keeps across batches.

    The connection is given back to the pool (invalidated) after a failure that is not one row's, so the
    next batch starts on a fresh one. A batch that found its connection gone before committing anything
    (say, PostgreSQL restarted while the writer was idle: the pool's pre-ping no longer runs per batch) is
    retried once on a new connection; a failure of the commit itself is never retried, since the commit may
    have happened.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._connection: PoolProxiedConnection | None = None

    def write(self, rows: Sequence[Values]) -> None:
        for attempt in (1, 2):
            connection = self._connect()
            try:
                self.insert(connection.driver_connection, rows)
            except Exception as exc:
                lost = self._lost(exc, connection)
                self._abort(connection, exc, lost)
                if lost and attempt == 1:
                    continue  # nothing was committed: once more, on a new connection
                raise
            try:
                connection.commit()
            except Exception:
                self._discard()
                raise
            return

    def insert(self, driver: Any, rows: Sequence[Values]) -> None:
        """Insert ``rows`` on the driver's own connection, without committing."""
        raise NotImplementedError

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()  # back to the pool, which rolls back anything left open
            except Exception as exc:
                log.warning("journal writer: could not return its connection: %s", describe(exc))

    def _connect(self) -> PoolProxiedConnection:
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        return self._connection

    def _lost(self, exc: Exception, connection: PoolProxiedConnection) -> bool:
        """Whether ``exc`` says the connection is gone (the driver's own test, as SQLAlchemy's pool uses it)."""
        dialect = self._engine.dialect
        return isinstance(exc, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
            exc, connection.driver_connection, None
        )

    def _abort(self, connection: PoolProxiedConnection, exc: Exception, lost: bool) -> None:
        """After a failed insert: roll back and keep the connection if the database refused a row, else
        drop the connection."""
        if not lost and _is_row_error(self._engine, exc):
            try:
                connection.rollback()
            except Exception:
                self._discard()  # a connection that cannot roll back is no use either
            return
        self._discard()

    def _discard(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.invalidate()
            except Exception as exc:
                log.warning("journal writer: could not drop its connection: %s", describe(exc))


class _CopySink(_DriverSink):
    """PostgreSQL through psycopg 3: COPY ... FROM STDIN, one COPY per batch."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        preparer = engine.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(name) for name in _COLUMNS)
        self._sql = f"COPY {preparer.format_table(JOURNAL)} ({columns}) FROM STDIN"

    def insert(self, driver: Any, rows: Sequence[Values]) -> None:
        with driver.cursor() as cursor, cursor.copy(self._sql) as copy:
            for row in rows:
                copy.write_row(row)


# Rows per multi-row INSERT: powers of two up to this many, so a handful of distinct statements, each prepared
# once and then reused from the driver's statement cache; halved until the columns fit SQLite's bound-parameter
# limit (SQLITE_MAX_PARAMETERS: 256 x 24 on SQLite 3.32+, 32 x 24 before).
_SQLITE_MAX_ROWS: Final = next(n for n in (256, 128, 64, 32, 16, 8, 4, 2, 1)
                               if n * len(_COLUMNS) <= SQLITE_MAX_PARAMETERS)


class _SqliteSink(_DriverSink):
    """SQLite through the sqlite3 module: multi-row ``INSERT ... VALUES (...), (...)`` in chunks.

    Not executemany: the sqlite3 module releases the GIL around every row of an executemany, and the writer
    thread then waits for the event loop to give it back each time: measured in a fin-sim profile,
    executemany was 7% of the node's samples. One statement per chunk is one release. (The cells' writer
    does the same: processors/storage/fast.py.) Timestamps go in as the text SQLAlchemy's DATETIME stores.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.instant = _sqlite_instant
        preparer = engine.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(name) for name in _COLUMNS)
        row = "(" + ", ".join("?" for _ in _COLUMNS) + ")"
        head = f"INSERT INTO {preparer.format_table(JOURNAL)} ({columns}) VALUES "
        self._sql: dict[int, str] = {}
        size = _SQLITE_MAX_ROWS
        while size:
            self._sql[size] = head + ", ".join([row] * size)
            size //= 2

    def insert(self, driver: Any, rows: Sequence[Values]) -> None:
        cursor = driver.cursor()
        try:
            start, remaining, size = 0, len(rows), _SQLITE_MAX_ROWS
            while remaining:
                while size > remaining:
                    size //= 2
                cursor.execute(self._sql[size], tuple(chain.from_iterable(rows[start:start + size])))
                start += size
                remaining -= size
        finally:
            cursor.close()


def _sink(engine: Engine) -> _Sink:
    dialect = engine.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _CopySink(engine)
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return _SqliteSink(engine)
    return _Sink(engine)


def _is_row_error(engine: Engine, exc: Exception) -> bool:
    """A failure some rows may not share: the DB refused a value (PEP 249 IntegrityError/DataError)."""
    dbapi = engine.dialect.loaded_dbapi
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(cause, (dbapi.IntegrityError, dbapi.DataError))


# -- the writer -------------------------------------------------------------------------------------------
_Item = tuple[JournalRecord, Done]


class JournalWriter:
    """Group commit on a dedicated thread (:class:`~switch.infra.groupcommit.GroupCommit`): one
    transaction per batch, not per message.

    ``submit`` is thread-safe and never waits for the database. When a batch fails because of one bad
    row (a constraint or data error) the rows are retried one by one so only that row fails; any other
    failure (connection lost, disk full) fails the whole batch, and the writer goes on with the next.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 500, max_wait: float = 0.002) -> None:
        self._engine = engine
        self._sink = _sink(engine)
        self._thread = GroupCommit(self._write, what="journal writer", max_batch=max_batch, max_wait=max_wait,
                                   finish=self._sink.close)
        self._batches = 0
        self._rows = 0
        self._largest_batch = 0
        self._failed_rows = 0
        self._last_commit: tuple[datetime, float] | None = None

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
    def last_commit(self) -> tuple[datetime, float] | None:
        """When the last batch committed, and its lag: seconds from its oldest row's response being decided
        (``responded_at``) to the commit; None before the first commit."""
        return self._last_commit

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
            self._sink.write(rows)
        except Exception as exc:
            if len(batch) > 1 and _is_row_error(self._engine, exc):
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
        committed = datetime.now(UTC)  # once per batch: the lag `bulkhead status` shows
        self._last_commit = (committed, (committed - batch[0][0].responded_at).total_seconds())
        self._notify(batch, None)

    def _convert(self, batch: list[_Item]) -> tuple[list[_Item], list[Values]]:
        """Rows of the records that can be encoded; a record that cannot (say, a field value that is
        not JSON text) fails alone, before the transaction."""
        kept: list[_Item] = []
        rows: list[Values] = []
        instant = self._sink.instant
        for item in batch:
            try:
                rows.append(_encode(item[0], instant))
            except (TypeError, ValueError) as exc:
                self._failed_rows += 1
                self._notify([item], exc)
                continue
            kept.append(item)
        return kept, rows

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


# -- lookups ----------------------------------------------------------------------------------------------
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
    ``since``/``until`` bound ``received_at`` (inclusive / exclusive).

    A lookup by card (``pan_hash`` without ``rrn``, ``stan`` or ``trace_id``) is bounded in time: ``pan_hash``
    has no index (an index on a random key cost a page write per row at every commit), so the rows are found
    through the ``received_at`` index, and without ``since`` only the :data:`CARD_LOOKUP_WINDOW` (24 hours)
    before ``until`` (default: now) is searched. Give ``since`` to look further back; the query then reads
    every row of the window.
    """
    if pan_hash is not None and since is None and rrn is None and stan is None and trace_id is None:
        since = (datetime.now(UTC) if until is None else until) - CARD_LOOKUP_WINDOW
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


# How far back a repeat's or reversal's original is looked for by what it was sent upstream under: ATM and POS
# reversals come within minutes; a day covers a link down overnight.
UPSTREAM_LOOKUP_WINDOW: Final = timedelta(days=2)


def find_upstream(engine: Engine, *, source_link: str, mti_kind: str, stan: str, terminal_id: str | None,
                  now: datetime | None = None) -> tuple[str, str, str | None] | None:
    """(STAN, DE 7, RRN) the newest request from ``source_link`` with the source's ``stan`` (and ``terminal_id``),
    whose MTI starts with ``mti_kind`` (``020`` for 0200 and 0201), was sent upstream under: its upstream columns,
    or, for a row without them (written before revision 0005, or by a link keeping the source's numbering), the
    source's own STAN and DE 7, which is then what went upstream; RRN None: the source's was kept. None when the
    journal has no such row in :data:`UPSTREAM_LOOKUP_WINDOW` (through the ``stan`` index)."""
    since = (now or datetime.now(UTC)) - UPSTREAM_LOOKUP_WINDOW
    query = (select(JOURNAL.c.upstream_stan, JOURNAL.c.upstream_time, JOURNAL.c.upstream_rrn, JOURNAL.c.request)
             .where(JOURNAL.c.stan == stan, JOURNAL.c.source_link == source_link,
                    JOURNAL.c.mti_in.startswith(mti_kind, autoescape=True), JOURNAL.c.received_at >= since))
    if terminal_id is not None:
        query = query.where(JOURNAL.c.terminal_id == terminal_id)
    query = query.order_by(JOURNAL.c.received_at.desc(), JOURNAL.c.id.desc()).limit(1)
    with storage_errors("find upstream identity"), engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    if row[0] is not None and row[1] is not None:
        return str(row[0]), str(row[1]), row[2]
    sent_time = json.loads(row[3]).get("7")  # DE 7 is never masked
    return stan, str(sent_time) if sent_time else "", None


# How many of a link's newest rows say where its numbering stood: more than a reversal's reserved STAN or a repeat's
# old one can hide among (a repeat goes under its original's STAN; an original whose reversal came first goes under
# a STAN reserved before the reversal's own).
_LAST_STANS: Final = 1000


def last_upstream_stan(engine: Engine, destination: str, now: datetime | None = None) -> str | None:
    """The highest STAN a link sent lately under the switch's own numbering (its newest rows of the last day, through
    the ``received_at`` index; repeats left out), for the link's sequence to go on after it when the node restarts.
    When those rows span a wrap of the sequence (999999 then 000001), the highest below the middle."""
    since = (now or datetime.now(UTC)) - timedelta(days=1)
    query = (select(JOURNAL.c.upstream_stan, JOURNAL.c.mti_in)
             .where(JOURNAL.c.destination == destination, JOURNAL.c.received_at >= since,
                    JOURNAL.c.upstream_stan.is_not(None))
             .order_by(JOURNAL.c.received_at.desc(), JOURNAL.c.id.desc()).limit(_LAST_STANS))
    with storage_errors("find the last upstream STAN"), engine.connect() as connection:
        rows = connection.execute(query).all()
    stans = [int(stan) for stan, mti in rows if str(stan).isdigit() and not str(mti).endswith(("1", "3"))]
    if not stans:
        return None
    if max(stans) - min(stans) > 500_000:  # the sequence wrapped among them: the numbers after the wrap are newest
        stans = [n for n in stans if n < 500_000]
    return f"{max(stans):06d}"
