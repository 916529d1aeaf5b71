"""Dispense outcomes: what each word from a terminal means, and how a second word about the same withdrawal is
judged (never a double count)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from atmp.cash import Movement, apply_movement
from atmp.dispense import (
    Action,
    DispenseOutcome,
    OutcomeKind,
    Source,
    assumed,
    confirmation,
    is_overdue,
    judge,
    notes_mismatch,
    reversal,
    with_notes,
)
from atmp.errors import DispenseError
from atmp.interface import NoteCounts
from atmp.model import Cassette

CASSETTES = (Cassette(1, "840", 2000, 100), Cassette(2, "840", 5000, 100), Cassette(3, "840", 1000, 100),
             Cassette(4, "840", 10000, 100))
SIXTY = NoteCounts((3, 0, 0, 0))  # 3 x 20.00


def _notes(outcome: DispenseOutcome) -> DispenseOutcome:
    return with_notes(outcome, CASSETTES, "840")[0]


@pytest.mark.parametrize(("outcome", "kind", "dispensed", "reversed_"), [
    (confirmation(6000, SIXTY), OutcomeKind.DISPENSED, 6000, 0),
    (reversal(6000, 4000, "22", NoteCounts((2, 0, 0, 0), (1, 0, 0, 0))), OutcomeKind.PARTIAL, 4000, 2000),
    (reversal(6000, 0, "17", None), OutcomeKind.NONE, 0, 6000),
    (reversal(6000, 6000, "22", SIXTY), OutcomeKind.DISPENSED, 6000, 0),
    (reversal(6000, 0, "RT", SIXTY), OutcomeKind.RETRACTED, 0, 6000),
    (reversal(6000, 4000, "RT", SIXTY), OutcomeKind.RETRACTED, 0, 6000),  # RT: nothing charged whatever DE 95 says
    (assumed(6000), OutcomeKind.ASSUMED, 6000, 0),
])
def test_what_each_word_means(outcome: DispenseOutcome, kind: OutcomeKind, dispensed: int, reversed_: int) -> None:
    assert (outcome.kind, outcome.dispensed_amount, outcome.reversed_amount) == (kind, dispensed, reversed_)


def test_a_retract_counts_the_notes_as_retracted_and_rejects_as_rejected() -> None:
    outcome = reversal(6000, 0, "RT", NoteCounts((3, 0, 0, 0), (0, 1, 0, 0)))
    assert outcome.movement == Movement(rejected=(0, 1, 0, 0), retracted=(3, 0, 0, 0))


@pytest.mark.parametrize(("approved", "dispensed"), [(0, 0), (6000, 7000), (6000, -1)])
def test_impossible_amounts_are_refused(approved: int, dispensed: int) -> None:
    with pytest.raises(DispenseError):
        reversal(approved, dispensed, "22", None)


def test_without_note_counts_the_host_mixes_largest_first_and_says_so() -> None:
    outcome, found = with_notes(confirmation(18000, None), CASSETTES, "840")
    assert found and outcome.notes_derived and outcome.movement == Movement(dispensed=(1, 1, 1, 1))
    retract, _ = with_notes(reversal(18000, 0, "RT", None), CASSETTES, "840")
    assert retract.movement == Movement(retracted=(1, 1, 1, 1))
    nothing = reversal(18000, 0, "68", None)
    assert nothing.movement == Movement() and not nothing.notes_derived  # nothing went out: no notes to guess
    odd, found = with_notes(confirmation(1500, None), CASSETTES, "840")
    assert not found and odd.movement == Movement()


def test_notes_that_do_not_add_up_to_the_amount_are_measured() -> None:
    assert notes_mismatch(confirmation(6000, SIXTY), CASSETTES) == 0
    assert notes_mismatch(confirmation(6000, NoteCounts((2, 0, 0, 0))), CASSETTES) == -2000
    assert notes_mismatch(reversal(6000, 0, "RT", NoteCounts((3, 0, 0, 0))), CASSETTES) == 0


def test_the_first_word_is_new() -> None:
    verdict = judge(None, _notes(confirmation(6000, SIXTY)))
    assert verdict.action is Action.NEW and verdict.delta == Movement(dispensed=(3, 0, 0, 0))


def test_a_repeat_changes_nothing_even_when_it_carries_the_capture_flag() -> None:
    first = _notes(confirmation(6000, SIXTY))
    verdict = judge(first, _notes(confirmation(6000, SIXTY, captured=True)))
    assert verdict.action is Action.DUPLICATE and verdict.delta.is_zero
    assert verdict.newly_captured and verdict.stands.captured


def test_a_repeat_without_note_counts_is_a_repeat_even_if_the_mix_would_differ_now() -> None:
    first = with_notes(confirmation(10000, None), CASSETTES, "840")[0]  # one 100.00 note
    no_hundreds = (*CASSETTES[:3], Cassette(4, "840", 10000, 1, dispensed=1))
    again = with_notes(confirmation(10000, None), no_hundreds, "840")[0]  # two 50.00 notes
    assert judge(first, again).action is Action.DUPLICATE


def test_a_reversal_after_the_confirmation_replaces_it_and_moves_only_the_difference() -> None:
    confirmed = _notes(confirmation(6000, SIXTY))
    partial = _notes(reversal(6000, 2000, "22", NoteCounts((1, 0, 0, 0), (1, 0, 0, 0))))
    verdict = judge(confirmed, partial)
    assert verdict.action is Action.REPLACED and verdict.stands == partial
    assert verdict.delta == Movement(dispensed=(-2, 0, 0, 0), rejected=(1, 0, 0, 0))
    # The cassettes after both words hold exactly the partial's notes, never both.
    after = apply_movement(apply_movement(CASSETTES, judge(None, confirmed).delta), verdict.delta)
    assert after[0].dispensed == 1 and after[0].rejected == 1


def test_a_confirmation_after_a_reversal_is_ignored() -> None:
    reversed_ = _notes(reversal(6000, 0, "17", None))
    verdict = judge(reversed_, _notes(confirmation(6000, SIXTY)))
    assert verdict.action is Action.IGNORED and verdict.stands == reversed_ and verdict.delta.is_zero
    assert "late confirmation" in verdict.why


@pytest.mark.parametrize(("first", "second"), [
    (confirmation(6000, SIXTY), confirmation(6000, NoteCounts((1, 0, 0, 1)))),
    (reversal(6000, 2000, "22", None), reversal(6000, 4000, "22", None)),
])
def test_a_different_second_report_of_the_same_kind_is_ignored(first: DispenseOutcome,
                                                              second: DispenseOutcome) -> None:
    verdict = judge(_notes(first), _notes(second))
    assert verdict.action is Action.IGNORED and verdict.stands == _notes(first) and verdict.delta.is_zero


def test_the_terminals_word_replaces_the_hosts_assumption_never_the_reverse() -> None:
    guess = _notes(assumed(6000))  # mix: 50 + 10
    assert guess.movement == Movement(dispensed=(0, 1, 1, 0)) and guess.source is Source.HOST
    late = judge(guess, _notes(confirmation(6000, SIXTY)))
    assert late.action is Action.REPLACED and late.delta == Movement(dispensed=(3, -1, -1, 0))
    refund = judge(guess, _notes(reversal(6000, 0, "68", None)))
    assert refund.action is Action.REPLACED and refund.delta == Movement(dispensed=(0, -1, -1, 0))
    assert judge(_notes(confirmation(6000, SIXTY)), guess).action is Action.IGNORED


def test_judge_needs_the_notes() -> None:
    with pytest.raises(DispenseError):
        judge(None, confirmation(6000, None))


def test_overdue_after_the_wait() -> None:
    at = datetime(2026, 12, 8, tzinfo=UTC)
    assert not is_overdue(at, at + timedelta(seconds=59), 60)
    assert is_overdue(at, at + timedelta(seconds=60), 60)
