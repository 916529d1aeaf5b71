"""Cash deposits whose later count changes, and cards captured by an ATM, through the cell's engine and its ledger:
a recount that finds less reduces the credit (0420, DE 95 = the final count), one that finds more is credited by
the ATM host's 0220 advice; an 0620 administrative advice captures a card (04 from then on) until an operator
unblocks it."""

from __future__ import annotations

from typing import Any

import pytest

from processors.commands import CellCommands
from processors.ledger import GL_SETTLEMENT
from processors.model import CardEvent, CardEventKind, CardStatus, Txn, TxnStatus
from switch.exchange.reversal import build_stand_in_advice
from switch.model.message import Message
from tests.processors.engine_kit import (
    CATALOG,
    DEBIT_PAN,
    World,
    atm,
    de90,
    make_world,
    pan_hash,
    request,
    reversal_of,
)

CHECKING = "0100000011"
SAVINGS = "0100000012"
FUNDS = 100_000
CARD = "K0100000001"  # DEBIT_PAN's card


@pytest.fixture
def world() -> World:
    return make_world()


def code(world: World, message: Message) -> str:
    decision = world.handle(message)
    assert decision.response is not None
    return str(decision.response[39])


def deposit(world: World, amount: int = 10_000, pc: str = "210020") -> Message:
    message = atm(pc, amount)
    assert code(world, message) == "00"
    return message


def adjustment(original: Message, amount: int, pc: str = "210020", mti: str = "0220") -> Message:
    """The ATM host's advice for what a recount found over ``original``: an identity of its own (DE 11, DE 7),
    DE 90 naming the deposit, DE 4 the difference."""
    return request(mti, pc, amount, f18="6011", f7="0615121500", f90=de90(original))


def entries_of(world: World, txn_id: str) -> dict[str, int]:
    posting = next(p for p in world.postings if p.txn_id == txn_id)
    return {e.account: e.amount for e in posting.entries}


def txn(world: World, message: Message) -> Txn:
    from processors.fields import dup_key

    return world.state.txns_by_dup_key[dup_key(message)]


# -- the count finds less: the partial reversal reduces the credit -----------------------------------------------


def test_a_recount_that_finds_less_reduces_the_deposit_to_the_final_count(world: World) -> None:
    original = deposit(world)
    assert world.account(CHECKING).ledger_balance == FUNDS + 10_000
    reversal = reversal_of(original, "0420", replacement=8_000, f39="22")
    decision = world.handle(reversal)
    assert decision.response is not None and decision.response.mti == "0430" and decision.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == FUNDS + 8_000
    taken_back = txn(world, reversal)
    assert entries_of(world, taken_back.id) == {CHECKING: -2_000, GL_SETTLEMENT: 2_000}
    credited = txn(world, original)
    assert (credited.status, credited.reversed_amount) == (TxnStatus.PARTIALLY_REVERSED, 2_000)
    # Its repeat and a second report of the same count change nothing.
    assert code(world, Message("0421", dict(reversal.fields))) == "00"
    assert code(world, reversal_of(original, "0420", replacement=8_000)) == "00"
    assert world.account(CHECKING).ledger_balance == FUNDS + 8_000
    # Nothing counted: the whole deposit goes.
    assert code(world, reversal_of(original, "0420")) == "00"
    assert world.account(CHECKING).ledger_balance == FUNDS


# -- the count finds more: the ATM host's 0220 advice credits the difference --------------------------------------


def test_a_recount_that_finds_more_is_credited_by_the_advice_once(world: World) -> None:
    original = deposit(world)
    advice = adjustment(original, 2_000)
    decision = world.handle(advice)
    assert decision.response is not None and decision.response.mti == "0230" and decision.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == FUNDS + 12_000
    extra = txn(world, advice)
    assert (extra.txn_type, extra.original_id, extra.amount, extra.fee) == ("deposit", txn(world, original).id,
                                                                          2_000, 0)
    assert entries_of(world, extra.id) == {CHECKING: 2_000, GL_SETTLEMENT: -2_000}
    assert code(world, Message("0221", dict(advice.fields))) == "00"  # the repeat: replayed, not posted again
    assert world.account(CHECKING).ledger_balance == FUNDS + 12_000
    # The advice is a transaction of its own: its reversal takes back exactly it.
    assert code(world, reversal_of(advice, "0420")) == "00"
    assert world.account(CHECKING).ledger_balance == FUNDS + 10_000


def test_the_difference_goes_to_the_deposits_account_whatever_de3_names(world: World) -> None:
    original = deposit(world, pc="210010")  # into savings
    assert code(world, adjustment(original, 1_500, pc="210020")) == "00"
    assert world.account(SAVINGS).ledger_balance == 50_000 + 11_500
    assert world.account(CHECKING).ledger_balance == FUNDS


