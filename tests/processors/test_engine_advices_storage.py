"""Advices posted on an assumption (processors.engine), with the cell's database in the loop (SQLite, and PostgreSQL
when configured): each one posts once, stays posted when its repeat (0121/0221) comes after a restart, is reversed
by a reversal that comes after another restart, and its exception is listed from the database. Likewise an advice
posted from DE 6 whatever its DE 49, and a completion posted to its pre-authorization's account."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from processors.engine import CellEngine
from processors.model import Account, Effects, ExceptionKind
from processors.storage import ledger_check, load_state, write_batch
from switch.exchange.reversal import build_stand_in_advice
from switch.model.message import Message
from tests.processors.engine_kit import (
    DEBIT_PAN,
    OTHER_PAN,
    Clock,
    drive,
    make_world,
    pan_hash,
    request,
    reversal_of,
)
from tests.processors.test_engine_advices import EUR_SAVINGS, WITH_RATES, de90, repeat

CHECKING = "0100000011"
OTHER = "0100000021"
FUNDS = 100_000


def commit(db: Engine, effects: Effects) -> None:
    if effects:
        with db.begin() as connection:
            write_batch(connection, [effects])


@pytest.fixture
def seeded(cell_engine: Engine) -> Iterator[tuple[Engine, Clock]]:
    """make_world's customers, accounts and cards in a cell database; both checking accounts funded by deposits
    the engine posted (so the ledger check has postings behind every balance)."""
    world = make_world(seed=False, catalog=WITH_RATES)
    state = world.state
    rows = Effects()
    rows.add(*state.customers.values(), *state.credit_lines.values(), *state.accounts.values(), *state.cards.values())
    commit(cell_engine, rows)
    for pan in (None, OTHER_PAN):
        deposit = request("0200", "210000", FUNDS) if pan is None else request("0200", "210000", FUNDS, pan=pan)
        decision = drive(world.engine.handle(deposit))
        assert decision.response is not None and decision.response[39] == "00"
        commit(cell_engine, decision.effects)
    yield cell_engine, world.clock


def restarted(db: Engine, clock: Clock) -> CellEngine:
    """What a cell process starts with after a kill -9: the committed decisions only."""
    return CellEngine(load_state(db, 1, clock.now, WITH_RATES.bank.txn_retention_days), WITH_RATES, hsm=None,
                      pan_hash=pan_hash, clock=clock)


def answer(db: Engine, engine: CellEngine, message: Message) -> str:
    decision = drive(engine.handle(message.copy()))
    assert decision.response is not None
    commit(db, decision.effects)
    return str(decision.response[39])


def foreign_stand_in() -> tuple[list[Message], Message, str, int, ExceptionKind]:
    original = request("0200", "000000", 10_000, f49="978")  # EUR 100.00 -> USD 108.50 at the cell's rate
    return [], build_stand_in_advice(original, "S00001", repeat=False), CHECKING, 10_850, ExceptionKind.CELL_RATE


def completion_over_tolerance() -> tuple[list[Message], Message, str, int, ExceptionKind]:
    auth = request("0100", "000000", 10_000)
    completion = request("0220", "000000", 15_000, f90=de90(auth))
    return [auth], completion, CHECKING, 15_000, ExceptionKind.COMPLETION_OVER_TOLERANCE


def account_not_linked() -> tuple[list[Message], Message, str, int, ExceptionKind]:
    advice = build_stand_in_advice(request("0200", "001000", 2_500, pan=OTHER_PAN), "S00002", repeat=False)
    return [], advice, OTHER, 2_500, ExceptionKind.ACCOUNT_NOT_LINKED


CASES: dict[str, Callable[[], tuple[list[Message], Message, str, int, ExceptionKind]]] = {
    "cell-rate": foreign_stand_in, "over-tolerance": completion_over_tolerance, "not-linked": account_not_linked,
}


@pytest.mark.parametrize("case", list(CASES))
def test_posted_once_across_a_repeat_and_restarts_and_reversed_after(seeded: tuple[Engine, Clock], case: str) -> None:
    db, clock = seeded
    before, advice, account_id, posted, kind = CASES[case]()
    engine = restarted(db, clock)
    for message in before:
        assert answer(db, engine, message) == "00"
    assert answer(db, engine, advice) == "00"
    engine = restarted(db, clock)
    state = engine.state
    assert state.accounts[account_id].ledger_balance == FUNDS - posted
    [item] = state.exceptions.values()  # listed from the database
    assert (item.kind, item.amount, item.status) == (kind, posted, "open")
    # The store-and-forward's repeat (its first answer was lost) after the restart: the same answer, once.
    assert answer(db, engine, repeat(advice)) == "00"
    engine = restarted(db, clock)
    assert engine.state.accounts[account_id].ledger_balance == FUNDS - posted
    assert len(engine.state.exceptions) == 1
    # A reversal of it, after another restart, still reverses it.
    assert answer(db, engine, reversal_of(advice if case == "over-tolerance" else _original_of(advice))) == "00"
    state = restarted(db, clock).state
    assert (state.accounts[account_id].ledger_balance, state.accounts[account_id].held) == (FUNDS, 0)
    report = ledger_check(db)
    assert report.ok, report.problems


def _original_of(advice: Message) -> Message:
    """The request a stand-in advice stood in for, as its acquirer's reversal names it (DE 90 of the advice)."""
    original = advice.copy()
    original.mti = "0200"
    return original


