"""Issue 11 with the cell's database in the loop (SQLite, and PostgreSQL when configured): every order of an
original, its stand-in advice and its reversal, with the cell restarted from its database - what a kill -9 leaves,
the committed decisions only - between any two of them, ends with nothing posted and a ledger that checks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine

from processors.engine import CellEngine
from processors.model import Effects
from processors.storage import ledger_check, load_state, write_batch
from switch.exchange.reversal import build_stand_in_advice, original_data_elements
from switch.model.message import Message
from tests.processors.engine_kit import CATALOG, Clock, drive, make_world, pan_hash, request, reversal_of

CHECKING = "0100000011"
FUNDS = 100_000


def commit(db: Engine, effects: Effects) -> None:
    if effects:
        with db.begin() as connection:
            write_batch(connection, [effects])


@pytest.fixture
def seeded(cell_engine: Engine) -> Iterator[tuple[Engine, Clock]]:
    """A cell database holding make_world's customers, accounts and cards, the checking account funded by a
    deposit the engine posted (so the ledger check has postings behind every balance)."""
    world = make_world(seed=False)
    state = world.state
    rows = Effects()
    rows.add(*state.customers.values(), *state.credit_lines.values(), *state.accounts.values(), *state.cards.values())
    commit(cell_engine, rows)
    deposit = world.engine.handle(request("0200", "210000", FUNDS))
    decision = drive(deposit)
    assert decision.response is not None and decision.response[39] == "00"
    commit(cell_engine, decision.effects)
    yield cell_engine, world.clock


def restarted(db: Engine, clock: Clock) -> CellEngine:
    state = load_state(db, 1, clock.now, CATALOG.bank.txn_retention_days)
    return CellEngine(state, CATALOG, hsm=None, pan_hash=pan_hash, clock=clock)


def scenarios() -> Iterator[tuple[tuple[str, ...], int]]:
    for order in itertools.permutations(("O", "A", "R")):
        for restart_after in (1, 2):
            yield order, restart_after


@pytest.mark.parametrize("amount", [7_000, FUNDS + 50_000], ids=["approvable", "declined-then-stood-in"])
def test_every_order_with_a_restart_between_two_messages_posts_nothing(
    seeded: tuple[Engine, Clock], amount: int,
) -> None:
    db, clock = seeded
    base = request("0200", "000000", amount)
    messages: dict[str, Message] = {"O": base, "A": build_stand_in_advice(base, "S00001", repeat=False),
                                    "R": reversal_of(base)}
    # Each scenario on its own STANs: a copy of the family with a fresh STAN and DE 90 naming it.
    for n, (order, restart_after) in enumerate(scenarios()):
        stan = f"{900_000 + n:06d}"
        family = {name: message.copy() for name, message in messages.items()}
        family["O"][11] = family["A"][11] = stan
        family["A"][90] = family["R"][90] = original_data_elements(family["O"])
        family["R"][11] = f"{800_000 + n:06d}"
        engine = restarted(db, clock)
        for position, name in enumerate(order):
            if position == restart_after:
                engine = restarted(db, clock)  # the decisions so far are all the new process knows
            decision = drive(engine.handle(family[name]))
            assert decision.response is not None, (order, name)
            commit(db, decision.effects)
        state = restarted(db, clock).state
        account = state.accounts[CHECKING]
        assert (account.ledger_balance, account.held) == (FUNDS, 0), (order, restart_after)
    report = ledger_check(db)
    assert report.ok, report.problems


def test_the_per_card_cap_counts_the_reversals_reloaded_after_a_restart(seeded: tuple[Engine, Clock]) -> None:
    """The cap holds across restarts: what a card had remembered is loaded from the database and counted."""
    db, clock = seeded
    catalog = replace(CATALOG, bank=replace(CATALOG.bank, reversal_memory_per_card=2))
    originals = [request("0200", "000000", 1_000) for _ in range(3)]
    for original in originals[:2]:
        engine = CellEngine(load_state(db, 1, clock.now, CATALOG.bank.txn_retention_days), catalog, hsm=None,
                            pan_hash=pan_hash, clock=clock)
        decision = drive(engine.handle(reversal_of(original)))
        assert decision.response is not None and decision.response[39] == "25"
        commit(db, decision.effects)
    engine = CellEngine(load_state(db, 1, clock.now, CATALOG.bank.txn_retention_days), catalog, hsm=None,
                        pan_hash=pan_hash, clock=clock)
    assert engine.early_counts() == {"early_reversals": 2, "early_reversals_refused": 0}
    third = drive(engine.handle(reversal_of(originals[2])))
    assert third.response is not None and third.response[39] == "25" and not third.effects
    assert engine.early_counts() == {"early_reversals": 2, "early_reversals_refused": 1}
    answers = []
    for original in originals:
        decision = drive(engine.handle(original))
        assert decision.response is not None
        commit(db, decision.effects)
        answers.append(decision.response[39])
    assert answers == ["05", "05", "00"]
    assert ledger_check(db).ok
