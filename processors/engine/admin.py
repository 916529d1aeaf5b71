"""Administrative messages (ISO 8583:1987 message class 6): the card capture advice.

When an ATM retains a card (the cardholder left it, a fault, or the host told it to), the switch tells the card's
cell with an **0620 administrative advice**: DE 2 (or DE 35) the card, DE 41 the terminal, DE 60 ``CAPTURED``, and
its own DE 7 / DE 11 (DE 32 when it has one). The cell

- sets an active card's status to ``captured`` (what it was is kept in ``status_before_block``: ``card.unblock``
  puts it back when the cardholder has the card again). A card that is not active (blocked, lost, stolen,
  inactive, expired...) keeps its status: the stronger one stands, and the capture is still recorded;
- records an audit event (:class:`~processors.model.CardEvent` ``captured``, with the terminal) and notes it for
  the operator (the host logs the note as a warning: the alert);
- answers **0630 00**. A repeat (0621) or a second copy under the same DE 11 / 7 / 41 / 32 is acknowledged 00
  without a second event: the card's duplicate key finds the first one (kept like transactions, for
  ``txn_retention_days``), so a late repeat never captures a card released since.

A captured card is declined **04 (pick up card)** on every request (:data:`processors.engine.rules.STATUS_CODES`):
the plastic is in the bank's hands, so whatever presents that card now is a copy, or someone else holding it, and
a terminal that can retain it should (ISO 8583:1987 field 39: 04 pick up, no fraud asserted). Reversals and
advices of what happened before the capture (the withdrawal whose cash was retracted with the card) are still
applied: they report the past.

Answers that are not 00: 30 without DE 60; 12 for a DE 60 other than ``CAPTURED``, and for an 0600 request (the
cell knows no administrative request); 14 for a card the cell does not know. The switch's store-and-forward takes
each of them as delivered (only 91/96 are not): a capture of an unknown card has nothing to change.
"""

from __future__ import annotations

from processors.engine.context import APPROVED, RC, Decision, Parts, text
from processors.engine.steps import begin, record_event
from processors.model import CardEventKind, CardStatus
from switch.model.message import Message

CAPTURED = "CAPTURED"  # DE 60 of a card capture advice


def administrative(eng: Parts, request: Message) -> Decision:
    """0600 / 0620 (and their repeats): see the module docstring."""
    ctx = begin(eng, request)
    if request.mti[2] != "2":
        return Decision(request.make_response(RC.INVALID_TRANSACTION), ctx.changes.effects())
    if ctx.key in eng.state.card_events_by_key:  # a repeat, or a copy of one already recorded
        return Decision(request.make_response(APPROVED), ctx.changes.effects())
    reason = text(request, 60).rstrip()
    if not reason:
        return Decision(request.make_response(RC.FORMAT_ERROR), ctx.changes.effects(),
                        note="administrative advice without DE 60")
    if reason.upper() != CAPTURED:
        # Its text is the switch's own (no card data); quoted short for the log.
        return Decision(request.make_response(RC.INVALID_TRANSACTION), ctx.changes.effects(),
                        note=f"administrative advice with DE 60 {reason[:20]!r}: not handled")
    pan = request.pan
    card = eng.state.cards_by_hash.get(eng.pan_hash(pan)) if pan else None
    if card is None:
        return Decision(request.make_response(RC.INVALID_CARD_NUMBER), ctx.changes.effects(),
                        note="card capture advice for a card this cell does not know")
    terminal = text(request, 41) or "?"
    if card.status == CardStatus.ACTIVE:
        card.status_before_block = card.status.value
        card.status, card.status_reason = CardStatus.CAPTURED, f"captured by ATM {terminal}"
        ctx.changes.add(card)
        detail = f"captured by ATM {terminal}"
    else:
        detail = f"captured by ATM {terminal}; the card stays {card.status.value}"
    record_event(eng, ctx, card, CardEventKind.CAPTURED, detail=detail)
    return Decision(request.make_response(APPROVED), ctx.changes.effects(), note=f"card {card.id} {detail}")
