"""What a request (0100, 0200) is checked against before the HSM and the funds, and what an advice shares with it:
the card (14, 04, 41, 43, 62, 54), the product (57), the accounts DE 3 and DE 102/103 name (52, 53, 39, 12), the amount
and its currency (13, DE 6 / DE 51, the cell's own rates for an advice), the PIN a channel requires (55), and the
limits and funds (61, 65, 51)."""

from __future__ import annotations

from processors import money, security
from processors.booking import limit_code
from processors.credit import funds_for
from processors.engine.context import KIND_TYPES, RC, Ctx, Declined, Parts, text
from processors.engine.pinchange import check_request
from processors.engine.steps import card_account, cash_amount, find_card
from processors.fees import fee_for, stated_fee
from processors.fields import CREDITING, NO_AMOUNT, SPENDING, FeeFieldError
from processors.model import Card, CardStatus, ExceptionKind, TxnType
from switch.model.codes import ResponseCode

STATUS_CODES: dict[CardStatus, tuple[ResponseCode, str]] = {
    CardStatus.LOST: (RC.LOST_CARD, "card lost"),
    CardStatus.STOLEN: (RC.STOLEN_CARD, "card stolen"),
    CardStatus.BLOCKED: (RC.RESTRICTED_CARD, "card blocked"),
    CardStatus.INACTIVE: (RC.RESTRICTED_CARD, "card not activated"),
    CardStatus.EXPIRED: (RC.EXPIRED_CARD, "card expired"),
    CardStatus.REPLACED: (RC.INVALID_CARD_NUMBER, "card replaced"),
    # Retained by an ATM (processors.engine.admin): the plastic is the bank's, so whoever presents it now must not
    # keep it - 04 pick up card.
    CardStatus.CAPTURED: (RC.PICK_UP, "card captured at an ATM"),
}
# ISO 8583:1987 DE 39 for a DE 3 account type the card has no account of: 52 no cheque (checking, "20"),
# 53 no savings ("10"), 39 no credit account ("30"); any other type is an invalid transaction (12).
NO_ACCOUNT: dict[str, RC] = {"20": RC.NO_CHEQUE_ACCOUNT, "10": RC.NO_SAVINGS_ACCOUNT, "30": RC.NO_CREDIT_ACCOUNT}


def validate(eng: Parts, ctx: Ctx, hashed: str) -> None:
    """12, 14, 04, 41, 43, 62, 54, 57, 13, 30 (a PIN change's fields): everything decided without the HSM and
    without the funds."""
    request = ctx.request
    if ctx.txn_type is None:
        raise Declined(RC.INVALID_TRANSACTION, "unknown processing code")
    card = find_card(eng, ctx, hashed)
    status = STATUS_CODES.get(card.status)
    if status is not None:
        raise Declined(*status)
    now = ctx.now
    yymm = f"{now.year % 100:02d}{now.month:02d}"  # strftime("%y%m") cost 1.5 us a request (issue #5)
    if card.expiry and card.expiry < yymm:
        raise Declined(RC.EXPIRED_CARD, "card past its expiry date")
    de14 = text(request, 14)
    if de14 and card.expiry and de14 != card.expiry:
        raise Declined(RC.EXPIRED_CARD, "expiry date does not match the card")
    # Track 2 (ISO 7813) carries the expiry of the plastic that was read: a card replaced with the same
    # number gets a new expiry, so the old (lost, stolen or skimmed) stripe must not work any more.
    track_text = text(request, 35)
    track = security.parse_track2(track_text) if track_text else None
    if track is not None and card.expiry and track.expiry != card.expiry:
        raise Declined(RC.EXPIRED_CARD, "track 2 expiry does not match the card")
    product = eng.catalog.products.get(card.product)
    if product is None:
        raise Declined(RC.SYSTEM_MALFUNCTION, "card's product is not in the catalogue")
    ctx.product = product
    allowed = product.allowed or KIND_TYPES[product.kind]
    if ctx.txn_type not in allowed:
        raise Declined(RC.NOT_PERMITTED_CARDHOLDER, f"{ctx.txn_type} not permitted by product {product.code}")
    if request.mti[1] == "1" and ctx.txn_type == TxnType.TRANSFER:
        raise Declined(RC.INVALID_TRANSACTION, "transfers are financial requests (0200)")
    if ctx.txn_type == TxnType.PIN_CHANGE:
        check_request(eng, ctx)  # no amount, the card's default account
        return
    resolve_accounts(eng, ctx, card)
    resolve_amount(eng, ctx)


