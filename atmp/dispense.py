"""A withdrawal's dispense outcome, and how each later word about the same withdrawal is judged.

What a terminal says about an approved withdrawal (atm-interface):

========== ============================================= =====================================================
kind       message                                        money and notes
========== ============================================= =====================================================
dispensed  0220 (or 0420 whose DE 95 is the whole amount) the approved amount; DE 63 notes dispensed
partial    0420 with 0 < DE 95 < amount                   DE 95 dispensed, the rest reversed; DE 63 notes
none       0420 without DE 95 (or zero)                   nothing dispensed; rejected notes (DE 63 R) still left
retracted  0420 reason RT                                 nothing charged; DE 63 D counts the notes retracted
assumed    none within the host's wait (no word at all)   the approved amount, notes by the host's mix
========== ============================================= =====================================================

``assumed`` is the host's rule when a terminal never reports: an ATM keeps its reversals in its own
store-and-forward queue (it sends 0421 until it has an 0430), and a 0200 whose 0210 it never received is reversed
with reason 68. So a withdrawal the host approved and heard nothing more about is taken as paid out in full, and
stays charged; any later word from the terminal replaces the assumption.

The rule for a second word about the same withdrawal (:func:`judge`), the one a bank's reconciliation wants:

- the same outcome again (a repeat, 0221 / 0421): a duplicate, nothing changes;
- a reversal after a confirmation: a correction from the terminal's journal (it confirmed, then found the cash
  was not taken, or counted a partial): the reversal replaces the outcome, and the cassettes move by the
  difference between the two note counts (never the whole count twice). The reversal goes to the issuer too;
- a confirmation after a reversal: ignored and counted as a late confirmation. The reversal has gone to the
  issuer already, so the customer was refunded: letting a confirmation win would leave cash counted out that
  nobody was charged for;
- a second, different confirmation (or reversal): ignored and counted: the first stands, because that is what the
  issuer was told; the difference shows up at replenishment;
- any word from the terminal after the host's assumption replaces it; an assumption after a word is ignored.

Notes are never counted twice: the cassettes always hold the sum of the outcomes that stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from atmp.cash import Movement, counts, note_mix
from atmp.errors import DispenseError
from atmp.interface import NoteCounts
from atmp.model import Cassette


class OutcomeKind(StrEnum):
    DISPENSED = "dispensed"
    PARTIAL = "partial"
    NONE = "none"
    RETRACTED = "retracted"
    ASSUMED = "assumed"


class Source(StrEnum):
    """Who said it: the terminal's confirmation (0220/0221), its reversal (0420/0421), or the host's rule."""

    CONFIRMATION = "0220"
    REVERSAL = "0420"
    HOST = "host"


# DE 39 of a 0420 from an ATM (atm-interface).
REASON_CANCELLED = "17"
REASON_DISPENSER_FAULT = "22"
REASON_NO_ANSWER = "68"
REASON_RETRACTED = "RT"
REASONS = {
    REASON_CANCELLED: "customer cancelled",
    REASON_DISPENSER_FAULT: "dispenser fault",
    REASON_NO_ANSWER: "no answer from the host in time",
    REASON_RETRACTED: "cash presented, not taken, retracted",
}


@dataclass(frozen=True, slots=True)
class DispenseOutcome:
    """What happened to one withdrawal's cash. ``movement`` None: the terminal sent no note counts and the host
    has not derived them yet (:func:`with_notes`); ``notes_derived``: they came from the host's mix, not DE 63."""

    kind: OutcomeKind
    source: Source
    approved_amount: int
    dispensed_amount: int
    movement: Movement | None = None
    reason: str | None = None
    notes_derived: bool = False
    captured: bool = False

    @property
    def reversed_amount(self) -> int:
        return self.approved_amount - self.dispensed_amount

    def same_as(self, other: DispenseOutcome) -> bool:
        """The same report (a repeat), whatever the capture flag (a repeat may or may not carry DE 60). Notes the
        host derived are left out of the comparison: a repeat without DE 63 is mixed from the cassettes as they
        are by then, which may differ from the first mix without the report being any different."""
        if self.notes_derived or other.notes_derived:
            return _report(self) == _report(other)
        return replace(self, captured=False) == replace(other, captured=False)


def confirmation(approved_amount: int, notes: NoteCounts | None, *, captured: bool = False) -> DispenseOutcome:
    """A 0220: the approved amount went out (DE 4 as in the 0200); DE 63 ``notes`` when the terminal counted."""
    _check_amounts(approved_amount, approved_amount)
    return DispenseOutcome(OutcomeKind.DISPENSED, Source.CONFIRMATION, approved_amount, approved_amount,
                           _movement(notes), captured=captured)


