"""The cell writer's hot path: snapshots to driver parameters and a few statements per table, without
SQLAlchemy's per-row parameter processing.

A cell decides thousands of requests a second and every decision stores six to nine row snapshots, all in the
group-commit writer thread, which shares the GIL with the cell's event loop. Through a compiled Core ``insert``,
SQLAlchemy built a parameter dict per row and ran every column's bind processor per value: about half of the
writer's CPU on SQLite, and on PostgreSQL psycopg's per-row pipelined ``executemany`` cost more still. Here each
table's statements are rendered once per dialect and the snapshots are converted column by column, only where
the driver cannot take the Python value as it is, to exactly what SQLAlchemy's typed columns store:

- ``datetime``: a naive one is refused (it has no instant); on SQLite the naive UTC text of SQLAlchemy's
  ``DATETIME`` (``YYYY-MM-DD HH:MM:SS.ffffff``, compared as text, so always UTC);
- ``date``: on SQLite SQLAlchemy's ``DATE`` text (``YYYY-MM-DD``);
- ``StrEnum`` columns: a value the enum does not know is refused (as
  :class:`~processors.storage.tables.StrEnumText` refuses it), a member goes in as its plain value;
- ``dict`` (JSON): ``json.dumps`` text, SQLAlchemy's default serializer.

Statements, with the upsert semantics of ``insert().on_conflict_do_update`` on the KEY columns (DO NOTHING for
the insert-only ledger tables):

- SQLite: multi-row ``INSERT ... VALUES (?, ...), (?, ...) ... ON CONFLICT ...``, chunks of a power of two rows
  (few distinct statements, each compiled once and reused from the driver's cache). Not ``executemany``: see
  :meth:`TableWriter._sqlite_statements`.
- PostgreSQL: one ``INSERT ... SELECT ... FROM json_populate_recordset(NULL::table, %s::json) ON CONFLICT ...``
  per table, the snapshots sent as one JSON document written by the C encoder (psycopg's own array adaptation,
  tried first, spent microseconds per value in Python). One round trip per table; psycopg prepares it after a
  few uses.

Statements run on the driver's cursor of the caller's connection, inside its transaction (SQLAlchemy's
per-statement execution context cost more than the small statements of a lightly loaded cell); driver errors
become :class:`~switch.storage.errors.StorageError` as :func:`~switch.storage.errors.storage_errors` would
make them. A lost connection is not marked invalid in the pool: the cell's writer stops at any failure
(fail-stop) and its restart opens new connections.

``tests/processors/test_storage_fast.py`` compares what is stored here with SQLAlchemy's typed insert, value for
value, on both databases.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime
from enum import StrEnum
from itertools import chain
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import JSON, Connection, Date, Dialect

from processors.model import ROW_TYPES, Entry, Posting, Row
from processors.storage.tables import TABLES, StrEnumText, field_names
from switch.infra.db.engine import SQLITE_MAX_PARAMETERS
from switch.infra.db.errors import StorageError, describe
from switch.infra.db.types import UtcDateTime

# Postings and entries are the ledger's history: a row already stored is never changed.
INSERT_ONLY: Final = frozenset({Posting, Entry})

Convert = Callable[[Any], Any]


class RowRefusedError(ValueError):
    """A snapshot value the database must not get (a naive datetime, a value outside its enum)."""


def _sqlite_instant(value: datetime | None) -> str | None:
    """SQLite: the naive UTC text of SQLAlchemy's DATETIME storage format (``switch.storage.models.UtcDateTime``
    turns an aware value into naive UTC first; the text is then compared as text, so it must always be UTC)."""
    if value is None:
        return None
    return _instant_text(value)


# A decision's instant is stored twice (its Txn and its posting: one datetime object) and an account's opened_at
# with every balance change, so most conversions are repeats; a hit costs a hash instead of an isoformat (2 us).
# Equal aware datetimes are the same instant (they hash alike whatever their offset), so they share one text. A
# naive datetime raises, and exceptions are not cached.
@functools.lru_cache(maxsize=4096)
def _instant_text(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is None:
        raise RowRefusedError("naive datetime: timestamps must be timezone-aware")
    if offset:
        value = value - offset
    # The first 26 characters (a 4-digit year always) are the naive text; the UTC offset follows them. One
    # call instead of replace() + isoformat(): three timestamps per decision (issue #5).
    return value.isoformat(" ", "microseconds")[:26]


def _sqlite_date(value: date | None) -> str | None:
    """SQLite: SQLAlchemy's DATE storage format (``%04d-%02d-%02d``, which is what ``date.isoformat`` writes)."""
    if value is None:
        return None
    if type(value) is date:
        return value.isoformat()
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"  # a datetime (or a subclass): the date part