def resolve_accounts(eng: Parts, ctx: Ctx, card: Card) -> None:
    """The account DE 3 names (positions 3-4 "from", 5-6 "to"; 00 = the card's default account), or DE
    102/103 naming one of the cardholder's own accounts; 12 when it is not the cardholder's."""
    pc = ctx.pc
    request = ctx.request
    if ctx.txn_type in CREDITING:
        account = card_account(eng, card, pc[4:6], text(request, 103))
    else:
        account = card_account(eng, card, pc[2:4], text(request, 102))
    if account is None:
        kind = pc[4:6] if ctx.txn_type in CREDITING else pc[2:4]
        raise Declined(NO_ACCOUNT.get(kind, RC.INVALID_TRANSACTION), "account type not linked to the card")
    ctx.account = account
    if ctx.txn_type == TxnType.TRANSFER:
        to = card_account(eng, card, pc[4:6], text(request, 103))
        if to is None or to is account:
            raise Declined(RC.INVALID_TRANSACTION, "transfer destination is not another own account")
        if to.currency != account.currency:
            raise Declined(RC.INVALID_TRANSACTION, "transfer between currencies")
        ctx.to_account = to


def resolve_amount(eng: Parts, ctx: Ctx) -> None:
    """DE 4 in DE 49's currency, which must be the account's; or DE 6 when DE 51 (cardholder billing
    currency) is the account's. Balance inquiries need no amount. An advice in another currency without
    them is converted by the cell's own rate (:func:`cell_rate`; 96 when there is none)."""
    request = ctx.request
    assert ctx.account is not None
    currency = ctx.account.currency
    amount = ctx.request_amount = money.parse_amount(text(request, 4))
    code = text(request, 49)
    given = money.alpha(code) if code else ""
    # Recorded with the transaction: a code outside the table as received, so that its DE 28 and a partial
    # reversal's DE 95 (both in DE 49's currency) are never taken as the account's (steps.fee_field,
    # reversals.in_account_currency).
    ctx.request_currency = code if given is None else given
    advice = request.mti[2] == "2"
    if not code and ctx.txn_type not in NO_AMOUNT:
        raise Declined(RC.INVALID_AMOUNT, "no currency (DE 49)")
    rate: tuple[int, int | None] | None = None  # (DE 6, DE 4), or the cell's rate as such a pair
    if code and given != currency:
        billing = money.parse_amount(text(request, 6))
        if billing is not None and money.alpha(text(request, 51)) == currency and (given is not None or advice):
            # DE 6 is what the cardholder is billed, in the account's currency: neither DE 49's exponent nor a
            # rate is needed, so an advice is posted from it even when DE 49 is not in the cell's table (a code
            # withdrawn or without a minor unit); DE 28 follows at DE 6 / DE 4. A request must name a currency.
            rate = (billing, amount)
            amount = billing
        elif not advice:
            raise Declined(RC.INVALID_AMOUNT, "unknown currency" if given is None else "currency is not the account's")
        elif amount:  # (an advice without an amount - a balance inquiry's - needs no rate)
            if given is None:  # its exponent and any rate are unknown here: not posted now, sent again (96)
                raise Declined(RC.SYSTEM_MALFUNCTION, (
                    f"advice in currency {code} (DE 49), not a current ISO 4217 code with a minor unit, without "
                    "DE 6/DE 51 in the account's currency: answered 96, the switch's store-and-forward tries again"))
            billed_rate = cell_rate(eng, given, currency)
            rate, converted = billed_rate, money.at_rate(amount, *billed_rate)
            ctx.flag(ExceptionKind.CELL_RATE, (
                f"{money.format_amount(amount, given)} without a cardholder billing amount (DE 6/DE 51): "
                f"{money.format_amount(converted, currency)} at the cell's rate {given}/{currency} "
                f"{eng.catalog.rate(given, currency)}"))
            amount = converted
    if ctx.txn_type in NO_AMOUNT:  # an inquiry or a mini statement: no amount of its own, maybe a fee
        ctx.amount = amount or 0
        return
    if amount is None or amount <= 0:
        raise Declined(RC.INVALID_AMOUNT, "amount missing or zero")
    ctx.amount = amount
    assert ctx.product is not None
    try:
        ctx.fee_override = stated_fee(request, ctx.product, rate)
    except FeeFieldError as exc:
        if not advice:
            raise Declined(RC(exc.code), str(exc)) from None
        # An advice reports what the acquirer already did and is not declined: the switch's SAF takes any
        # answer as delivered, so a declined advice would never be posted. The product's fee applies.
        ctx.flag(ExceptionKind.FEE_NOT_TAKEN, f"DE 28 not taken ({exc}); the product's or account's fee applies")


