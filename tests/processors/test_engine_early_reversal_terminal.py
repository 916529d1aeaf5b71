"""What a remembered early reversal may match (issue 11 item 1, review finding 5; processors.early): a PAN-less
reversal is not remembered, and a remembered one stops only the same card at the same terminal (when both carry
DE 41): ATMs with their own STANs under one acquirer id must not stop each other's transactions."""

from __future__ import annotations

from dataclasses import replace

from processors.catalog import Catalog
from processors.model import EarlyReversal, TxnStatus
from switch.exchange.reversal import build_stand_in_advice
from switch.model.message import Message
from tests.processors.engine_kit import CATALOG, DEBIT_PAN, World, make_world, request, reversal_of

CHECKING = "0100000011"  # DEBIT_PAN's account
START = 100_000
AMOUNT = 5_000


def _at(terminal: str, stan: str, pan: str = DEBIT_PAN) -> Message:
    """A purchase from ``terminal``: ATMs under one acquirer id number their STANs each on their own."""
    return request("0200", "000000", AMOUNT, pan, f11=stan, f41=terminal)


def _without_pan(message: Message) -> Message:
    copy = message.copy()
    del copy.fields[2]
    return copy


def _code(world: World, message: Message) -> str:
    response = world.handle(message.copy()).response
    assert response is not None
    return str(response[39])


def _remembered_rows(world: World, message: Message) -> tuple[str, list[object]]:
    decision = world.handle(message.copy())
    assert decision.response is not None
    return str(decision.response[39]), [row for kind, row in decision.effects.rows if kind is EarlyReversal]


def _catalog(**bank: int) -> Catalog:
    return replace(CATALOG, bank=replace(CATALOG.bank, **bank))


def test_a_pan_less_reversal_is_answered_25_and_not_remembered() -> None:
    world = make_world()
    code, rows = _remembered_rows(world, _without_pan(reversal_of(_at("ATM-A", "000777"))))
    assert code == "25" and rows == []
    assert world.state.early_reversals == {}
    # Its repeat is answered the same way, still without a row.
    repeat = _without_pan(reversal_of(_at("ATM-A", "000777"), "0401"))
    assert _remembered_rows(world, repeat) == ("25", [])


def test_a_pan_less_reversal_from_one_terminal_does_not_stop_another_terminals_purchase() -> None:
    """The review's scenario: terminal B's purchase has terminal A's STAN and DE 7 under the same acquirer."""
    world = make_world()
    assert _code(world, _without_pan(reversal_of(_at("ATM-A", "000777")))) == "25"
    assert _code(world, _at("ATM-B", "000777")) == "00"
    assert world.account(CHECKING).ledger_balance == START - AMOUNT


def test_a_pan_less_reversal_does_not_reverse_another_terminals_stand_in_advice() -> None:
    """Before the fix the advice was applied and reversed at once: the ATM had dispensed, the account kept it."""
    world = make_world()
    assert _code(world, _without_pan(reversal_of(_at("ATM-A", "000777")))) == "25"
    assert _code(world, build_stand_in_advice(_at("ATM-B", "000777"), "S00001", repeat=False)) == "00"
    assert world.account(CHECKING).ledger_balance == START - AMOUNT
    assert [posting.description for posting in world.postings] == ["purchase 0220"]


def test_a_reversal_from_another_terminal_does_not_stop_the_original() -> None:
    world = make_world()
    assert _code(world, reversal_of(_at("ATM-A", "000777"))) == "25"
    assert _code(world, _at("ATM-B", "000777")) == "00"
    advice = build_stand_in_advice(_at("ATM-B", "000778"), "S00001", repeat=False)
    assert _code(world, reversal_of(_at("ATM-A", "000778"))) == "25"
    assert _code(world, advice) == "00"
    assert world.account(CHECKING).ledger_balance == START - 2 * AMOUNT
    txns = [txn for txn in world.state.txns.values() if txn.mti in ("0200", "0220")]
    assert {txn.status for txn in txns} == {TxnStatus.APPROVED}
    # Neither remembered reversal was applied: they still wait for terminal A's originals.
    assert {row.applied_to for row in world.state.early_reversals.values()} == {None}


def test_the_same_terminal_still_matches_and_a_side_without_de41_matches_any() -> None:
    world = make_world()
    assert _code(world, reversal_of(_at("ATM-A", "000777"))) == "25"
    assert _code(world, _at("ATM-A", "000777")) == "05"
    no_terminal = reversal_of(_at("ATM-A", "000778"))
    del no_terminal.fields[41]
    assert _code(world, no_terminal) == "25"
    assert _code(world, _at("ATM-B", "000778")) == "05"
    assert _code(world, reversal_of(_at("ATM-A", "000779"))) == "25"
    original = _at("ATM-A", "000779")
    del original.fields[41]
    assert _code(world, original) == "05"
    assert world.account(CHECKING).ledger_balance == START