def reversal(approved_amount: int, dispensed_amount: int, reason: str | None, notes: NoteCounts | None, *,
             captured: bool = False) -> DispenseOutcome:
    """A 0420: ``dispensed_amount`` from DE 95 (0 when absent), ``reason`` its DE 39. Reason RT is a retract
    whatever DE 95 says: the customer took nothing, and DE 63 D counts the notes pulled back."""
    if reason == REASON_RETRACTED:
        _check_amounts(approved_amount, 0)
        pulled_back = None if notes is None else Movement(rejected=notes.rejected, retracted=notes.dispensed)
        return DispenseOutcome(OutcomeKind.RETRACTED, Source.REVERSAL, approved_amount, 0, pulled_back, reason,
                               captured=captured)
    _check_amounts(approved_amount, dispensed_amount)
    if dispensed_amount == approved_amount:
        kind = OutcomeKind.DISPENSED
    elif dispensed_amount == 0:
        kind = OutcomeKind.NONE
    else:
        kind = OutcomeKind.PARTIAL
    # Nothing went out and no counts: no notes to guess.
    notes_out = Movement() if kind is OutcomeKind.NONE and notes is None else _movement(notes)
    return DispenseOutcome(kind, Source.REVERSAL, approved_amount, dispensed_amount, notes_out, reason,
                           captured=captured)


def assumed(approved_amount: int) -> DispenseOutcome:
    """The host's rule for a withdrawal with no word from the terminal in time: paid out in full."""
    _check_amounts(approved_amount, approved_amount)
    return DispenseOutcome(OutcomeKind.ASSUMED, Source.HOST, approved_amount, approved_amount)


def is_overdue(approved_at: datetime, now: datetime, wait_s: float) -> bool:
    """Whether an approved withdrawal without a word from its terminal is due for the host's assumption."""
    return now - approved_at >= timedelta(seconds=wait_s)


def with_notes(outcome: DispenseOutcome, cassettes: Sequence[Cassette], currency: str) -> tuple[DispenseOutcome, bool]:
    """``outcome`` with its notes: as reported, or derived by the host's mix (largest denomination first, from the
    cassettes' counts) when the terminal sent none. Returns the outcome and whether a mix was found; when none
    can make the amount, the outcome counts no notes (the replenishment will show the difference) and False."""
    if outcome.movement is not None:
        return outcome, True
    amount = outcome.approved_amount if outcome.kind is OutcomeKind.RETRACTED else outcome.dispensed_amount
    mix = note_mix(cassettes, amount, currency)
    found = mix is not None
    notes = mix if mix is not None else counts({})
    movement = Movement(retracted=notes) if outcome.kind is OutcomeKind.RETRACTED else Movement(dispensed=notes)
    return replace(outcome, movement=movement, notes_derived=True), found


def notes_mismatch(outcome: DispenseOutcome, cassettes: Sequence[Cassette]) -> int:
    """The value of the notes the terminal counted out minus the amount it says was dispensed (0: they agree).
    For a retract the retracted notes are set against the approved amount."""
    if outcome.movement is None:
        return 0
    if outcome.kind is OutcomeKind.RETRACTED:
        return outcome.movement.value(cassettes, "retracted") - outcome.approved_amount
    return outcome.movement.value(cassettes) - outcome.dispensed_amount


class Action(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REPLACED = "replaced"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a word about a withdrawal does: ``stands`` is the outcome afterwards, ``delta`` what the cassettes
    move by (zero unless new or replaced), ``why`` the rule that decided, for the audit trail."""

    action: Action
    stands: DispenseOutcome
    delta: Movement
    why: str
    newly_captured: bool = False


def judge(existing: DispenseOutcome | None, new: DispenseOutcome) -> Judgement:
    """Judge ``new`` against the outcome that stands (None: the first word). Both must carry their notes."""
    if new.movement is None or (existing is not None and existing.movement is None):
        raise DispenseError("judge needs outcomes with their notes (with_notes)")
    if existing is None:
        return Judgement(Action.NEW, new, new.movement, "first report", new.captured)
    assert existing.movement is not None
    newly_captured = new.captured and not existing.captured
    kept = replace(existing, captured=existing.captured or new.captured)
    if existing.same_as(new):
        return Judgement(Action.DUPLICATE, kept, Movement(), "a repeat of the same report", newly_captured)
    if new.source is Source.HOST:
        return Judgement(Action.IGNORED, kept, Movement(), "the terminal's word stands over the host's assumption",
                         newly_captured)
    replaces = (existing.source is Source.HOST
                or (existing.source is Source.CONFIRMATION and new.source is Source.REVERSAL))
    if replaces:
        stands = replace(new, captured=existing.captured or new.captured)
        why = ("the terminal's word replaces the host's assumption" if existing.source is Source.HOST
               else "a reversal after the confirmation corrects it (the terminal's journal)")
        return Judgement(Action.REPLACED, stands, new.movement - existing.movement, why, newly_captured)
    if existing.source is Source.REVERSAL and new.source is Source.CONFIRMATION:
        why = "a late confirmation after the reversal: the reversal went to the issuer and stands"
    else:
        why = f"a different {new.source.value} after the first: the first stands (the issuer was told it)"
    return Judgement(Action.IGNORED, kept, Movement(), why, newly_captured)


def _report(outcome: DispenseOutcome) -> tuple[object, ...]:
    return (outcome.kind, outcome.source, outcome.approved_amount, outcome.dispensed_amount, outcome.reason)


def _movement(notes: NoteCounts | None) -> Movement | None:
    return None if notes is None else Movement(dispensed=notes.dispensed, rejected=notes.rejected)


def _check_amounts(approved: int, dispensed: int) -> None:
    if approved <= 0:
        raise DispenseError("the approved amount must be above zero")
    if not 0 <= dispensed <= approved:
        raise DispenseError(f"dispensed {dispensed} is outside 0 .. the approved {approved}")