# SQLAlchemy's JSON type with its default serializer stores json.dumps(value) (None becomes JSON 'null');
# json.dumps with no options is this encoder's encode().
_json_encode: Final = json.JSONEncoder().encode


def _json(value: Any) -> str:
    if type(value) is dict and not value:
        return "{}"  # most accounts' pricing and most cards' limits
    return _json_encode(value)


def _enum(enum: type[StrEnum]) -> Convert:
    # Members hash and compare like their values, so one dict lookup both validates and unwraps a member or a
    # plain string to the plain str value the driver binds.
    values = {member.value: member.value for member in enum}

    def convert(value: Any) -> str | None:
        if value is None:
            return None
        try:
            return values[value]
        except (KeyError, TypeError):
            raise RowRefusedError(f"not a {enum.__name__} value") from None

    return convert


def _converter(column_type: Any, dialect: str) -> Convert | None:
    """How to turn one column's Python values into what the driver binds; None: as it is."""
    if isinstance(column_type, StrEnumText):
        return _enum(column_type.enum)
    if dialect == "postgresql":
        return None  # the JSON encoder (_pg_default) writes dates, instants and bytes
    if isinstance(column_type, UtcDateTime):
        return _sqlite_instant
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, Date) and dialect == "sqlite":
        return _sqlite_date
    return None


# SQLite binds at most SQLITE_MAX_PARAMETERS per statement (32766 since 3.32, 999 before); rows go in chunks
# of a power of two up to this many, halved until a chunk's parameters fit, so a table needs at most a handful
# of distinct statements, each compiled once and then reused from the driver's statement cache.
_SQLITE_MAX_ROWS: Final = 256
_SQLITE_MAX_PARAMETERS: Final = SQLITE_MAX_PARAMETERS


class TableWriter:
    """The statements and the row conversion of one table on one dialect."""

    def __init__(self, row_type: type[Row], dialect: Dialect) -> None:
        table = TABLES[row_type]
        self.row_type = row_type
        self.names = field_names(row_type)
        self.dialect = dialect.name
        self.values = itemgetter(*self.names)  # a snapshot dict -> a tuple in column order (every table has 2+)
        self.conversions = tuple(
            (index, convert)
            for index, name in enumerate(self.names)
            if (convert := _converter(table.c[name].type, dialect.name)) is not None
        )
        quote = dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in self.names)
        key = ", ".join(quote(name) for name in row_type.KEY)
        if row_type in INSERT_ONLY:
            conflict = f"ON CONFLICT ({key}) DO NOTHING"
        else:
            sets = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in self.names if n not in row_type.KEY)
            conflict = f"ON CONFLICT ({key}) DO UPDATE SET {sets}"
        target = dialect.identifier_preparer.format_table(table)
        if dialect.name == "sqlite":
            self._head = f"INSERT INTO {target} ({columns}) VALUES "
            self._row = "(" + ", ".join("?" for _ in self.names) + ")"
            self._tail = f" {conflict}"
            self._sqlite_sql: dict[int, str] = {}
            self.max_rows = _SQLITE_MAX_ROWS
            while self.max_rows * len(self.names) > _SQLITE_MAX_PARAMETERS:
                self.max_rows //= 2
        elif dialect.name == "postgresql":
            self._pg_sql = (f"INSERT INTO {target} ({columns}) SELECT {columns} "
                            f"FROM json_populate_recordset(NULL::{target}, %s::json) {conflict}")
        else:
            raise StorageError(f"cell storage supports SQLite and PostgreSQL, not {dialect.name}")

    def statements(self, snapshots: Collection[dict[str, Any]]) -> list[tuple[str, Sequence[Any]]]:
        """The statements (each with its one parameter set) that write ``snapshots``, at most one per key.

        Raises :class:`StorageError` for a value the column refuses, before anything is sent.
        """
        try:
            if self.dialect == "postgresql":
                return [(self._pg_sql, (self._pg_document(snapshots),))]
            return self._sqlite_statements(snapshots)
        except (TypeError, ValueError) as exc:
            # No value in the message: a snapshot may hold card data (protected, but still not for logs).
            raise StorageError(
                f"write cell batch: {self.row_type.__name__} refused: {type(exc).__name__}: {exc}"
            ) from exc

    def _pg_document(self, snapshots: Collection[dict[str, Any]]) -> str:
        """The snapshots as one JSON array: json_populate_recordset() matches keys to columns by name, and the
        encoder (C) writes each value in the text form PostgreSQL's input functions take."""
        for index, convert in self.conversions:
            name = self.names[index]
            for snapshot in snapshots:
                convert(snapshot[name])  # validation only (enums): the JSON encoder writes the value
        return _pg_json(list(snapshots))

    def _sqlite_statements(self, snapshots: Collection[dict[str, Any]]) -> list[tuple[str, Sequence[Any]]]:
        """Multi-row VALUES statements, the values flattened row by row.

        Not executemany: the sqlite3 module releases the GIL around every sqlite3_step, once per row, and the
        writer thread then waits to get it back from the cell's busy event loop (up to the interpreter's switch
        interval, 5 ms, each time): thousands of waits per batch. One statement per chunk is one step."""
        width = len(self.names)
        flat = list(chain.from_iterable(map(self.values, snapshots)))
        # A column is every width-th value from its index: converted in place through extended slices, without
        # transposing the rows to columns and back (a Txn has 27 columns and two conversions).
        for index, convert in self.conversions:
            flat[index::width] = [convert(value) for value in flat[index::width]]
        statements: list[tuple[str, Sequence[Any]]] = []
        start, remaining, size = 0, len(snapshots), self.max_rows
        while remaining:
            while size > remaining:
                size //= 2
            statements.append((self._sqlite_sql_for(size), flat[start:start + size * width]))
            start += size * width
            remaining -= size
        return statements

    def _sqlite_sql_for(self, rows: int) -> str:
        sql = self._sqlite_sql.get(rows)
        if sql is None:
            sql = self._sqlite_sql[rows] = self._head + ", ".join([self._row] * rows) + self._tail
        return sql


