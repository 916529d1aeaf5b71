"""PIN change at an ATM (0200, DE 3 ``92xxxx`` - Mastercard's code - or ``70xxxx``, VISA's) and its reversal.

The request carries the current PIN in DE 52 and the new one in DE 125, both ISO 9564 format 0 blocks under the
cell's zone PIN key (the switch translated them from the terminal's key, as it does DE 52 for a withdrawal). The
cell

1. checks the request: a financial request (0200; else 12) with DE 52 and a DE 125 of 16 hex characters (30
   otherwise, before any PIN is tried, so a malformed request costs no PIN try);
2. verifies the current PIN exactly as a withdrawal does (:func:`processors.engine.checks.verify`): 55 for a wrong
   one, counted on the card's tries, 75 once they are used up;
3. has the HSM compute the PVV of the new PIN (Thales FW, :func:`processors.security.new_pin_pvv`) - only after the
   current PIN verified; a DE 125 that holds no PIN under the zone key is 30, the card unchanged;
4. stores it on the card, resets its PIN tries, and records the change as an audit event
   (:class:`~processors.model.CardEvent` ``pin_changed``, with the PVV it replaced) - no posting, no money, no fee;
   answers 00 with an approval code (DE 38).

A new PIN equal to the old one is allowed (the PVV is the same; the change is still recorded). A repeat (0201) gets
the first answer again (the engine's duplicate rule), without a second HSM call.

A reversal (0400/0420, and repeats) of an approved PIN change puts back the PVV it replaced: the terminal reports it
could not complete the change (its answer was lost or came too late, the switch timed out and answered 91), so the
cardholder was told the PIN did not change and goes on using the old one. Left in place, the new PIN would lock the
cardholder out after three tries with the PIN they believe is theirs. It restores only while the card's PIN is still
the one that change set (``Card.pin_set_by``): after a later change, an operator's ``card.set_pin`` or
``card.reset_pin``, the later PIN stays and the event says why. Putting back a PVV grants nothing the cardholder did
not have before the change: the old PIN was verified by that very request.
"""

from __future__ import annotations

from processors.engine.checks import HEX16
from processors.engine.context import APPROVED, RC, Checks, Ctx, Decision, Declined, Parts, text
from processors.engine.steps import new_txn, record_event
from processors.model import CardEventKind, Txn, TxnStatus, TxnType


def check_request(eng: Parts, ctx: Ctx) -> None:
    """12 unless a financial request (0200); 30 without DE 52 or with a DE 125 that is not 16 hex characters. The
    card's default account is the transaction's account (a PIN is the card's, whatever account DE 3 names)."""
    request = ctx.request
    if request.mti[1] != "2":
        raise Declined(RC.INVALID_TRANSACTION, "a PIN change is a financial request (0200)")
    if not isinstance(request.fields.get(52), bytes):
        raise Declined(RC.FORMAT_ERROR, "PIN change without the current PIN block (DE 52)")
    if not HEX16.fullmatch(text(request, 125)):
        raise Declined(RC.FORMAT_ERROR, "new PIN block (DE 125) is not 16 hex characters")
    card = ctx.card
    assert card is not None
    ctx.account = eng.state.accounts.get(card.account_id)


def change_pin(eng: Parts, ctx: Ctx, checks: Checks | None) -> Decision:
    """Store the new PIN's PVV (the current PIN verified already: :func:`processors.engine.checks.verify`)."""
    if checks is None or (checks.new_pvv is None and not checks.new_pin_unreadable):
        raise Declined(RC.SYSTEM_MALFUNCTION, "PIN change: no PVV of the new PIN from the HSM")
    if checks.new_pvv is None:
        raise Declined(RC.FORMAT_ERROR, "new PIN block (DE 125) holds no PIN under the zone PIN key")
    card = ctx.card
    assert card is not None
    _, txn = new_txn(eng, ctx, RC.APPROVED, TxnStatus.APPROVED)
    previous = card.pvv
    card.pvv, card.pin_tries, card.pin_set_by = checks.new_pvv, 0, txn.id
    ctx.changes.add(card)
    record_event(eng, ctx, card, CardEventKind.PIN_CHANGED, txn_id=txn.id, previous_pvv=previous,
                 detail=f"PIN changed at terminal {text(ctx.request, 41) or '?'}")
    eng.state.put(txn)
    response = ctx.request.make_response(APPROVED)
    response[38] = txn.approval_code
    return Decision(response, ctx.changes.effects())


def reverse_change(eng: Parts, ctx: Ctx, original: Txn) -> Decision:
    """The reversal of PIN change ``original``: the PVV it replaced comes back while the card's PIN is still the one
    it set; answered 00 either way (an advice of what the terminal did), once (a repeat is replayed, a second
    reversal finds it reversed)."""
    card = ctx.card
    if original.response_code != RC.APPROVED or original.status == TxnStatus.REVERSED or card is None:
        return Decision(ctx.request.make_response(APPROVED), ctx.changes.effects())
    ctx.txn_type, ctx.amount, ctx.fee = TxnType.PIN_CHANGE, 0, 0
    _, txn = new_txn(eng, ctx, RC.APPROVED, TxnStatus.APPROVED)
    txn.original_id = original.id
    change = eng.state.card_events_by_txn.get(original.id)
    restored = change is not None and bool(change.previous_pvv) and card.pin_set_by == original.id
    if restored:
        assert change is not None
        card.pvv, card.pin_set_by = change.previous_pvv, ""
        ctx.changes.add(card)
        detail = f"PIN change {original.id} reversed: the PIN before it restored"
    elif change is None:
        detail = f"PIN change {original.id} reversed: its event is past the retention, the PIN is left as it is"
    else:
        detail = f"PIN change {original.id} reversed: the PIN was set again since, and is left as it is"
    record_event(eng, ctx, card, CardEventKind.PIN_CHANGE_REVERSED, txn_id=txn.id, detail=detail)
    original.status = TxnStatus.REVERSED
    ctx.changes.add(original)
    eng.state.put(txn)
    return Decision(ctx.request.make_response(APPROVED), ctx.changes.effects(), note="" if restored else detail)
