"""A cell's database: migrations, the writer's upserts and the working set loaded back (SQLite and PostgreSQL).

No ``__init__.py`` in this folder: as a package it would be named ``processors`` and shadow the real one.
"""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from processors.model import (
    Account,
    Card,
    CardEvent,
    CardEventKind,
    CardStatus,
    CreditLine,
    Customer,
    EarlyReversal,
    Effects,
    Entry,
    ExceptionItem,
    ExceptionKind,
    Hold,
    HoldStatus,
    InstallmentPlan,
    Posting,
    Row,
    Sequence,
    Txn,
    TxnStatus,
    Usage,
)
from processors.storage import (
    TABLE_NAMES,
    TABLES,
    StorageError,
    current_revision,
    downgrade,
    head_revision,
    load_rows,
    load_state,
    make_engine,
    purge_early_reversals,
    upgrade,
    write_batch,
)
from processors.storage.tables import metadata
from switch.storage.db import upgrade as upgrade_switch

T0 = datetime(2026, 5, 20, 10, 30, 15, 123456, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))  # a non-UTC offset: what comes back must be the same instant, in UTC
RETENTION = 35
CELL_TABLES = set(TABLE_NAMES.values())


def write(engine: Engine, *batches: Effects) -> int:
    with engine.begin() as connection:
        return write_batch(connection, batches)


def effects(*rows: Row) -> Effects:
    result = Effects()
    result.add(*rows)
    return result


# -- builders: one realistic row of every type ---------------------------------------------------------------

def customer(seq: int = 1, cell: int = 1) -> Customer:
    return Customer(f"{cell:02d}{seq:08d}", cell, "Ada Lovelace", f"CIF-{seq}", created_at=T0.astimezone(CEST))


def credit_line() -> CreditLine:
    return CreditLine("0100000002", "0100000001", "USD", limit=500_000, cash_limit=100_000, owed=1200, held=300)


def debit_account() -> Account:
    return Account(
        "0100000001", "0100000001", "checking", "USD", "debit-classic", ledger_balance=98_800, held=1500,
        pricing={"overdraft": 0, "fees": {"withdrawal.atm.foreign": {"fixed": 250, "rate_bp": 100}}},
        opened_at=T0,
    )


def credit_account() -> Account:
    return Account(
        "0100000003", "0100000001", "credit", "USD", "credit-gold", ledger_balance=-1200,
        credit_line_id="0100000002", opened_at=T0,
    )


def card(seq: int = 1, *, pan_hash: str = "a" * 64, replaces: str | None = None) -> Card:
    return Card(
        f"K01{seq:08d}", pan_hash, "0119", "476173", pan_sealed=bytes(range(256)) + b"\x00\xff",
        customer_id="0100000001", product="debit-classic", account_id="0100000001",
        accounts={"10": "0100000001", "20": "0100000004"}, status=CardStatus.ACTIVE, expiry="2905",
        pvv="1234", limits={"atm": {"per_txn": 50_000, "daily_count": 10}, "pos": {}}, replaces=replaces,
        issued_at=T0.astimezone(CEST),
    )


def hold(n: int = 1, status: HoldStatus = HoldStatus.OPEN, amount: int = 1500) -> Hold:
    return Hold(
        f"H01-{n}", "K0100000001", "0100000001", None, f"T01-{n}", amount, "USD", cash=False,
        created_at=T0, expires_at=T0 + timedelta(days=7), status=status,
    )


def txn(n: int = 1, created_at: datetime = T0, dup_key: str | None = None) -> Txn:
    return Txn(
        f"T01-{n}", dup_key or f"010-{n:06d}-0520103015-ATM00001-00000000001", "0100", "010000", "withdrawal",
        "atm", "K0100000001", "0100000001", 1500, "USD", 0, "00", "A1B2C3", f"{n:06d}", f"{n:012d}",
        "ATM00001", "00000000001", created_at, TxnStatus.APPROVED, hold_id=f"H01-{n}",
    )


