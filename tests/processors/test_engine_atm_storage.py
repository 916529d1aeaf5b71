"""The ATM transactions with the cell's database in the loop (SQLite, and PostgreSQL when configured), across
restarts (what a cell loads after a kill -9: the committed decisions only): a PIN change is still in force and is
reversed after a restart, a capture's repeat after a restart captures nothing twice, and a mini statement shows
the same lines before and after a restart; the ledger check holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from hsm.inprocess import SoftwareBackend
from processors.engine import CellEngine
from processors.model import CardEventKind, CardStatus, Effects
from processors.storage import TABLES, ledger_check, load_state, write_batch
from switch.model.message import Message
from tests.processors.engine_kit import (
    CATALOG,
    DEBIT_PAN,
    FOREIGN_ACQUIRER,
    PIN,
    SOFT_HSM,
    Clock,
    atm,
    make_world,
    pan_hash,
    pin_block,
    reversal_of,
    set_pin,
)

FUNDS = 100_000


def commit(db: Engine, effects: Effects) -> None:
    if effects:
        with db.begin() as connection:
            write_batch(connection, [effects])


@pytest.fixture
def seeded(cell_engine: Engine) -> Iterator[tuple[Engine, Clock]]:
    """make_world's customers, accounts and cards (PIN 1234 on the debit card) in a cell database, the checking
    account funded by a deposit the engine posted."""
    world = make_world(seed=False, hsm=True)
    set_pin(world, DEBIT_PAN)
    state = world.state
    rows = Effects()
    rows.add(*state.customers.values(), *state.credit_lines.values(), *state.accounts.values(), *state.cards.values())
    commit(cell_engine, rows)
    decision = world.engine.decide(atm("210020", FUNDS))
    assert decision is not None and decision.response is not None and decision.response[39] == "00"
    commit(cell_engine, decision.effects)
    yield cell_engine, world.clock


def restarted(db: Engine, clock: Clock) -> CellEngine:
    return CellEngine(load_state(db, 1, clock.now, CATALOG.bank.txn_retention_days), CATALOG,
                      hsm=SoftwareBackend(SOFT_HSM), pan_hash=pan_hash, clock=clock)


async def answer(db: Engine, engine: CellEngine, message: Message) -> Message:
    decision = await engine.handle(message.copy())
    assert decision.response is not None
    commit(db, decision.effects)
    return decision.response


def withdrawal(pin: str) -> Message:
    return atm("012000", 1_000, f52=pin_block(pin, DEBIT_PAN))


async def test_a_pin_change_survives_a_restart_and_its_reversal_after_another_restores_the_old_pin(
        seeded: tuple[Engine, Clock]) -> None:
    db, clock = seeded
    change = atm("920000", 0, f52=pin_block(PIN, DEBIT_PAN), f125=pin_block("4321", DEBIT_PAN).hex().upper())
    assert (await answer(db, restarted(db, clock), change))[39] == "00"
    engine = restarted(db, clock)
    assert (await answer(db, engine, withdrawal("4321")))[39] == "00"
    assert (await answer(db, engine, Message("0201", dict(change.fields))))[39] == "00"  # replayed from the rows
    engine = restarted(db, clock)
    assert (await answer(db, engine, reversal_of(change, "0420")))[39] == "00"
    engine = restarted(db, clock)
    assert (await answer(db, engine, withdrawal(PIN)))[39] == "00"
    assert (await answer(db, engine, withdrawal("4321")))[39] == "55"
    kinds = [e.kind for e in sorted(engine.state.card_events.values(), key=lambda e: e.id)]
    assert kinds == [CardEventKind.PIN_CHANGED, CardEventKind.PIN_CHANGE_REVERSED]
    blocks = {pin_block(pin, DEBIT_PAN).hex().upper() for pin in (PIN, "4321")}
    with db.connect() as connection:  # no PIN block is stored anywhere: only PVVs, on the card and its events
        stored = " ".join(str(row) for table in TABLES.values() for row in connection.execute(select(table)))
    assert "pin_changed" in stored and not any(block in stored.upper() for block in blocks)
    assert ledger_check(db).ok


async def test_a_capture_repeated_after_a_restart_is_recorded_once(seeded: tuple[Engine, Clock]) -> None:
    db, clock = seeded
    capture = Message("0620", {2: DEBIT_PAN, 7: "0615120500", 11: "000901", 41: "ATM00002", 60: "CAPTURED"})
    assert (await answer(db, restarted(db, clock), capture))[39] == "00"
    engine = restarted(db, clock)
    assert engine.state.cards_by_hash[pan_hash(DEBIT_PAN)].status == CardStatus.CAPTURED
    assert (await answer(db, engine, Message("0621", dict(capture.fields))))[39] == "00"
    assert len(restarted(db, clock).state.card_events) == 1
    assert (await answer(db, engine, withdrawal(PIN)))[39] == "04"


async def test_a_mini_statement_reads_the_same_before_and_after_a_restart(seeded: tuple[Engine, Clock]) -> None:
    db, clock = seeded
    engine = restarted(db, clock)
    for cents in (2_000, 3_000):
        assert (await answer(db, engine, atm("012000", cents, f32=FOREIGN_ACQUIRER,
                                             f52=pin_block(PIN, DEBIT_PAN))))[39] == "00"
    before = (await answer(db, engine, atm("382000", 0)))[48]
    after = (await answer(db, restarted(db, clock), atm("382000", 0)))[48]
    assert before == after == (
        "1506 CASH WITHDRAWAL              32.50-"
        "1506 CASH WITHDRAWAL              22.50-"
        "1506 DEPOSIT                    1000.00 ")
