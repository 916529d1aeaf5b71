"""The steps every kind of decision shares: the request's context, finding the card and its accounts, the
transaction row, the approval and decline answers (DE 38, 28, 54), exceptions for the back office, replays."""

from __future__ import annotations

from datetime import datetime

from processors import money
from processors.booking import Changes
from processors.credit import funds_for
from processors.engine.context import (
    ACCOUNT_TYPES,
    APPROVED,
    EVENT_SEQUENCE,
    EXCEPTION_SEQUENCE,
    RC,
    TXN_SEQUENCE,
    Ctx,
    Decision,
    Declined,
    Parts,
    text,
)
from processors.engine.statement import statement_field
from processors.fields import TXN_TYPES, channel_of, dup_key, match_key, txn_channel
from processors.model import (
    Account,
    Card,
    CardEvent,
    CardEventKind,
    ExceptionItem,
    ExceptionKind,
    Txn,
    TxnStatus,
    TxnType,
)
from switch.model.codes import APPROVAL_CODES, ResponseCode
from switch.model.message import Message


def fee_field(response: Message, txn: Txn) -> None:
    """DE 28 of an approval: the fee charged, when there is one and DE 49 is the account's currency. DE 28 is in
    DE 49's currency (ISO 8583:1987, like DE 4): a fee in the account's billing currency would be misread there,
    so a foreign-currency answer keeps the request's own DE 28 (echoed) and states its fee nowhere else."""
    if txn.fee and txn.request_currency in ("", txn.currency):
        response[28] = money.fee_field(txn.fee)


def begin(eng: Parts, request: Message) -> Ctx:
    """The context of ``request``: its duplicate key, transaction type, channel, cross-border and foreign flags
    (holds past their expiry are released first, in its changes)."""
    now = eng.clock()
    ctx = Ctx(request, now, dup_key(request), Changes())
    if eng.expiry.due(now):
        eng.expiry.expire(eng.state, now, ctx.changes)
    pc = text(request, 3)
    ctx.pc = pc
    ctx.txn_type = TXN_TYPES.get(pc[:2]) if len(pc) == 6 and pc.isdigit() else None
    # str() of a StrEnum member is its value (a C call; .value is a Python-level property in 3.11).
    ctx.channel = str(channel_of(request))
    country = text(request, 19)
    ctx.cross_border = bool(country) and country != eng.bank.country
    ctx.acquirer = acquirer = text(request, 32)
    ctx.foreign = acquirer not in eng.bank.own_acquirers
    return ctx


def find_card(eng: Parts, ctx: Ctx, hashed: str) -> Card:
    """The card of the keyed PAN hash (14 when there is none), kept in ``ctx``."""
    card = eng.state.cards_by_hash.get(hashed) if hashed else None
    if card is None:
        raise Declined(RC.INVALID_CARD_NUMBER, "no such card")
    ctx.card = card
    return card


def card_account(eng: Parts, card: Card, account_type: str, explicit: str) -> Account | None:
    """The account ``explicit`` names (DE 102/103) if it is the cardholder's, else the card's account of the DE 3
    account type (``00``: its default account); None when there is none."""
    accounts = eng.state.accounts
    if explicit:
        account = accounts.get(explicit)
        return account if account is not None and account.customer_id == card.customer_id else None
    account_id = card.account_id if account_type in ("00", "") else card.accounts.get(account_type)
    return accounts.get(account_id) if account_id else None


def cash_amount(ctx: Ctx) -> int:
    """The part of the amount that is a cash advance (counts on a credit line's cash sub-limit)."""
    if ctx.txn_type == TxnType.WITHDRAWAL:
        return ctx.amount
    if ctx.txn_type == TxnType.TRANSFER and ctx.account is not None and ctx.account.kind == "credit":
        return ctx.amount
    return 0