def test_an_advice_posted_from_de6_is_reversed_at_its_own_rate_after_restarts(seeded: tuple[Engine, Clock]) -> None:
    """DE 49 outside the cell's table, DE 6 / DE 51 = USD 21.00: posted from DE 6, and DE 49 is stored as received,
    so a partial reversal's DE 95 (in DE 49's currency) is still scaled by DE 6 / DE 4 after a restart."""
    db, clock = seeded
    advice = request("0220", "000000", 1_000_000, f49="123", f6="000000002100", f51="840")
    engine = restarted(db, clock)
    assert answer(db, engine, advice) == "00"
    engine = restarted(db, clock)
    assert engine.state.accounts[CHECKING].ledger_balance == FUNDS - 2_100
    assert answer(db, engine, repeat(advice)) == "00"
    engine = restarted(db, clock)
    assert answer(db, engine, reversal_of(advice, replacement=400_000)) == "00"  # 40% kept: USD 8.40
    engine = restarted(db, clock)
    assert engine.state.accounts[CHECKING].ledger_balance == FUNDS - 840
    assert answer(db, engine, reversal_of(advice)) == "00"
    state = restarted(db, clock).state
    assert state.accounts[CHECKING].ledger_balance == FUNDS and not state.exceptions
    report = ledger_check(db)
    assert report.ok, report.problems


def test_a_completion_is_posted_to_its_preauthorizations_account_across_restarts(seeded: tuple[Engine, Clock]) -> None:
    db, clock = seeded
    engine = restarted(db, clock)
    card = engine.state.cards_by_hash[pan_hash(DEBIT_PAN)]
    card.accounts["10"] = EUR_SAVINGS  # the cardholder's savings account, in EUR (the default one is USD)
    rows = Effects()
    rows.add(Account(EUR_SAVINGS, card.customer_id, "savings", "EUR", "debit"), card)
    commit(db, rows)
    engine = restarted(db, clock)
    assert answer(db, engine, request("0200", "210010", 50_000, f49="978")) == "00"  # EUR 500.00 paid in
    preauth = request("0100", "001000", 10_000, f49="978")
    assert answer(db, engine, preauth) == "00"
    engine = restarted(db, clock)
    completion = request("0220", "000000", 10_000, f49="978", f90=de90(preauth))  # DE 3: the default account
    assert answer(db, engine, completion) == "00"
    engine = restarted(db, clock)
    eur, usd = engine.state.accounts[EUR_SAVINGS], engine.state.accounts[CHECKING]
    assert (eur.ledger_balance, eur.held, usd.ledger_balance, usd.held) == (40_000, 0, FUNDS, 0)
    assert not engine.state.exceptions
    assert answer(db, engine, repeat(completion)) == "00"
    assert restarted(db, clock).state.accounts[EUR_SAVINGS].ledger_balance == 40_000
    report = ledger_check(db)
    assert report.ok, report.problems