def posting(n: int = 1) -> Posting:
    posting = Posting(f"P01-{n}", f"T01-{n}", T0, "withdrawal")
    posting.entries = [
        Entry(f"E01-{n}-1", posting.id, "0100000001", -1500, "USD"),
        Entry(f"E01-{n}-2", posting.id, "GL:SETTLEMENT", 1500, "USD"),
    ]
    return posting


def plan() -> InstallmentPlan:
    return InstallmentPlan(
        "I01-1", "0100000002", "0100000003", "T01-9", "USD", principal=1200, count=3, fee=36, rate_bp=300,
        created_at=T0,
    )


def exception_item(n: int = 1, created_at: datetime = T0, status: str = "open") -> ExceptionItem:
    return ExceptionItem(
        f"E01-{n}", ExceptionKind.COMPLETION_OVER_TOLERANCE, f"T01-{n}", "K0100000001", "0100000001", "0220",
        f"{n:06d}", f"RRN{n:09d}", 15_000, "USD", "completion of 150.00 USD above ...", created_at, status,
        resolved_at=created_at + timedelta(hours=1) if status == "resolved" else None,
        resolution="charged back" if status == "resolved" else "",
    )


def card_event(n: int = 1, created_at: datetime = T0) -> CardEvent:
    return CardEvent(f"A01-{n}", f"020|{n:06d}|0615120000|ATM00001|", "K0100000001", CardEventKind.PIN_CHANGED,
                     created_at.astimezone(CEST), "ATM00001", txn_id=f"T01-{n}",
                     detail="PIN changed at terminal ATM00001", previous_pvv="4321")


def early_reversal(n: int = 1, received_at: datetime = T0, replacement: int | None = 500) -> EarlyReversal:
    return EarlyReversal(
        f"040|{n:06d}|0520103016|ATM00001|00000000001", f"2|{n:06d}|0520103015|00000000001", "", "c" * 64, "0400",
        f"{n:06d}", "0520103016", "ATM00001", "00000000001", f"{n:012d}", replacement, received_at,
        received_at + timedelta(days=RETENTION),
    )


def every_row() -> list[Row]:
    return [
        Sequence("customer", 1), Sequence("card:476173", 7), customer(), credit_line(), debit_account(),
        credit_account(), card(), hold(), Usage("K0100000001", T0.date(), "atm", 1500, 1), txn(), posting(),
        plan(), early_reversal(), exception_item(), card_event(),
    ]


# -- migrations ----------------------------------------------------------------------------------------------

def test_upgrade_creates_every_cell_table_with_named_indexes(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(db_url)
        assert current_revision(engine) == head_revision() == "0007"
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == CELL_TABLES | {"cell_alembic_version"}
        indexes = {
            (ix["name"], table, tuple(ix["column_names"]))
            for table in CELL_TABLES for ix in inspector.get_indexes(table)
        }
        assert indexes == {
            ("ix_cell_cards_pan_hash", "cell_cards", ("pan_hash",)),
            ("ix_cell_holds_status", "cell_holds", ("status",)),
            ("ix_cell_txns_created_at", "cell_txns", ("created_at",)),
            ("ix_cell_entries_posting_id", "cell_entries", ("posting_id",)),
            ("ix_cell_early_reversals_expires_at", "cell_early_reversals", ("expires_at",)),
            ("ix_cell_exceptions_status", "cell_exceptions", ("status",)),
            ("ix_cell_postings_created_at", "cell_postings", ("created_at",)),
            ("ix_cell_card_events_created_at", "cell_card_events", ("created_at",)),
        }
        assert inspector.get_pk_constraint("cell_usage")["constrained_columns"] == ["card_id", "day", "channel"]
    finally:
        engine.dispose()


def test_tables_and_migrations_describe_the_same_schema(cell_engine: Engine) -> None:
    with cell_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _cell_tables_only})
        assert compare_metadata(context, metadata) == []


