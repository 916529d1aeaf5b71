"""What a remembered early reversal may match (issue 11 item 1, review finding 5; processors.early): a PAN-less
reversal is not remembered, and a remembered one stops only the same card at the same terminal (when both carry
DE 41): ATMs with their own STANs under one acquirer id must not stop each other's transactions."""

from __future__ import annotations

from processors.model import TxnStatus
from switch.exchange.reversal import build_stand_in_advice
from tests.processors.early_kit import AMOUNT, CHECKING, START, answer_code, at, remembered_rows, without_pan
from tests.processors.engine_kit import make_world, reversal_of


def test_a_pan_less_reversal_is_answered_25_and_not_remembered() -> None:
    world = make_world()
    code, rows = remembered_rows(world, without_pan(reversal_of(at("ATM-A", "000777"))))
    assert code == "25" and rows == []
    assert world.state.early_reversals == {}
    # Its repeat is answered the same way, still without a row.
    repeat = without_pan(reversal_of(at("ATM-A", "000777"), "0401"))
    assert remembered_rows(world, repeat) == ("25", [])


def test_a_pan_less_reversal_from_one_terminal_does_not_stop_another_terminals_purchase() -> None:
    """The review's scenario: terminal B's purchase has terminal A's STAN and DE 7 under the same acquirer."""
    world = make_world()
    assert answer_code(world, without_pan(reversal_of(at("ATM-A", "000777")))) == "25"
    assert answer_code(world, at("ATM-B", "000777")) == "00"
    assert world.account(CHECKING).ledger_balance == START - AMOUNT


def test_a_pan_less_reversal_does_not_reverse_another_terminals_stand_in_advice() -> None:
    """Before the fix the advice was applied and reversed at once: the ATM had dispensed, the account kept it."""
    world = make_world()
    assert answer_code(world, without_pan(reversal_of(at("ATM-A", "000777")))) == "25"
    assert answer_code(world, build_stand_in_advice(at("ATM-B", "000777"), "S00001", repeat=False)) == "00"
    assert world.account(CHECKING).ledger_balance == START - AMOUNT
    assert [posting.description for posting in world.postings] == ["purchase 0220"]


def test_a_reversal_from_another_terminal_does_not_stop_the_original() -> None:
    world = make_world()
    assert answer_code(world, reversal_of(at("ATM-A", "000777"))) == "25"
    assert answer_code(world, at("ATM-B", "000777")) == "00"
    advice = build_stand_in_advice(at("ATM-B", "000778"), "S00001", repeat=False)
    assert answer_code(world, reversal_of(at("ATM-A", "000778"))) == "25"
    assert answer_code(world, advice) == "00"
    assert world.account(CHECKING).ledger_balance == START - 2 * AMOUNT
    txns = [txn for txn in world.state.txns.values() if txn.mti in ("0200", "0220")]
    assert {txn.status for txn in txns} == {TxnStatus.APPROVED}
    # Neither remembered reversal was applied: they still wait for terminal A's originals.
    assert {row.applied_to for row in world.state.early_reversals.values()} == {None}


def test_the_same_terminal_still_matches_and_a_side_without_de41_matches_any() -> None:
    world = make_world()
    assert answer_code(world, reversal_of(at("ATM-A", "000777"))) == "25"
    assert answer_code(world, at("ATM-A", "000777")) == "05"
    no_terminal = reversal_of(at("ATM-A", "000778"))
    del no_terminal.fields[41]
    assert answer_code(world, no_terminal) == "25"
    assert answer_code(world, at("ATM-B", "000778")) == "05"
    assert answer_code(world, reversal_of(at("ATM-A", "000779"))) == "25"
    original = at("ATM-A", "000779")
    del original.fields[41]
    assert answer_code(world, original) == "05"
    assert world.account(CHECKING).ledger_balance == START