def cell_rate(eng: Parts, source: str, target: str) -> tuple[int, int]:
    """The cell's own rate ``source`` -> ``target`` (``[rates]``) as the (billed, requested) pair of
    :func:`processors.money.at_rate`, the form DE 6 / DE 4 takes, so DE 28 is converted by the same rate as the
    amount. 96 without one: see :mod:`processors.engine` for why the advice is not posted at a guessed rate."""
    rate = eng.catalog.rate(source, target)
    if rate is None:
        raise Declined(RC.SYSTEM_MALFUNCTION, (
            f"advice in {source} without DE 6/DE 51 and no rate {source}/{target} in the catalogue's [rates]: "
            "answered 96; add the rate, restart the cell, and resend the advice if the switch's store-and-forward "
            "has given up on it (bulkhead saf show / saf resend)"))
    return money.rate_ratio(rate, source, target)


def pin_required(eng: Parts, ctx: Ctx) -> None:
    """55 for a request without a PIN block on a channel where the product requires one (``pin_required``,
    typically ATM cash), but for an inquiry or a mini statement (and a PIN change, which always needs DE 52:
    :mod:`processors.engine.pinchange`). Advices and reversals carry no PIN and are not subject to it."""
    product = ctx.product
    if (product is not None and ctx.channel in product.pin_required and 52 not in ctx.request.fields
            and ctx.request.mti[2] == "0" and ctx.txn_type not in NO_AMOUNT):
        raise Declined(RC.INCORRECT_PIN, f"PIN required on the {ctx.channel} channel")


def limits_and_funds(eng: Parts, ctx: Ctx) -> None:
    """61 / 65 on spending, then 51 (or 61 on a credit line's cash sub-limit) on amount + fee."""
    card, product, account = ctx.card, ctx.product, ctx.account
    assert card is not None and product is not None and account is not None
    txn_type = ctx.txn_type
    assert txn_type is not None
    amount = ctx.amount
    if txn_type in SPENDING:
        over = limit_code(eng.state, product, card, ctx.now.date(), ctx.channel, ctx.cross_border, amount)
        if over is not None:
            raise Declined(*over)
    ctx.fee = fee_for(product, account, txn_type, ctx.channel, foreign=ctx.foreign,
                      cross_border=ctx.cross_border, amount=amount, override=ctx.fee_override)
    total = ctx.fee - amount if txn_type in CREDITING else amount + ctx.fee
    code = funds_for(account).check(eng.state, account, product, total, cash_amount(ctx))
    if code is not None:
        raise Declined(code, "insufficient funds" if code == RC.INSUFFICIENT_FUNDS else
                       "cash advance sub-limit" if code == RC.EXCEEDS_AMOUNT_LIMIT else "account not active")
    if ctx.to_account is not None:
        code = funds_for(ctx.to_account).check(eng.state, ctx.to_account, product, -amount, 0)
        if code is not None:
            raise Declined(code, "destination account not active")