def same_card(eng: Parts, card: Card, original: Txn) -> bool:
    """Whether ``card`` (found by the PAN of a reversal or completion) is the card of ``original``: the same
    card, or one with the same number (a replacement that kept the PAN; the hash is the PAN's)."""
    if card.id == original.card_id:
        return True
    first = eng.state.cards.get(original.card_id or "")
    return first is not None and first.pan_hash == card.pan_hash


def cash_of(txn: Txn, account: Account) -> bool:
    """Whether ``txn`` on ``account`` was a cash advance (a reversal gives it back to the cash sub-limit)."""
    return txn.txn_type == TxnType.WITHDRAWAL or (txn.txn_type == TxnType.TRANSFER and account.kind == "credit")


def new_txn(eng: Parts, ctx: Ctx, code: ResponseCode, status: TxnStatus) -> tuple[int, Txn]:
    """The authorization-log row of this decision, numbered from the txn sequence; (its number, the row)."""
    seq = eng.state.next_value(TXN_SEQUENCE)
    ctx.changes.add(seq)
    n = seq.value
    request = ctx.request
    account = ctx.account
    currency = account.currency if account is not None else (ctx.product.currency if ctx.product else "")
    # DE 4 / DE 49 as rules.resolve_amount parsed them; a decision declined before that parses them here.
    request_amount, request_currency = ctx.request_amount, ctx.request_currency
    if request_currency is None:
        request_amount = money.parse_amount(text(request, 4))
        request_currency = money.alpha(text(request, 49))
    value = str(code)  # a StrEnum's str() is its value
    txn = Txn(
        id=f"T{eng.prefix}{n}", dup_key=ctx.key, mti=request.mti, processing_code=ctx.pc,
        txn_type=str(ctx.txn_type) if ctx.txn_type is not None else "",
        channel=txn_channel(ctx.channel, ctx.cross_border),
        card_id=ctx.card.id if ctx.card is not None else None,
        account_id=account.id if account is not None else None, amount=ctx.amount, currency=currency,
        fee=ctx.fee, response_code=value,
        approval_code=f"{n % 1_000_000:06d}" if value in APPROVAL_CODES else "",
        stan=text(request, 11), rrn=text(request, 37), terminal=text(request, 41),
        acquirer=ctx.acquirer, created_at=ctx.now, status=status,
        to_account_id=ctx.to_account.id if ctx.to_account is not None else None,
        request_amount=request_amount, request_currency=request_currency or "",
    )
    ctx.changes.add(txn)
    return n, txn


def approved(eng: Parts, ctx: Ctx, txn: Txn) -> Decision:
    """The 00 answer for ``txn`` (DE 38, 28, 54), and the exceptions the decision flagged."""
    eng.state.put(txn)
    if ctx.flags:
        record_exceptions(eng, ctx, txn)
    response = ctx.request.make_response(APPROVED)
    response[38] = txn.approval_code
    fee_field(response, txn)
    balances(eng, response, ctx.account, ctx.to_account)
    if ctx.txn_type == TxnType.STATEMENT and ctx.account is not None and txn.original_id is None:
        statement(eng, response, ctx.account, ctx.now)
    return Decision(response, ctx.changes.effects())


def statement(eng: Parts, response: Message, account: Account, now: datetime) -> None:
    """DE 48 of a mini statement: the account's receipt lines (processors.engine.statement); none without postings."""
    lines = statement_field(eng.state, account.id, now, eng.bank.txn_retention_days)
    if lines:
        response[48] = lines


def balances(eng: Parts, response: Message, account: Account | None, to_account: Account | None) -> None:
    """DE 54: ledger and available balance of the account (and of a transfer's destination)."""
    parts = []
    for acct in (account, to_account):
        if acct is not None:
            ledger, available = funds_for(acct).balances(eng.state, acct)
            parts.append(money.balances_field(ACCOUNT_TYPES.get(acct.kind, "00"), acct.currency, ledger,
                                              available))
    if parts:
        response[54] = "".join(parts)


