"""SQLAlchemy Core tables of a processor cell's database, one per row type of :mod:`processors.model`.

The columns are derived from the dataclass fields, so the table and the row it stores cannot drift apart
(a field of a type this module does not know is an error at import, not a silently dropped value); the
Alembic migrations in ``migrations/versions`` spell the same schema out explicitly and a test compares them.

Type mapping, chosen to behave the same on SQLite and PostgreSQL:

- ``int`` -> BIGINT (money is minor units; 64 bits leave no overflow question), ``bool`` -> BOOLEAN;
- ``str`` -> VARCHAR without a length (``text`` on PostgreSQL), ``StrEnum`` -> VARCHAR holding the value,
  returned as the enum member;
- ``datetime`` -> :class:`~switch.storage.models.UtcDateTime` (``timestamptz`` on PostgreSQL, naive UTC text on
  SQLite; binding a naive datetime is refused, results are aware UTC), ``date`` -> DATE;
- ``bytes`` -> BLOB/``bytea``; ``dict`` -> JSON.

Tables are named ``cell_`` + the plural of the row type, so a cell's tables may share a database (or schema)
with the switch's own without a clash; the cell's Alembic version table is ``cell_alembic_version`` for the
same reason. There are no foreign keys: the writer stores snapshots of rows that reference each other both
ways (a hold names its transaction and the transaction its hold), and the ledger's integrity is checked by
:func:`processors.storage.ledger.ledger_check` rather than enforced row by row.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Dialect,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from processors.model import (
    ROW_TYPES,
    Account,
    Card,
    CardEvent,
    CreditLine,
    Customer,
    EarlyReversal,
    Entry,
    ExceptionItem,
    Hold,
    InstallmentPlan,
    Posting,
    Row,
    Sequence,
    Txn,
    Usage,
)
from switch.infra.db.types import NAMING_CONVENTION, UtcDateTime

metadata = MetaData(naming_convention=NAMING_CONVENTION)

TABLE_NAMES: Final[dict[type[Row], str]] = {
    Sequence: "cell_sequences",
    Customer: "cell_customers",
    CreditLine: "cell_credit_lines",
    Account: "cell_accounts",
    Card: "cell_cards",
    Hold: "cell_holds",
    Usage: "cell_usage",
    Txn: "cell_txns",
    Posting: "cell_postings",
    Entry: "cell_entries",
    InstallmentPlan: "cell_installment_plans",
    EarlyReversal: "cell_early_reversals",
    ExceptionItem: "cell_exceptions",
    CardEvent: "cell_card_events",
}

# Fields that are not columns: a posting's entries are rows of their own (Effects.add writes them).
_NOT_COLUMNS: Final[dict[type[Row], frozenset[str]]] = {Posting: frozenset({"entries"})}

# Secondary indexes, by the lookups loading and the ledger check make. Every decision inserts a Txn and entries,
# so their indexes must take keys in (nearly) increasing order: a key landing on a random leaf costs the writer a
# page per row at every commit (migration 0003 dropped ``dup_key`` and ``account`` for that; duplicates are found
# in memory, and the ledger check's per-account sums scan the entries anyway).
_INDEXES: Final[dict[type[Row], tuple[str, ...]]] = {
    Card: ("pan_hash",),  # find a card by keyed PAN hash
    Hold: ("status",),  # load open holds only
    Txn: ("created_at",),  # load the retention window
    Entry: ("posting_id",),  # entries of one posting
    EarlyReversal: ("expires_at",),  # load the unexpired ones, purge the rest (keys arrive in time order)
    ExceptionItem: ("status",),  # load the open ones (and the recent resolved ones)
    # The mini statements' lines of the retention window are loaded from the postings by their time (migration
    # 0007); postings are written in time order, so the index takes its keys at its end.
    Posting: ("created_at",),
    CardEvent: ("created_at",),  # load the retention window (written in time order too)
}


class StrEnumText(TypeDecorator[StrEnum]):
    """A ``StrEnum`` stored as its value (VARCHAR) and read back as the member."""

    impl = String()
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # A plain str, not the member: drivers adapt exact types, and a value the enum does not know is
        # refused here rather than stored.
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def _column_type(annotation: Any) -> tuple[TypeEngine[Any], bool]:
    """The column type for a field annotation and whether it is nullable."""
    nullable = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {annotation!r}")
        annotation, nullable = args[0], True
    origin = typing.get_origin(annotation) or annotation
    if origin is bool:  # before int: bool is an int subclass
        return Boolean(), nullable
    if isinstance(origin, type) and issubclass(origin, StrEnum):
        return StrEnumText(origin), nullable
    simple: dict[Any, TypeEngine[Any]] = {
        int: BigInteger(),
        str: String(),
        bytes: LargeBinary(),
        datetime: UtcDateTime(),
        date: Date(),
        dict: JSON(),
    }
    if origin in simple:
        return simple[origin], nullable
    raise TypeError(f"no column type for {annotation!r}")


def field_names(row_type: type[Row]) -> tuple[str, ...]:
    """The stored fields of a row type, in dataclass order (the order of the table's columns)."""
    skip = _NOT_COLUMNS.get(row_type, frozenset())
    return tuple(f.name for f in dataclasses.fields(row_type) if f.name not in skip)  # type: ignore[arg-type]


def _table(row_type: type[Row]) -> Table:
    hints = typing.get_type_hints(row_type)
    name = TABLE_NAMES[row_type]
    columns = []
    for field_name in field_names(row_type):
        column_type, nullable = _column_type(hints[field_name])
        columns.append(
            Column(field_name, column_type, primary_key=field_name in row_type.KEY, nullable=nullable)
        )
    indexes = [Index(f"ix_{name}_{column}", column) for column in _INDEXES.get(row_type, ())]
    return Table(name, metadata, *columns, *indexes)


TABLES: Final[dict[type[Row], Table]] = {row_type: _table(row_type) for row_type in ROW_TYPES}
