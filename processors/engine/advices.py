"""Advices (0120, 0220 and their repeats): what the switch or the acquirer already approved, applied without PIN,
limit or funds checks, and never declined for a business reason (see :mod:`processors.engine`): completions of a
pre-authorization, stand-in advices, forced posts."""

from __future__ import annotations

from processors import early, money
from processors.booking import release_hold
from processors.engine.approval import approve_request, post_txn
from processors.engine.context import RC, Ctx, Decision, Declined, Parts, text
from processors.engine.rules import resolve_accounts, resolve_amount
from processors.engine.steps import approved, begin, decline, find_card, new_txn, replay, same_card
from processors.fees import fee_for
from processors.fields import keys_from_de90
from processors.model import Card, ExceptionKind, HoldStatus, Txn, TxnStatus, TxnType
from switch.model.message import Message


def advice(eng: Parts, request: Message) -> Decision:
    """Apply what the switch (or acquirer) already approved: no PIN, limit or funds checks."""
    ctx = begin(eng, request)
    decision = apply_advice(eng, ctx)
    decision.note = ctx.note
    return decision


def apply_advice(eng: Parts, ctx: Ctx) -> Decision:
    """A repeat gets its first answer; a completion closes its pre-authorization, on the pre-authorization's
    account; the rest is approved and posted (or held, 0120) as sent, with what had to be assumed flagged for the
    back office."""
    request = ctx.request
    dup = eng.state.txns_by_dup_key.get(ctx.key)
    if dup is not None:
        if request.mti[3] in "13":
            return replay(eng, ctx, dup)
        return Decision(request.make_response(RC.DUPLICATE), ctx.changes.effects())
    pan = request.pan
    try:
        if ctx.txn_type is None:
            raise Declined(RC.INVALID_TRANSACTION, "unknown processing code")
        if ctx.txn_type == TxnType.PIN_CHANGE:
            # Nothing to apply: an advice carries no PIN block (the switch never keeps one), so no new PIN. The
            # switch must not stand in for a PIN change (it cannot verify the current PIN either).
            raise Declined(RC.INVALID_TRANSACTION, "a PIN change cannot be applied from an advice (no new PIN)")
        card = find_card(eng, ctx, eng.pan_hash(pan) if pan else "")
        product = ctx.product = eng.catalog.products.get(card.product)
        if product is None:
            raise Declined(RC.SYSTEM_MALFUNCTION, "card's product is not in the catalogue")
    except Declined as declined:
        return not_applied(eng, ctx, declined)
    # The original (DE 90) first: what a completion is worth depends on the account it completes on.
    original = approved_original(eng, request, card)
    adjusting = original is not None and is_count_adjustment(request, original)
    if original is not None and not adjusting:
        if original.mti[1] == "1" and request.mti[1] == "2":
            if original.status == TxnStatus.COMPLETED:
                # A second completion of one pre-authorization: an advice is repeated until the
                # acquirer sees its response (ISO 8583:1987 advice/repeat, xx20 then xx21 - some resend
                # xx20 with a new STAN), so it is acknowledged and never posted twice.
                return Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
        elif original.mti[1] == request.mti[1]:
            # The request this advice stands in for was already approved here: nothing more to apply.
            return Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
        else:
            original = None
    try:
        if original is not None:
            completion_account(eng, ctx, original)
        else:
            try:
                resolve_accounts(eng, ctx, card)
            except Declined as declined:
                default_account(eng, ctx, card, declined)
        resolve_amount(eng, ctx)
    except Declined as declined:
        return not_applied(eng, ctx, declined)
    if original is not None:
        return count_adjustment(eng, ctx, original) if adjusting else complete(eng, ctx, original)
    if eng.state.early_by_original:
        # Its reversal came first (processors.early): the advice is accepted, and reversed in the same decision.
        remembered = early.reversals_of(eng.state, request, card.pan_hash, ctx.now)
        ctx.early = [row for row in remembered if row.applied_to is None]
    assert ctx.account is not None and ctx.txn_type is not None
    ctx.fee = fee_for(product, ctx.account, ctx.txn_type, ctx.channel, foreign=ctx.foreign,
                      cross_border=ctx.cross_border, amount=ctx.amount, override=ctx.fee_override)
    return approve_request(eng, ctx)


def not_applied(eng: Parts, ctx: Ctx, declined: Declined) -> Decision:
    """The answer to an advice that cannot be applied: 96 (not processed, so not delivered: the switch's
    store-and-forward sends it again, and the flags noted so far describe nothing that was posted), else the
    decline, recorded as an exception."""
    if declined.code == RC.SYSTEM_MALFUNCTION:
        ctx.note = declined.reason
        return Decision(ctx.request.make_response(declined.code), ctx.changes.effects())
    return decline(eng, ctx, declined.code, declined.reason)


def approved_original(eng: Parts, request: Message, card: Card) -> Txn | None:
    """The approved transaction of ``card`` that DE 90 of ``request`` names, if any."""
    for key in keys_from_de90(request):
        original = eng.state.txns_by_original.get(key)
        if original is not None:
            if same_card(eng, card, original) and original.response_code == RC.APPROVED:
                return original
            return None
    return None


