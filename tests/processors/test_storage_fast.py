"""The writer's fast path (processors.storage.fast) stores exactly what SQLAlchemy's typed Core insert stores:
the same raw values column by column (SQLite's datetime/date text, JSON text, BLOBs, enum values), on SQLite
and PostgreSQL, and refuses what the typed columns refuse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Connection, Engine, text

from processors.model import (
    ROW_TYPES,
    Account,
    Card,
    CardStatus,
    Customer,
    EarlyReversal,
    Effects,
    Entry,
    Posting,
    Row,
    Txn,
    TxnStatus,
    Usage,
)
from processors.storage import StorageError, make_engine, upgrade, write_batch
from processors.storage.tables import TABLES, field_names
from tests.processors.test_storage import every_row

WEST = timezone(timedelta(hours=-7, minutes=-30))
ODD = "quote ' double \" backslash \\ newline \n tab \t unicode é€😀 percent %s %(x)s ?"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def awkward_rows() -> list[Row]:
    """Values at the edges of each conversion: offsets, whole seconds, None, nested and empty JSON, odd text,
    every byte, large and negative integers, a member and a plain string for enum columns."""
    midnight = datetime(2026, 1, 1, 0, 0, 0, tzinfo=WEST)  # 07:30 UTC, microsecond 0
    card = Card("K0100000009", "b" * 64, "0009", "476173", bytes(range(256)), "0100000009", "p", "0100000009",
                accounts={}, status=CardStatus.BLOCKED, status_reason=ODD, limits={"atm": {}, "x": {"y": 1}},
                issued_at=None)
    txn = Txn("T01-x", ODD, "0200", "000000", "purchase", "pos", None, None, 2**62, "USD", -(2**40), "05", "",
              "1", "2", "3", "4", midnight, TxnStatus.DECLINED, decline_reason=ODD)
    plain_status = Txn("T01-y", "dup-y", "0200", "000000", "purchase", "pos", None, None, 1, "USD", 0, "00", "",
                       "1", "2", "3", "4", datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                       "approved")  # type: ignore[arg-type]  # a plain str the enum knows
    posting = Posting("P01-x", None, midnight, ODD)
    posting.entries = [Entry("E01-x", posting.id, ODD, 0, "USD")]
    return [
        Customer("0100000009", 1, ODD, "CIF-9", created_at=None),
        Account("0100000009", "0100000009", "checking", "USD", "p", pricing={"a": [1, 2.5, None, True, "é"], "b": {}},
                opened_at=midnight),
        card, txn, plain_status, posting, Usage("K0100000009", date(2026, 2, 28), "pos", 0, 0),
        EarlyReversal(ODD, ODD, "", "", "0421", "", "", ODD, "", "", 2**62, midnight, midnight, applied_to=None),
    ]


def stored(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every cell table's rows as the driver returns them (JSON as its stored text), in key order."""
    result = {}
    for row_type in ROW_TYPES:
        table = TABLES[row_type]
        names = field_names(row_type)
        columns = ", ".join(
            f'"{n}"::text' if connection.dialect.name == "postgresql" and isinstance(table.c[n].type, JSON)
            else f'"{n}"' for n in names
        )
        order = ", ".join(f'"{n}"' for n in row_type.KEY)
        rows = connection.exec_driver_sql(f"SELECT {columns} FROM {table.name} ORDER BY {order}").all()
        result[table.name] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]
    return result


def core_insert(connection: Connection, effects: Effects) -> None:
    """The reference: SQLAlchemy's typed insert of every snapshot (bind processors per column)."""
    for row_type, snapshot in effects.rows:
        connection.execute(TABLES[row_type].insert(), [snapshot])


def clear(connection: Connection) -> None:
    for table in TABLES.values():
        connection.execute(table.delete())


@pytest.mark.parametrize("rows", [every_row, awkward_rows], ids=["every-row", "awkward"])
def test_the_fast_path_stores_what_the_typed_insert_stores(engine: Engine, rows: Any) -> None:
    batch = Effects()
    batch.add(*rows())
    with engine.begin() as connection:
        write_batch(connection, [batch])
        fast = stored(connection)
        clear(connection)
        core_insert(connection, batch)
        reference = stored(connection)
    assert fast == reference
    assert sum(len(r) for r in fast.values()) == len(batch.rows)


def test_an_update_rewrites_every_column_of_the_row(engine: Engine) -> None:
    first, second = Effects(), Effects()
    account = Account("0100000009", "0100000009", "checking", "USD", "p", pricing={"a": 1}, opened_at=None)
    first.add(account)
    account.pricing, account.opened_at, account.status = {}, datetime(2026, 3, 1, tzinfo=WEST), "frozen"
    second.add(account)
    with engine.begin() as connection:
        write_batch(connection, [first])
        write_batch(connection, [second])
        fast = stored(connection)
        clear(connection)
        core_insert(connection, second)
        assert fast == stored(connection)


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("created_at", datetime(2026, 5, 20, 10, 30), "naive datetime"),
    ("status", "no-such-status", "not a TxnStatus value"),
])
def test_refused_values_send_nothing(engine: Engine, field: str, value: Any, reason: str) -> None:
    good = Effects()
    good.add(Customer("0100000009", 1, "Ada", "CIF-9"))
    bad = Effects()
    bad.add(Txn("T01-z", "dup", "0200", "000000", "purchase", "pos", None, None, 1, "USD", 0, "00", "", "1", "2",
                "3", "4", datetime(2026, 1, 1, tzinfo=UTC), TxnStatus.APPROVED))
    bad.rows[0][1][field] = value
    with pytest.raises(StorageError, match=f"write cell batch: Txn refused: .*{reason}"), \
            engine.begin() as connection:
        write_batch(connection, [good, bad])
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM cell_customers")).scalar_one() == 0


def test_a_large_batch_goes_in_chunks_and_stores_every_row(engine: Engine) -> None:
    # 700 rows: SQLite statements of 256, 256, 128, 32, 16, 8 and 4 rows; PostgreSQL one document per table
    batch = Effects()
    for n in range(700):
        when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n, microseconds=n)
        batch.add(Txn(f"T01-{n}", f"dup-{n}", "0200", "000000", "purchase", "pos", f"K{n}", None, n, "USD", 0, "00",
                      "", "1", "2", "3", "4", when, TxnStatus.APPROVED),
                  Usage(f"K{n}", date(2026, 1, 1), "pos", n, 1))
    posting = Posting("P01-big", None, datetime(2026, 1, 1, tzinfo=UTC), "many")
    posting.entries = [Entry(f"E01-{n}", posting.id, f"A{n}", n - 300, "USD") for n in range(601)]
    batch.add(posting)
    with engine.begin() as connection:
        assert write_batch(connection, [batch]) == 700 + 700 + 1 + 601
        fast = stored(connection)
        clear(connection)
        core_insert(connection, batch)
        assert fast == stored(connection)