def decline(eng: Parts, ctx: Ctx, code: ResponseCode, reason: str) -> Decision:
    """Answer ``code``, logging the declined transaction with its reason; an advice declined is an exception."""
    _, txn = new_txn(eng, ctx, code, TxnStatus.DECLINED)
    txn.decline_reason = reason
    eng.state.put(txn)
    request = ctx.request
    if request.mti[2] == "2":  # an advice not posted: the back office must hear of it
        amount, currency = text(request, 4), money.alpha(text(request, 49))
        stated = (money.format_amount(int(amount), currency) if amount.isdigit() and currency
                  else "no usable amount")
        ctx.flags = [(ExceptionKind.ADVICE_DECLINED, f"advice for {stated} declined {code}: {reason}; not posted")]
        ctx.note = ctx.flags[0][1]
        record_exceptions(eng, ctx, txn, posted=0)
    return Decision(request.make_response(code), ctx.changes.effects())


def record_exceptions(eng: Parts, ctx: Ctx, txn: Txn, posted: int | None = None) -> None:
    """An :class:`ExceptionItem` per flag of ``ctx``, for ``txn``, in the decision's changes."""
    request = ctx.request
    for kind, detail in ctx.flags or ():
        seq = eng.state.next_value(EXCEPTION_SEQUENCE)
        item = ExceptionItem(
            id=f"E{eng.prefix}{seq.value}", kind=kind, txn_id=txn.id, card_id=txn.card_id,
            account_id=txn.account_id, mti=request.mti, stan=text(request, 11), rrn=text(request, 37),
            amount=txn.amount if posted is None else posted, currency=txn.currency, detail=detail,
            created_at=ctx.now,
        )
        eng.state.put(item)
        ctx.changes.add(seq, item)


def advised(eng: Parts, request: Message, hashed: str) -> Txn | None:
    """An applied advice (xx20/xx21) standing in for ``request`` itself, if any."""
    get = request.fields.get
    key = match_key(request.mti[1], str(get(11, "")), str(get(7, "")), str(get(32, "")))
    prior = eng.state.txns_by_original.get(key)
    if prior is None or prior.mti[2:3] != "2" or prior.response_code != RC.APPROVED:
        return None
    card = eng.state.cards_by_hash.get(hashed) if hashed else None
    return prior if card is not None and same_card(eng, card, prior) else None


def replay(eng: Parts, ctx: Ctx, txn: Txn) -> Decision:
    """The first answer again, for a repeat of a request already decided (nothing is applied twice). Balances
    (and a mini statement's lines) are today's: the repeat is answered with what the account shows now."""
    response = ctx.request.make_response(txn.response_code)
    if txn.response_code == RC.APPROVED:
        response[38] = txn.approval_code
        if txn.txn_type == TxnType.PIN_CHANGE:  # its answer carries no balances
            return Decision(response, ctx.changes.effects())
        fee_field(response, txn)
        account = eng.state.accounts.get(txn.account_id or "")
        balances(eng, response, account, None)
        if txn.txn_type == TxnType.STATEMENT and account is not None and txn.original_id is None:
            statement(eng, response, account, ctx.now)
    return Decision(response, ctx.changes.effects())


def record_event(eng: Parts, ctx: Ctx, card: Card, kind: CardEventKind, *, txn_id: str | None = None,
                 detail: str = "", previous_pvv: str = "") -> CardEvent:
    """An audit event of ``card`` (processors.model.CardEvent) made by the request of ``ctx``, in its changes."""
    seq = eng.state.next_value(EVENT_SEQUENCE)
    event = CardEvent(id=f"A{eng.prefix}{seq.value}", key=ctx.key, card_id=card.id, kind=kind, created_at=ctx.now,
                      terminal=text(ctx.request, 41), txn_id=txn_id, detail=detail, previous_pvv=previous_pvv)
    eng.state.put(event)
    ctx.changes.add(seq, event)
    return event