def test_the_switchs_stand_in_advice_of_the_deposit_itself_is_not_credited_twice(world: World) -> None:
    original = deposit(world)
    assert code(world, build_stand_in_advice(original, "S00001", repeat=True)) == "00"
    assert world.account(CHECKING).ledger_balance == FUNDS + 10_000


def test_the_advice_is_credited_even_on_a_card_captured_since(world: World) -> None:
    original = deposit(world)
    assert code(world, capture()) == "00"
    assert code(world, adjustment(original, 2_000)) == "00"  # advices report the past: never declined
    assert world.account(CHECKING).ledger_balance == FUNDS + 12_000


# -- card captured at an ATM (0620) -------------------------------------------------------------------------


def capture(pan: str = DEBIT_PAN, stan: str = "000901", terminal: str = "ATM00001", de60: str | None = "CAPTURED",
            mti: str = "0620") -> Message:
    fields: dict[int, Any] = {2: pan, 7: "0615120500", 11: stan, 32: "00000000001", 41: terminal}
    if de60 is not None:
        fields[60] = de60
    return Message(mti, fields)


def commands(world: World) -> CellCommands:
    return CellCommands(world.state, CATALOG, cell_count=2, hsm=None, pan_hash=pan_hash, seal=lambda data: data,
                        clock=world.clock)


def test_a_capture_advice_captures_the_card_and_it_is_picked_up_from_then_on(world: World) -> None:
    decision = world.handle(capture())
    response = decision.response
    assert response is not None and response.mti == "0630" and response[39] == "00"
    card = world.card(DEBIT_PAN)
    assert (card.status, card.status_before_block) == (CardStatus.CAPTURED, "active")
    (event,) = [row for kind, row in decision.effects.rows if kind is CardEvent]
    assert (event["kind"], event["terminal"], event["card_id"]) == (CardEventKind.CAPTURED, "ATM00001", card.id)
    assert "captured by ATM ATM00001" in decision.note
    assert code(world, atm("012000", 1_000)) == "04"
    assert code(world, request("0200", "000000", 1_000)) == "04"
    assert world.account(CHECKING).ledger_balance == FUNDS


async def test_repeats_are_acknowledged_once_and_never_capture_a_released_card(world: World) -> None:
    first = capture()
    assert code(world, first) == "00"
    assert code(world, capture(mti="0621")) == "00"
    assert len(world.state.card_events) == 1
    released, effects = await commands(world).run("card.unblock", {"card": CARD})
    assert released["status"] == "active"
    assert [row["kind"] for kind, row in effects.rows if kind is CardEvent] == [CardEventKind.RELEASED]
    assert code(world, capture(mti="0621")) == "00"  # a late repeat of the first capture
    assert world.card(DEBIT_PAN).status == CardStatus.ACTIVE
    assert code(world, atm("012000", 1_000)) == "00"
    listed, _ = await commands(world).run("card.events", {"card": CARD})
    assert [e["kind"] for e in listed["events"]] == ["released", "captured"]
    assert all("pvv" not in str(e) for e in listed["events"])


def test_a_lost_card_captured_stays_lost(world: World) -> None:
    card = world.card(DEBIT_PAN)
    card.status = CardStatus.LOST
    decision = world.handle(capture())
    assert decision.response is not None and decision.response[39] == "00"
    assert card.status == CardStatus.LOST and "stays lost" in decision.note
    assert len(world.state.card_events) == 1


async def test_an_operator_may_block_a_captured_card_and_unblock_restores_active(world: World) -> None:
    world.handle(capture())
    cmd = commands(world)
    await cmd.run("card.block", {"card": CARD, "status": "blocked", "reason": "customer asked"})
    assert world.card(DEBIT_PAN).status_before_block == "active"
    result, _ = await cmd.run("card.unblock", {"card": CARD})
    assert result["status"] == "active"


@pytest.mark.parametrize(("message", "answer", "mti"), [
    (capture(pan="4761739999999999"), "14", "0630"),
    (capture(de60=None), "30", "0630"),
    (capture(de60="RETURNED"), "12", "0630"),
    (capture(mti="0600"), "12", "0610"),
])
def test_capture_advices_the_cell_cannot_apply(world: World, message: Message, answer: str, mti: str) -> None:
    decision = world.handle(message)
    assert decision.response is not None and (decision.response.mti, decision.response[39]) == (mti, answer)
    assert world.card(DEBIT_PAN).status == CardStatus.ACTIVE and world.state.card_events == {}


def test_a_reversal_of_the_withdrawal_before_the_capture_is_still_applied(world: World) -> None:
    withdrawal = atm("012000", 5_000)
    assert code(world, withdrawal) == "00"
    assert code(world, capture()) == "00"
    assert code(world, reversal_of(withdrawal, "0420", replacement=0, f39="RT")) == "00"
    assert world.account(CHECKING).ledger_balance == FUNDS