def is_count_adjustment(request: Message, original: Txn) -> bool:
    """Whether advice ``request`` adds to the cash deposit ``original`` (an 0200, DE 3 ``21``) that its DE 90 names:
    a deposit advice (DE 3 ``21``) under an identity of its own. A cash-recycling ATM counts a deposit again after
    the 0200 (a note first read as suspect is accepted); when it finds more, the ATM host sends such an 0220 for the
    difference. Its own DE 11 / DE 7 are not the ones DE 90 names: that is what tells it from the switch's stand-in
    advice of the deposit itself, which carries the deposit's own identity (switch.exchange.reversal)."""
    if original.txn_type != TxnType.DEPOSIT or original.mti[1] != "2" or text(request, 3)[:2] != "21":
        return False
    de90 = text(request, 90)
    return len(de90) >= 20 and (text(request, 11), text(request, 7)) != (de90[4:10], de90[10:20])


def count_adjustment(eng: Parts, ctx: Ctx, original: Txn) -> Decision:
    """Credit the difference a later count found over cash deposit ``original`` (DE 4, in the deposit's account:
    :func:`completion_account`), as a deposit of its own that names the original; no second fee (the deposit paid
    any). A repeat (0221) is replayed by its duplicate key; its reversal (0420 naming this 0220) takes it back."""
    ctx.fee = 0
    n, txn = new_txn(eng, ctx, RC.APPROVED, TxnStatus.APPROVED)
    txn.original_id = original.id
    post_txn(eng, ctx, n, txn)
    return approved(eng, ctx, txn)


def completion_account(eng: Parts, ctx: Ctx, original: Txn) -> None:
    """A completion is posted where its pre-authorization held the money, whatever account its own DE 3 or DE
    102 names: that hold is what it closes, so its amount is resolved (DE 6 / DE 51, the cell's rate) against that
    account's currency, and it is of the pre-authorization's transaction type."""
    account = eng.state.accounts.get(original.account_id or "")
    if account is None:  # accounts are never deleted: a cell whose rows are not all there must not guess
        raise Declined(RC.SYSTEM_MALFUNCTION, f"the account of pre-authorization {original.id} is not in the cell")
    ctx.account, ctx.to_account = account, None
    ctx.txn_type = TxnType(original.txn_type)


def default_account(eng: Parts, ctx: Ctx, card: Card, declined: Declined) -> None:
    """An advice naming an account the card does not have (DE 3 account type, DE 102/103) is posted to the
    card's default account, and recorded as an exception: the money left the terminal, so it is charged to
    the cardholder rather than lost. Not a transfer: it moves money between the cardholder's own accounts,
    nothing left the bank, so a transfer the cell cannot place stays declined (12)."""
    account = eng.state.accounts.get(card.account_id)
    if ctx.txn_type == TxnType.TRANSFER or account is None:
        raise declined
    ctx.account, ctx.to_account = account, None
    ctx.flag(ExceptionKind.ACCOUNT_NOT_LINKED,
             f"{declined.reason} (DE 3 {ctx.pc}): posted to the card's default account {account.id}")


def complete(eng: Parts, ctx: Ctx, original: Txn) -> Decision:
    """0220 completion of a pre-authorization: close its hold and post the completed amount (``ctx.amount``, in
    the currency of ``ctx.account``, the pre-authorization's account: :func:`completion_account`).

    A completion may exceed the authorized amount (tips, fuel) by the bank's tolerance
    (``completion_tolerance_bp``). Beyond it, it is still posted as sent - the sale happened, and a completion
    declined is never charged (the switch's store-and-forward takes the answer as delivered) - and recorded
    as an exception for the back office, which takes a corrupt or disputed amount up with the acquirer."""
    state = eng.state
    cap = original.amount + original.amount * eng.bank.completion_tolerance_bp // 10_000
    if ctx.amount > cap:
        currency = original.currency  # the account's (completion_account): both amounts are in it
        ctx.flag(ExceptionKind.COMPLETION_OVER_TOLERANCE, (
            f"completion of {money.format_amount(ctx.amount, currency)} above the authorization of "
            f"{money.format_amount(original.amount, currency)} + {eng.bank.completion_tolerance_bp / 100:g}% "
            f"tolerance ({money.format_amount(cap, currency)}): posted as sent"))
    hold = state.holds.get(original.hold_id) if original.hold_id else None
    if hold is not None and hold.expires_at <= ctx.now:
        release_hold(state, hold, HoldStatus.EXPIRED, ctx.changes)
        hold = None
    if hold is not None:
        release_hold(state, hold, HoldStatus.COMPLETED, ctx.changes)
    ctx.fee = original.fee
    n, txn = new_txn(eng, ctx, RC.APPROVED, TxnStatus.APPROVED)
    txn.original_id = original.id
    txn.hold_id = original.hold_id
    post_txn(eng, ctx, n, txn)
    original.status = TxnStatus.COMPLETED
    ctx.changes.add(original)
    return approved(eng, ctx, txn)