def _cell_tables_only(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in CELL_TABLES


def test_downgrade_to_base_drops_every_cell_table_and_upgrade_restores_them(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)  # at head already: nothing to do
    engine = make_engine(db_url)
    try:
        downgrade(db_url, "base")
        assert current_revision(engine) is None
        assert CELL_TABLES.isdisjoint(inspect(engine).get_table_names())
        upgrade(db_url)
        assert set(inspect(engine).get_table_names()) >= CELL_TABLES
    finally:
        engine.dispose()


def test_a_cell_database_can_share_a_database_with_the_switch(db_url: str) -> None:
    upgrade_switch(db_url)
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == "0007"
        downgrade(db_url, "base")
        names = set(inspect(engine).get_table_names())
        assert {"journal", "saf_entries", "alembic_version"} <= names
        assert CELL_TABLES.isdisjoint(names)
    finally:
        engine.dispose()


def test_unknown_revision_is_a_storage_error(db_url: str) -> None:
    with pytest.raises(StorageError, match="9999"):
        upgrade(db_url, "9999")


# -- write and load ------------------------------------------------------------------------------------------

def test_every_row_type_round_trips_with_aware_times_json_bytes_and_enums(cell_engine: Engine) -> None:
    rows = every_row()
    assert write(cell_engine, effects(*rows)) == len(rows) + 2  # the posting's two entries are rows of their own
    loaded = load_rows(cell_engine, 1, T0, RETENTION)
    expected = [row for row in rows if not isinstance(row, Posting)]
    assert _same(loaded, expected)
    by_type = {type(row): row for row in loaded}
    loaded_card = by_type[Card]
    assert isinstance(loaded_card, Card)
    assert loaded_card == card()
    assert loaded_card.issued_at is not None and loaded_card.issued_at.tzinfo == UTC
    assert type(loaded_card.pan_sealed) is bytes and loaded_card.pan_sealed == card().pan_sealed
    assert type(loaded_card.status) is CardStatus and loaded_card.limits["atm"] == {"per_txn": 50_000,
                                                                                     "daily_count": 10}
    loaded_hold = by_type[Hold]
    assert isinstance(loaded_hold, Hold) and type(loaded_hold.status) is HoldStatus and loaded_hold.cash is False
    loaded_txn = by_type[Txn]
    assert isinstance(loaded_txn, Txn) and type(loaded_txn.status) is TxnStatus
    assert loaded_txn.created_at.tzinfo == UTC and loaded_txn.created_at == T0
    loaded_usage = by_type[Usage]
    assert isinstance(loaded_usage, Usage) and type(loaded_usage.day) is date
    loaded_event = by_type[CardEvent]
    assert isinstance(loaded_event, CardEvent) and type(loaded_event.kind) is CardEventKind
    assert loaded_event.created_at.tzinfo == UTC and loaded_event == card_event()
    with cell_engine.connect() as connection:
        entries = connection.execute(select(TABLES[Entry]).order_by(TABLES[Entry].c.id)).all()
        postings = connection.execute(select(TABLES[Posting])).all()
    assert [Entry(*row) for row in entries] == posting().entries
    assert [(row.id, row.created_at) for row in postings] == [("P01-1", T0)]
    assert postings[0].created_at.tzinfo == UTC


def _same(loaded: list[Row], expected: list[Row]) -> bool:
    """Equality of row lists regardless of order (dataclass ``==`` compares instants across offsets)."""
    remaining = list(expected)
    for row in loaded:
        if row not in remaining:
            return False
        remaining.remove(row)
    return not remaining


def test_load_state_indexes_what_was_loaded(cell_engine: Engine) -> None:
    write(cell_engine, effects(*every_row()))
    state = load_state(cell_engine, 1, T0, RETENTION)
    assert gc.isenabled()  # paused during the load only
    assert state.cell == 1
    assert set(state.customers) == {"0100000001"}
    assert set(state.accounts) == {"0100000001", "0100000003"}
    assert state.credit_lines["0100000002"] == credit_line()
    assert state.cards_by_hash["a" * 64].id == "K0100000001"
    assert set(state.holds) == {"H01-1"}
    assert set(state.usage) == {("K0100000001", T0.date(), "atm")}
    assert state.txns_by_dup_key[txn().dup_key].id == "T01-1"
    assert set(state.plans) == {"I01-1"}
    assert {name: seq.value for name, seq in state.sequences.items()} == {"customer": 1, "card:476173": 7}


def test_a_later_snapshot_of_the_same_row_wins_within_and_across_calls(cell_engine: Engine) -> None:
    account = debit_account()
    first = effects(account)
    account.ledger_balance = 50
    second = effects(account)
    account.ledger_balance = 70
    account.pricing["overdraft"] = 5000  # the earlier snapshots are copies: they must not see this
    second.add(account, Usage("K0100000001", T0.date(), "atm", 100, 1), Usage("K0100000001", T0.date(), "atm",
                                                                              300, 2))
    assert write(cell_engine, first, second) == 2  # deduplicated: one account, one usage row
    assert first.rows[0][1]["ledger_balance"] == 98_800 and first.rows[0][1]["pricing"]["overdraft"] == 0
    state = load_state(cell_engine, 1, T0, RETENTION)
    assert state.accounts[account.id].ledger_balance == 70
    assert state.accounts[account.id].pricing["overdraft"] == 5000
    assert (state.usage[("K0100000001", T0.date(), "atm")].amount,
            state.usage[("K0100000001", T0.date(), "atm")].count) == (300, 2)

    account.status, account.held = "frozen", 0
    assert write(cell_engine, effects(account)) == 1  # an existing row is updated in place
    reloaded = load_state(cell_engine, 1, T0, RETENTION).accounts[account.id]
    assert (reloaded.status, reloaded.held, reloaded.ledger_balance) == ("frozen", 0, 70)


def test_postings_and_entries_are_insert_only(cell_engine: Engine) -> None:
    write(cell_engine, effects(posting()))
    changed = posting()
    changed.description = "rewritten"
    changed.entries[0].amount = -1
    write(cell_engine, effects(changed))
    with cell_engine.connect() as connection:
        assert connection.execute(select(TABLES[Posting].c.description)).scalar_one() == "withdrawal"
        amounts = connection.execute(select(TABLES[Entry].c.amount).order_by(TABLES[Entry].c.id)).scalars().all()
    assert amounts == [-1500, 1500]


def test_a_failed_batch_leaves_nothing_behind(cell_engine: Engine) -> None:
    bad = txn(2)
    bad.created_at = datetime(2026, 5, 20, 10, 30)  # naive: no instant, refused
    with pytest.raises(StorageError, match="write cell batch"), cell_engine.begin() as connection:
        write_batch(connection, [effects(customer(), debit_account(), bad)])
    assert load_rows(cell_engine, 1, T0, RETENTION) == []


def test_an_unknown_row_type_is_refused(cell_engine: Engine) -> None:
    class Stray(Row):
        pass

    with pytest.raises(TypeError, match="Stray"), cell_engine.begin() as connection:
        write_batch(connection, [Effects([(Stray, {"id": "x"})])])


# -- what a cell loads ---------------------------------------------------------------------------------------

def test_load_keeps_open_holds_recent_usage_and_transactions_within_retention(cell_engine: Engine) -> None:
    cutoff = T0 - timedelta(days=RETENTION)
    write(cell_engine, effects(
        hold(1), hold(2, HoldStatus.COMPLETED), hold(3, HoldStatus.RELEASED), hold(4, HoldStatus.EXPIRED),
        Usage("K0100000001", T0.date(), "atm", 1, 1),
        Usage("K0100000001", T0.date() - timedelta(days=1), "atm", 2, 1),
        Usage("K0100000001", T0.date() - timedelta(days=2), "atm", 3, 1),
        txn(1, T0), txn(2, cutoff.astimezone(CEST)), txn(3, cutoff - timedelta(microseconds=1)), posting(1),
    ))
    state = load_state(cell_engine, 1, T0, RETENTION)
    assert set(state.holds) == {"H01-1"}
    assert {day for (_, day, _) in state.usage} == {T0.date(), T0.date() - timedelta(days=1)}
    assert set(state.txns) == {"T01-1", "T01-2"}
    loaded = load_rows(cell_engine, 1, T0, RETENTION)
    assert not any(isinstance(row, Posting | Entry) for row in loaded)


def test_the_latest_transaction_answers_for_a_duplicate_key(cell_engine: Engine) -> None:
    write(cell_engine, effects(txn(2, T0, dup_key="same"), txn(1, T0 - timedelta(seconds=5), dup_key="same")))
    assert load_state(cell_engine, 1, T0, RETENTION).txns_by_dup_key["same"].id == "T01-2"


def test_the_newest_card_of_a_replacement_chain_answers_for_the_pan(cell_engine: Engine) -> None:
    first, second, third = card(1), card(2, replaces="K0100000001"), card(3, replaces="K0100000002")
    first.status = second.status = CardStatus.REPLACED
    # Stored out of issue order: indexing them in storage order would leave the middle card answering.
    write(cell_engine, effects(first, third, second))
    state = load_state(cell_engine, 1, T0, RETENTION)
    assert state.cards_by_hash[first.pan_hash].id == third.id
    assert set(state.cards) == {first.id, second.id, third.id}


def test_load_refuses_a_database_not_migrated(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(StorageError, match="run the migrations"):
            load_rows(engine, 1, T0, RETENTION)
    finally:
        engine.dispose()


def test_load_refuses_another_cells_database(cell_engine: Engine) -> None:
    write(cell_engine, effects(customer(1, cell=1), customer(2, cell=2)))
    with pytest.raises(StorageError, match="customer 0200000002 of cell 02"):
        load_rows(cell_engine, 1, T0, RETENTION)


def test_load_needs_an_aware_now(cell_engine: Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        load_rows(cell_engine, 1, T0.replace(tzinfo=None), RETENTION)


def test_revision_0002_adds_the_card_and_txn_fields_and_keeps_old_rows(db_url: str) -> None:
    """A 0001 database with rows upgrades to 0002: old rows get the model's defaults; new values round-trip."""
    upgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            old_card = {c: v for c, v in card().snapshot().items()
                        if c not in ("last_atc", "status_before_block", "pin_set_by")}
            old_txn = {c: v for c, v in txn().snapshot().items()
                       if c not in ("to_account_id", "request_amount", "request_currency", "cash_part")}
            connection.execute(TABLES[Card].insert().values(**old_card))
            connection.execute(TABLES[Txn].insert().values(**old_txn))
        upgrade(db_url)
        loaded = {type(row): row for row in load_rows(engine, 1, T0, RETENTION)}
        assert loaded[Card] == card() and loaded[Txn] == txn()
        newer_card = card()
        newer_card.last_atc, newer_card.status_before_block = 0x1234, "inactive"
        newer_txn = txn()
        newer_txn.to_account_id, newer_txn.request_amount, newer_txn.request_currency = "0100000002", 9_000, "EUR"
        write(engine, effects(newer_card, newer_txn))
        loaded = {type(row): row for row in load_rows(engine, 1, T0, RETENTION)}
        assert loaded[Card] == newer_card and loaded[Txn] == newer_txn
    finally:
        engine.dispose()


def test_revision_0003_drops_the_random_order_indexes_and_keeps_rows(db_url: str) -> None:
    """A 0002 database with rows upgrades to 0003 (the dup_key and entry account indexes go, the rows stay and
    load); a downgrade to 0002 rebuilds both indexes over the rows."""
    upgrade(db_url, "0002")
    engine = make_engine(db_url)

    def indexes(table: str) -> set[str]:
        return {str(ix["name"]) for ix in inspect(engine).get_indexes(table)}

    try:
        _write_before_0005(engine, txn())
        write(engine, effects(posting()))
        assert "ix_cell_txns_dup_key" in indexes("cell_txns")
        upgrade(db_url)
        assert indexes("cell_txns") == {"ix_cell_txns_created_at"}
        assert indexes("cell_entries") == {"ix_cell_entries_posting_id"}
        assert load_state(engine, 1, T0, RETENTION).txns_by_dup_key[txn().dup_key] == txn()
        downgrade(db_url, "0002")
        assert indexes("cell_txns") == {"ix_cell_txns_created_at", "ix_cell_txns_dup_key"}
        assert indexes("cell_entries") == {"ix_cell_entries_posting_id", "ix_cell_entries_account"}
        with engine.connect() as connection:
            assert connection.execute(select(TABLES[Entry].c.id).order_by(TABLES[Entry].c.id)).scalars().all() == [
                entry.id for entry in posting().entries]
    finally:
        engine.dispose()


def test_revision_0004_adds_the_early_reversals_table_and_its_downgrade_drops_it(db_url: str) -> None:
    """A 0003 database with rows upgrades to 0004 (the rows stay; remembered reversals are stored and load back);
    a downgrade to 0003 drops only the new table, and an upgrade brings it back empty."""
    upgrade(db_url, "0003")
    engine = make_engine(db_url)
    try:
        _write_before_0005(engine, txn())
        write(engine, effects(posting()))
        assert "cell_early_reversals" not in inspect(engine).get_table_names()
        upgrade(db_url)
        write(engine, effects(early_reversal(), early_reversal(2, replacement=None)))
        state = load_state(engine, 1, T0, RETENTION)
        assert set(state.early_reversals) == {early_reversal().id, early_reversal(2).id}
        assert state.early_reversals[early_reversal(2).id].replacement is None
        assert [row.id for row in state.early_by_original[early_reversal().original_key]] == [early_reversal().id]
        downgrade(db_url, "0003")
        assert "cell_early_reversals" not in inspect(engine).get_table_names()
        assert current_revision(engine) == "0003"
        with engine.connect() as connection:
            assert connection.execute(select(TABLES[Txn].c.id)).scalars().all() == [txn().id]
        upgrade(db_url)
        assert load_state(engine, 1, T0, RETENTION).early_reversals == {}
    finally:
        engine.dispose()


def _write_before_0005(engine: Engine, row: Txn) -> None:
    """A transaction as a database before revision 0005 stores it (no ``cash_part`` column)."""
    with engine.begin() as connection:
        connection.execute(TABLES[Txn].insert().values(
            **{c: v for c, v in row.snapshot().items() if c != "cash_part"}))


def test_revision_0005_adds_the_txn_cash_part_and_keeps_old_rows(db_url: str) -> None:
    """A 0004 database with a transaction upgrades to 0005: the old row loads with cash_part 0, a new value
    round-trips, and a downgrade to 0004 drops only the column."""
    upgrade(db_url, "0004")
    engine = make_engine(db_url)
    try:
        _write_before_0005(engine, txn())
        upgrade(db_url, "0005")
        assert current_revision(engine) == "0005"
        upgrade(db_url)  # loading needs the newest revision
        loaded = {type(row): row for row in load_rows(engine, 1, T0, RETENTION)}
        assert loaded[Txn] == txn() and loaded[Txn].cash_part == 0
        paid = txn()
        paid.cash_part = 12_345
        write(engine, effects(paid))
        loaded = {type(row): row for row in load_rows(engine, 1, T0, RETENTION)}
        assert loaded[Txn].cash_part == 12_345
        downgrade(db_url, "0004")
        assert "cash_part" not in {c["name"] for c in inspect(engine).get_columns("cell_txns")}
        with engine.connect() as connection:
            assert connection.execute(select(TABLES[Txn].c.id)).scalars().all() == [txn().id]
    finally:
        engine.dispose()


def test_expired_early_reversals_are_not_loaded_and_are_purged(cell_engine: Engine) -> None:
    old = early_reversal(1, received_at=T0 - timedelta(days=RETENTION, seconds=1))
    edge = early_reversal(2, received_at=T0 - timedelta(days=RETENTION))  # expires exactly now: gone
    fresh = early_reversal(3, received_at=T0 - timedelta(days=1))
    applied = early_reversal(4)
    applied.applied_to = "T01-7"
    write(cell_engine, effects(old, edge, fresh, applied))
    assert set(load_state(cell_engine, 1, T0, RETENTION).early_reversals) == {fresh.id, applied.id}
    assert load_state(cell_engine, 1, T0, RETENTION).early_reversals[applied.id].applied_to == "T01-7"
    assert purge_early_reversals(cell_engine, T0) == 2
    assert purge_early_reversals(cell_engine, T0) == 0
    with cell_engine.connect() as connection:
        table = TABLES[EarlyReversal]
        assert connection.execute(select(table.c.id).order_by(table.c.id)).scalars().all() == [fresh.id, applied.id]
    with pytest.raises(ValueError, match="timezone-aware"):
        purge_early_reversals(cell_engine, T0.replace(tzinfo=None))


def test_revision_0006_adds_the_exceptions_table_and_its_downgrade_drops_it(db_url: str) -> None:
    """A 0005 database with a transaction upgrades to 0006: exceptions are stored and load back; a downgrade to
    0005 drops only the new table."""
    upgrade(db_url, "0005")
    engine = make_engine(db_url)
    try:
        write(engine, effects(txn()))
        assert "cell_exceptions" not in inspect(engine).get_table_names()
        upgrade(db_url)
        write(engine, effects(exception_item()))
        assert load_state(engine, 1, T0, RETENTION).exceptions == {"E01-1": exception_item()}
        downgrade(db_url, "0005")
        assert "cell_exceptions" not in inspect(engine).get_table_names()
        with engine.connect() as connection:
            assert connection.execute(select(TABLES[Txn].c.id)).scalars().all() == [txn().id]
    finally:
        engine.dispose()


def test_revision_0007_adds_card_events_the_pin_change_column_and_the_postings_index(db_url: str) -> None:
    """A 0006 database with a card and a posting upgrades to 0007: the card loads with pin_set_by "", the posting
    becomes a mini statement line, events are stored and load back; a downgrade to 0006 drops only what 0007
    added."""
    upgrade(db_url, "0006")
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(TABLES[Card].insert().values(
                **{c: v for c, v in card().snapshot().items() if c != "pin_set_by"}))
        write(engine, effects(debit_account(), posting()))
        upgrade(db_url)
        state = load_state(engine, 1, T0, RETENTION)
        assert state.cards[card().id] == card() and state.cards[card().id].pin_set_by == ""
        lines = state.statements[debit_account().id]
        assert [(line.posted_at, line.amount) for line in lines] == [(T0, posting().entries[0].amount)]
        changed = card()
        changed.pin_set_by = "T01-9"
        write(engine, effects(changed, card_event()))
        state = load_state(engine, 1, T0, RETENTION)
        assert state.cards[changed.id].pin_set_by == "T01-9"
        assert state.card_events == {"A01-1": card_event()}
        assert state.card_events_by_txn["T01-1"] == card_event()
        downgrade(db_url, "0006")
        assert "cell_card_events" not in inspect(engine).get_table_names()
        assert "ix_cell_postings_created_at" not in {ix["name"] for ix in inspect(engine).get_indexes("cell_postings")}
        with engine.connect() as connection:
            assert connection.execute(select(TABLES[Card].c.id)).scalars().all() == [card().id]
    finally:
        engine.dispose()


def test_card_events_and_statement_lines_load_for_the_retention_only(cell_engine: Engine) -> None:
    """Events and mini statement lines older than the retention stay in the database but are not loaded."""
    old = T0 - timedelta(days=RETENTION + 1)
    account = debit_account()
    recent, stale = posting(), posting()
    stale.id, stale.created_at = "P01-0", old
    stale.entries = [Entry(f"P01-0-{k}", "P01-0", e.account, e.amount, e.currency) for k, e in
                     enumerate(recent.entries, 1)]
    write(cell_engine, effects(account, stale, recent, card_event(1, created_at=old), card_event(2)))
    state = load_state(cell_engine, 1, T0, RETENTION)
    assert set(state.card_events) == {"A01-2"}
    assert [line.posted_at for line in state.statements[account.id]] == [T0]


def test_open_exceptions_load_whatever_their_age_and_resolved_ones_within_the_retention(cell_engine: Engine) -> None:
    long_ago = T0 - timedelta(days=RETENTION + 30)
    old_open = exception_item(1, created_at=long_ago)
    old_resolved = exception_item(2, created_at=long_ago, status="resolved")
    recent_resolved = exception_item(3, created_at=T0 - timedelta(days=1), status="resolved")
    write(cell_engine, effects(old_open, old_resolved, recent_resolved))
    loaded = load_state(cell_engine, 1, T0, RETENTION).exceptions
    assert set(loaded) == {old_open.id, recent_resolved.id}
    assert loaded[recent_resolved.id].resolution == "charged back" and type(loaded[old_open.id].kind) is ExceptionKind