def _pg_default(value: Any) -> str:
    """JSON text of the values the encoder does not know, in PostgreSQL's input syntax of the column type."""
    if isinstance(value, datetime):  # before date: a datetime is a date
        if value.utcoffset() is None:
            raise RowRefusedError("naive datetime: timestamps must be timezone-aware")
        return value.isoformat()  # with its UTC offset: timestamptz stores the instant
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea hex format
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# json.dumps with SQLAlchemy's defaults (the JSON column's serializer) plus the column types above; the
# encoder writes StrEnum members as their value (they are str). None stays JSON null, a SQL NULL in the row.
_pg_json: Final = json.JSONEncoder(default=_pg_default).encode

_WRITERS: dict[tuple[str, type[Row]], TableWriter] = {}


def table_writer(dialect: Dialect, row_type: type[Row]) -> TableWriter:
    """The (cached) writer of ``row_type`` for ``dialect``."""
    writer = _WRITERS.get((dialect.name, row_type))
    if writer is None:
        writer = _WRITERS[dialect.name, row_type] = TableWriter(row_type, dialect)
    return writer


def write_latest(connection: Connection, latest: dict[type[Row], dict[Any, dict[str, Any]]]) -> int:
    """Write the deduplicated snapshots of ``latest`` (row type -> key -> snapshot), tables in ROW_TYPES order
    (references first); returns the rows written. Every row is converted before the first statement runs, so
    a refused value sends nothing to the database."""
    dialect = connection.dialect
    statements = [
        statement
        for row_type in ROW_TYPES
        if (rows := latest.get(row_type))
        for statement in table_writer(dialect, row_type).statements(rows.values())
    ]
    # Straight through the driver's cursor, inside the caller's transaction: SQLAlchemy's execution context
    # cost ~7 us a statement, and a batch of a few decisions runs a dozen statements (a power-of-two chunk per
    # table): 13 us per decision at 5 decisions a batch, which is what a cell at 1-2k requests/s writes
    # (issue #5). Driver errors become StorageError here, as storage_errors would have made them.
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for sql, parameters in statements:
            cursor.execute(sql, parameters)
    except dialect.loaded_dbapi.Error as exc:
        raise StorageError(f"write cell batch: {describe(exc)}") from exc
    finally:
        cursor.close()
    return sum(len(rows) for rows in latest.values())
