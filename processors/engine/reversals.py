"""Reversals (0400, 0420 and their repeats), full or partial (DE 95): idempotent, in the account's currency by the
original's own rate, and remembered when their original is not known yet (:mod:`processors.early`)."""

from __future__ import annotations

from processors import early, money
from processors.booking import add_usage, post, reduce_hold
from processors.engine.context import RC, Ctx, Decision, Parts
from processors.engine.pinchange import reverse_change
from processors.engine.steps import approved, begin, card_account, cash_of, new_txn, replay, same_card
from processors.fields import SPENDING, keys_from_de90, replacement_amount
from processors.model import Hold, Txn, TxnStatus, TxnType
from switch.model.message import Message


def reversal(eng: Parts, request: Message) -> Decision:
    """0400 / 0420 (and repeats): the original found by DE 90 (else the request's own keys) and the same card is
    reversed; an unknown one is 25 and remembered; one that was declined is acknowledged and remembered."""
    ctx = begin(eng, request)
    state = eng.state
    dup = state.txns_by_dup_key.get(ctx.key)
    if dup is not None:
        return replay(eng, ctx, dup)  # any repeat of a reversal gets the same answer, never 94
    original = None
    for key in keys_from_de90(request):
        original = state.txns_by_original.get(key)
        if original is not None:
            break
    pan = request.pan
    hashed = eng.pan_hash(pan) if pan else ""
    card = state.cards_by_hash.get(hashed) if hashed else None
    if original is not None and pan and (card is None or not same_card(eng, card, original)):
        original = None
    if original is None:
        if pan and card is None:
            return Decision(request.make_response(RC.UNABLE_TO_LOCATE), ctx.changes.effects())
        # The original (or its stand-in advice) may still arrive: remembered, so that it is not posted then.
        remember(eng, ctx, hashed)
        return Decision(request.make_response(RC.UNABLE_TO_LOCATE), ctx.changes.effects())
    if original.response_code != RC.APPROVED:
        # Nothing approved here to give back; but the switch may have stood in after this decline (the cell's
        # answer lost or late) and its advice still be on the way: remembered, so that it is reversed too.
        remember(eng, ctx, hashed)
        return Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
    return reverse(eng, ctx, original, replacement_amount(request))


def remember(eng: Parts, ctx: Ctx, hashed: str) -> None:
    """Remember the reversal of ``ctx`` (processors.early), once: a repeat finds it already there. Not one
    without a PAN: it would match any card's transaction with the same STAN, DE 7 and acquirer. Nor a new one
    past the caps (the answer is the same either way)."""
    if not hashed or early.remembered(eng.state, ctx.key, ctx.now) is not None:
        return
    if eng.early_caps.admit(eng.state, hashed, ctx.request.pan or "", ctx.now):
        ctx.changes.add(early.remember(eng.state, ctx.request, ctx.key, hashed, ctx.now,
                                       eng.bank.reversal_retention_days))


def reverse(eng: Parts, ctx: Ctx, original: Txn, replacement: int | None) -> Decision:
    """Reverse ``original`` down to ``replacement`` (DE 95's actual amount; None: fully)."""
    state = eng.state
    request = ctx.request
    ctx.card = state.cards.get(original.card_id or "")
    ctx.account = state.accounts.get(original.account_id or "")
    if original.txn_type == TxnType.PIN_CHANGE:  # no money: the PIN before it comes back
        return reverse_change(eng, ctx, original)
    acknowledge = Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
    if original.response_code != RC.APPROVED or ctx.account is None or ctx.card is None:
        return acknowledge  # nothing was approved, so nothing to give back
    if replacement is not None:
        replacement = in_account_currency(original, replacement)
    target = original.amount - replacement if replacement is not None else original.amount
    target = max(target, 0)
    delta = target - original.reversed_amount
    full = target >= original.amount
    fee = original.fee if full and original.status != TxnStatus.REVERSED else 0
    if delta <= 0 and not fee:
        return acknowledge
    delta = max(delta, 0)
    hold = state.holds.get(original.hold_id) if original.hold_id else None
    if original.hold_id and hold is None and original.posting_id is None:
        return acknowledge  # a pre-authorization already completed or expired: reverse the completion
    if original.txn_type == TxnType.TRANSFER and original.posting_id is not None:
        # Exactly the account the transfer credited (recorded on the Txn; DE 3 "00" or DE 103 may name an
        # account that card.accounts does not list). Rows from before 0002 fall back to DE 3 positions 5-6.
        to_id = original.to_account_id
        if to_id is None:
            to = card_account(eng, ctx.card, original.processing_code[4:6], "")
            to_id = to.id if to is not None else None
        ctx.to_account = state.accounts.get(to_id or "")
        if ctx.to_account is None:
            return Decision(request.make_response(RC.UNABLE_TO_LOCATE), ctx.changes.effects())
    return apply_reversal(eng, ctx, original, hold, delta, fee, target, full)


def in_account_currency(original: Txn, replacement: int) -> int:
    """DE 95's actual amount (ISO 8583:1987: in the transaction currency, DE 49) in the account currency of
    ``original``, by the original's own rate (DE 6 / DE 4, i.e. ``amount / request_amount``).

    Rounding: half up to the account currency's minor unit, so a replacement equal to DE 4 gives exactly
    the amount taken (no residue is left posted or reversed twice); the result never exceeds it."""
    requested = original.request_amount
    if (not requested or not original.request_currency or original.request_currency == original.currency):
        return replacement
    return min(money.at_rate(replacement, original.amount, requested), original.amount)


def apply_reversal(
    eng: Parts, ctx: Ctx, original: Txn, hold: Hold | None, delta: int, fee: int, target: int, full: bool,
) -> Decision:
    """Give back ``delta`` of ``original`` (and its fee on a full reversal): from its hold, or by a reversing
    posting; its usage on the limits too. ``original`` records ``target`` as reversed."""
    state = eng.state
    account = ctx.account
    card = ctx.card
    assert account is not None and card is not None
    ctx.amount, ctx.fee = delta, fee
    ctx.txn_type = TxnType(original.txn_type)
    ctx.channel = original.channel
    n, txn = new_txn(eng, ctx, RC.APPROVED, TxnStatus.APPROVED)
    txn.original_id = original.id
    txn.channel = original.channel
    if hold is not None:
        txn.fee = 0
        reduce_hold(state, hold, hold.amount if full else delta, ctx.changes)
        txn.hold_id = hold.id
    elif original.posting_id is not None:
        to_account = ctx.to_account
        # Taking back a payment into a credit line owes again the cash it repaid; a partial reversal gives the
        # cash back first (the cautious side: the cash sub-limit is never freed by money no longer paid).
        restore = min(delta, original.cash_part)
        original.cash_part -= restore
        posting = post(state, ctx.changes, posting_id=f"P{eng.prefix}T{n}", txn_id=txn.id, now=ctx.now,
                       description=f"reversal of {original.id}", txn_type=original.txn_type,
                       account=account, to_account=to_account, amount=delta, fee=fee,
                       cash=cash_of(original, account), reverse=True, payee_cash=restore)
        txn.posting_id = posting.id
    if original.txn_type in SPENDING and delta:
        add_usage(state, ctx.changes, card.id, original.created_at.date(), original.channel, -delta,
                  -1 if full else 0)
    original.reversed_amount = target
    original.status = TxnStatus.REVERSED if full else TxnStatus.PARTIALLY_REVERSED
    ctx.changes.add(original)
    return approved(eng, ctx, txn)
