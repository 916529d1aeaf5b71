"""The cell's authorization engine: one request in, one :class:`Decision` (answer + rows changed) out.

Sans-I/O except for the HSM: :meth:`CellEngine.handle` first runs the PIN/CVV/ARQC checks the request needs
(awaits), then decides **synchronously** - no await between reading the state and changing it, so concurrent
requests on one card or account never interleave inside a decision - and returns the answer with the
:class:`~processors.model.Effects` the host must commit before sending it. There is no await between the
state change and the return either: the effects are snapshots taken at the decision, and the host submits
them at once, so the writer receives the decisions' snapshots in the order the state changed (an older
snapshot can never overwrite a newer one). What still needs the HSM after the decision - the ARPC of a chip
answer - is :attr:`Decision.finish`, which the host awaits after submitting the effects; it only fills DE 55
of the response and reads no state.

Messages (ISO 8583:1987, canonical form of :mod:`switch.model.message`):

====================  ==============================================================================
0100                  authorization / pre-authorization: purchases and withdrawals place a hold
0120                  authorization advice (stand-in): applied without checks, 0130 "00"
0200                  financial request: posted at once
0220                  completion of a 0100 named by DE 90, else a forced-post advice; applied, 0230 "00"
0400/0420 (+ repeat)  reversal, full or partial (DE 95); idempotent; unknown original "25", and remembered
                      (:mod:`processors.early`): a later original is declined "05", a later advice is
                      applied and reversed at once (a partial one: reduced to DE 95's amount)
0800                  network management: 0810 "00"
====================  ==============================================================================

A repeat (xx01, xx21) of a request already decided gets the first answer again; any other request with the
same duplicate key (:func:`processors.fields.dup_key`) gets 94. Reversals are always answered idempotently.

**Advices are never declined for a business reason.** An advice records something that already happened at the
terminal (the switch stood in, or the acquirer completed a pre-authorization), and the switch's store-and-forward
takes any answer but 91/96 as delivered: an advice declined is a sale never charged. So the cell answers 00 and
posts it, and where a rule of a request would have refused it, records an :class:`~processors.model.ExceptionItem`
for the back office (``bulkhead exceptions list``):

- a completion above its authorization + ``completion_tolerance_bp``: posted as sent;
- an amount in a foreign currency without a cardholder billing amount (DE 6 / DE 51): converted by the cell's
  own rate (``[rates]`` in ``products.toml``, the same conversion that then applies to its DE 28). With no rate
  for that pair of currencies (or a DE 49 outside the cell's ISO 4217 table) the cell cannot know the amount to
  charge, and guessing one (1:1, or a stale rate) would charge the cardholder a wrong sum that someone must then
  find: the advice is answered **96**, which the switch's store-and-forward does not count as delivered, so it is
  sent again (0121/0221) until the rate is configured and the cell restarted; past the queue's expiry it stays in
  the queue as an exception of its own (``bulkhead saf show``), never dropped. The cell logs why at each try;
- an account type (DE 3, DE 102/103) the card does not have: posted to the card's default account (a transfer
  is not: it moves money between the cardholder's own accounts, nothing left the bank, and it stays 12);
- an unusable DE 28: the account's or product's fee applies.

Format errors - an unknown processing code, no DE 4 or DE 49, an unknown card - are still declined (12, 13, 14):
there is nothing the cell could post; those advices are recorded as exceptions too.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hsm.api import Hsm
from processors import early, money, security
from processors.booking import (
    Changes,
    HoldExpiry,
    add_usage,
    limit_code,
    payment_split,
    place_hold,
    post,
    reduce_hold,
    release_hold,
)
from processors.catalog import Catalog, Product
from processors.credit import PAYMENT_ALLOCATIONS, funds_for, payment_applied
from processors.emvtlv import TlvError
from processors.fees import fee_for, stated_fee
from processors.fields import (
    CREDITING,
    SPENDING,
    TXN_TYPES,
    FeeFieldError,
    channel_of,
    dup_key,
    is_chip,
    keys_from_de90,
    match_key,
    replacement_amount,
    txn_channel,
)
from processors.model import (
    Account,
    Card,
    CardStatus,
    EarlyReversal,
    Effects,
    ExceptionItem,
    ExceptionKind,
    Hold,
    HoldStatus,
    ProductKind,
    Txn,
    TxnStatus,
    TxnType,
)
from processors.state import CellState
from switch.model.codes import APPROVAL_CODES, ResponseCode
from switch.model.message import Message

RC = ResponseCode
APPROVED = RC.APPROVED.value  # DE 39 of an approval, as make_response takes it without an enum lookup
# One counter numbers a decision's txn, hold and posting: T01-7, H01-7, P01-T7 (commands number their own
# postings P01-<n> from the "posting" sequence, so the engine's carry the T).
TXN_SEQUENCE = "txn"
EXCEPTION_SEQUENCE = "exception"  # numbers the exception items E01-1, E01-2, ...

# Transaction types each product kind supports when the product does not list ``allowed``.
KIND_TYPES: dict[ProductKind, frozenset[str]] = {
    ProductKind.DEBIT: frozenset(TxnType),
    ProductKind.CREDIT: frozenset({TxnType.PURCHASE, TxnType.WITHDRAWAL, TxnType.REFUND, TxnType.DEPOSIT,
                                   TxnType.BALANCE}),
}
# DE 3 / DE 54 account type (ISO 8583:1987: 10 savings, 20 checking, 30 credit) of each account kind.
ACCOUNT_TYPES = {"savings": "10", "checking": "20", "credit": "30"}
_STATUS_CODES: dict[CardStatus, tuple[ResponseCode, str]] = {
    CardStatus.LOST: (RC.LOST_CARD, "card lost"),
    CardStatus.STOLEN: (RC.STOLEN_CARD, "card stolen"),
    CardStatus.BLOCKED: (RC.RESTRICTED_CARD, "card blocked"),
    CardStatus.INACTIVE: (RC.RESTRICTED_CARD, "card not activated"),
    CardStatus.EXPIRED: (RC.EXPIRED_CARD, "card expired"),
    CardStatus.REPLACED: (RC.INVALID_CARD_NUMBER, "card replaced"),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# ISO 8583:1987 DE 39 for a DE 3 account type the card has no account of: 52 no cheque (checking, "20"),
# 53 no savings ("10"), 39 no credit account ("30"); any other type is an invalid transaction (12).
_NO_ACCOUNT: dict[str, RC] = {"20": RC.NO_CHEQUE_ACCOUNT, "10": RC.NO_SAVINGS_ACCOUNT, "30": RC.NO_CREDIT_ACCOUNT}


@dataclass
class Decision:
    """The answer to send (None: nothing to answer) and the rows to commit before sending it.

    ``finish``, when set, completes the response after the decision (the ARPC in DE 55, from the HSM). The host
    submits ``effects`` first, right after :meth:`CellEngine.handle` returns, then awaits ``finish()``, and
    sends the response once both that and the commit are done. ``finish`` never reads or changes state."""

    response: Message | None
    effects: Effects
    finish: Callable[[], Awaitable[None]] | None = None
    note: str = ""  # something the operator should know (the host logs it); never card data


@dataclass(slots=True)
class Checks:
    """HSM results for one request; None where nothing was checked."""

    pin: bool | None = None
    cvv: bool | None = None
    arqc: bool | None = None
    arqc_request: security.ArqcRequest | None = None
    unavailable: str = ""  # why the HSM could not answer (the request gets 96)


class Declined(Exception):
    """A check failed: the decision is this response code (control flow inside a decision only)."""

    def __init__(self, code: ResponseCode, reason: str) -> None:
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Ctx:
    """Per-request context of a decision (never kept on the engine)."""

    request: Message
    now: datetime
    key: str
    changes: Changes
    pc: str = ""
    txn_type: TxnType | None = None
    channel: str = ""
    cross_border: bool = False
    foreign: bool = False
    card: Card | None = None
    product: Product | None = None
    account: Account | None = None
    to_account: Account | None = None
    amount: int = 0
    fee: int = 0
    fee_override: int | None = None  # DE 28 of the request: the transaction-level fee (processors.fees)
    note: str = ""  # what the decision noted for the operator (Decision.note)
    acquirer: str = ""  # DE 32
    # DE 4 / DE 49 as received, once _resolve_amount has parsed them (the Txn records them; None: not yet)
    request_amount: int | None = None
    request_currency: str | None = None
    # Remembered reversals (processors.early) to apply to this request's transaction if it is approved
    early: list[EarlyReversal] | None = None
    # What an advice was posted despite (processors.model.ExceptionItem), recorded with its Txn
    flags: list[tuple[ExceptionKind, str]] | None = None

    def flag(self, kind: ExceptionKind, detail: str) -> None:
        """Note an exception of this advice for the back office (and the host's log)."""
        if self.flags is None:
            self.flags = []
        self.flags.append((kind, detail))
        self.note = f"{self.note}; {detail}" if self.note else detail


def _fee_field(response: Message, txn: Txn) -> None:
    """DE 28 of an approval: the fee charged, when there is one and DE 49 is the account's currency. DE 28 is in
    DE 49's currency (ISO 8583:1987, like DE 4): a fee in the account's billing currency would be misread there,
    so a foreign-currency answer keeps the request's own DE 28 (echoed) and states its fee nowhere else."""
    if txn.fee and txn.request_currency in ("", txn.currency):
        response[28] = money.fee_field(txn.fee)


def _text(request: Message, number: int) -> str:
    value = request.fields.get(number)
    return value if isinstance(value, str) else ""


class CellEngine:
    """Decides every card request of one cell against its in-memory :class:`CellState`."""

    def __init__(
        self, state: CellState, catalog: Catalog, *, hsm: Hsm | None, pan_hash: Callable[[str], str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.state = state
        self.catalog = catalog
        self.hsm = hsm
        self.pan_hash = pan_hash
        self.clock = clock
        self.bank = catalog.bank
        self.hold_period = timedelta(days=catalog.bank.hold_days)
        self.expiry = HoldExpiry(state.holds)
        self._prefix = f"{state.cell:02d}-"
        self.early_caps = early.Caps.of(catalog.bank, state.cell)

    # -- entry points -----------------------------------------------------------------------------------
    async def handle(self, request: Message) -> Decision:
        """Decide one request (see the module docstring for the messages handled)."""
        started = self._start(request)
        if isinstance(started, Decision):
            return started
        pan, hashed, card = started
        checks = await self._run_checks(request, card, pan)
        # From here to the return: no await (the decision and its snapshots are one synchronous step).
        decision, ctx = self._authorize(request, hashed, checks)
        if (checks.arqc and checks.arqc_request is not None and ctx.card is not None and ctx.product is not None
                and decision.response is not None):
            decision.finish = functools.partial(self._add_arpc, decision.response, ctx.product, ctx.card.psn, pan,
                                                checks.arqc_request)
        return decision

    def decide(self, request: Message) -> Decision | None:
        """:meth:`handle` without the event loop for a request that needs no HSM check (most of them: no PIN,
        track 2 or chip data, or a duplicate or a card that is not active); None when it needs the HSM, and then
        nothing has changed: call :meth:`handle`. The host decides in its reader loop this way, without a task
        per request (trio task setup was ~10 us of the ~100 us a cell spent per 0200, issue #5)."""
        started = self._start(request)
        return started if isinstance(started, Decision) else None

    def _start(self, request: Message) -> Decision | tuple[str, str, Card]:
        """The decision of a request that needs no HSM check, else what the checks need: (PAN, PAN hash, card).
        Changes nothing in the second case."""
        mti = request.mti
        if len(mti) != 4 or not mti.isdigit() or int(mti[2]) % 2:
            return Decision(None, Effects())  # a stray response: nothing to answer
        cls, function = mti[1], mti[2]
        if cls == "8":
            return Decision(request.make_response(RC.APPROVED), Effects())
        if cls == "4" and function in "02":
            return self._reversal(request)
        if cls not in "12" or function not in "02":
            return Decision(request.make_response(RC.INVALID_TRANSACTION), Effects())
        if function == "2":
            return self._advice(request)
        pan = request.pan
        hashed = self.pan_hash(pan) if pan else ""
        card = self._card_needing_checks(request, hashed)
        if card is not None and pan:
            return pan, hashed, card
        return self._authorize(request, hashed, None)[0]

    def expire_holds(self) -> Effects:
        """Release every hold past its expiry (the host calls this now and then; requests also do it)."""
        changes = Changes()
        self.expiry.expire(self.state, self.clock(), changes)
        return changes.effects()

    def prune(self) -> int:
        """Forget decided transactions older than the bank's retention (memory only: the rows stay in the
        database). Returns how many were dropped."""
        cutoff = self.clock() - timedelta(days=self.bank.txn_retention_days)
        state = self.state
        old = [txn for txn in state.txns.values() if txn.created_at < cutoff]
        drop = {txn.id for txn in old}
        for txn in old:
            del state.txns[txn.id]
            if state.txns_by_dup_key.get(txn.dup_key) is txn:
                del state.txns_by_dup_key[txn.dup_key]
        for key in [k for k, t in state.txns_by_original.items() if t.id in drop]:
            del state.txns_by_original[key]
        return len(old)

    def forget_expired_reversals(self) -> int:
        """Forget remembered early reversals past ``reversal_retention_days`` (memory only: the host then
        deletes their rows, :func:`processors.storage.purge_early_reversals`). Returns how many."""
        return early.forget_expired(self.state, self.clock())

    def early_counts(self) -> dict[str, int]:
        """Remembered early reversals (in memory) and those refused by a cap since the start (cell stats)."""
        return {"early_reversals": len(self.state.early_reversals), "early_reversals_refused": self.early_caps.refused}

    def flush_logs(self) -> None:
        """Report the counts of rate-limited warnings whose interval has ended (the host calls this now and then)."""
        self.early_caps.log.flush()

    # -- HSM checks (the only awaits) -------------------------------------------------------------------
    def _card_needing_checks(self, request: Message, hashed: str) -> Card | None:
        """The card when the request carries PIN, track 2 or chip data and would otherwise be decided by
        them (a duplicate or a card that is not active is answered without asking the HSM)."""
        fields = request.fields
        if 52 not in fields and 35 not in fields and 55 not in fields:
            return None
        if dup_key(request) in self.state.txns_by_dup_key:
            return None
        card = self.state.cards_by_hash.get(hashed)
        if card is None or card.status != CardStatus.ACTIVE:
            return None
        return card

    async def _run_checks(self, request: Message, card: Card, pan: str) -> Checks:
        checks = Checks()
        product = self.catalog.products.get(card.product)
        keys = self.catalog.keys.get(product.keys) if product is not None else None
        if product is None or keys is None:
            checks.unavailable = "no key set for the card's product"
            return checks
        if self.hsm is None:
            checks.unavailable = "no HSM configured"
            return checks
        hsm = self.hsm
        try:
            pin_block = request.fields.get(52)
            if isinstance(pin_block, bytes) and card.pvv and card.pin_tries < self.bank.pin_tries:
                checks.pin = len(pin_block) == 8 and await security.verify_pin(
                    hsm, keys, pan, pin_block, card.pvki, card.pvv)
            track_text = _text(request, 35)
            if track_text:
                track = security.parse_track2(track_text)
                checks.cvv = track is not None and await security.verify_track_cvv(
                    hsm, keys, pan, track, chip=is_chip(request))
            icc = request.fields.get(55)
            if isinstance(icc, bytes):
                try:
                    arqc = security.arqc_request(product.cvn, icc)
                except (security.IccDataError, TlvError):
                    checks.arqc = False
                else:
                    checks.arqc = await security.verify_arqc(hsm, keys, product.cvn, pan, card.psn, arqc)
                    checks.arqc_request = arqc
        except security.HsmUnavailable as exc:
            checks.unavailable = exc.reason
        return checks

    async def _add_arpc(
        self, response: Message, product: Product, psn: str, pan: str, arqc: security.ArqcRequest,
    ) -> None:
        """DE 55 tag 91 with the ARPC for the decided response code (:attr:`Decision.finish`). The decision is
        already made and committed independently: if the HSM fails here the answer goes without DE 55 (the card
        then sees no issuer authentication)."""
        keys = self.catalog.keys.get(product.keys)
        if self.hsm is None or keys is None:
            return
        code = _text(response, 39)
        try:
            response[55] = await security.arpc_field(self.hsm, keys, product.cvn, pan, psn, arqc, code)
        except security.HsmUnavailable:
            return

    # -- authorization (0100) and financial request (0200) ---------------------------------------------
    def _authorize(self, request: Message, hashed: str, checks: Checks | None) -> tuple[Decision, Ctx]:
        ctx = self._begin(request)
        dup = self.state.txns_by_dup_key.get(ctx.key)
        if dup is not None:
            if request.mti[3] in "13":
                return self._replay(ctx, dup), ctx
            return Decision(request.make_response(RC.DUPLICATE), ctx.changes.effects()), ctx
        if self.state.early_by_original:
            remembered = early.reversals_of(self.state, request, hashed, ctx.now)
            if remembered and early.is_full(remembered):
                return self._reversed_before(ctx, hashed), ctx
            ctx.early = [row for row in remembered if row.applied_to is None]
        advised = self._advised(request, hashed)
        if advised is not None:
            if advised.status == TxnStatus.REVERSED:
                # Its stand-in advice came first and was reversed since: declined like an original that comes
                # after its reversal (processors.early), whichever of them the reversal found.
                return self._reversed_before(ctx, hashed), ctx
            # The switch stood in for this very request while the cell was away, and its advice (same STAN,
            # DE 7 and acquirer) has been applied: the late original gets the same answer, applied once.
            return self._replay(ctx, advised), ctx
        try:
            self._validate(ctx, hashed)
            self._pin_required(ctx)
            if checks is not None:
                self._security(ctx, checks)
            self._limits_and_funds(ctx)
        except Declined as declined:
            if declined.code == RC.SYSTEM_MALFUNCTION:
                return Decision(request.make_response(declined.code), ctx.changes.effects()), ctx
            return self._decline(ctx, declined.code, declined.reason), ctx
        return self._approve_request(ctx), ctx

    def _reversed_before(self, ctx: Ctx, hashed: str) -> Decision:
        """05 for an original whose reversal came first (processors.early): nothing posted, held or counted. The
        declined transaction names its card, so that a repeat of the reversal finds it (and acknowledges it)."""
        ctx.card = self.state.cards_by_hash.get(hashed) if hashed else None
        return self._decline(ctx, RC.DO_NOT_HONOUR, "reversed before it arrived")

    def _begin(self, request: Message) -> Ctx:
        now = self.clock()
        ctx = Ctx(request, now, dup_key(request), Changes())
        if self.expiry.due(now):
            self.expiry.expire(self.state, now, ctx.changes)
        pc = _text(request, 3)
        ctx.pc = pc
        ctx.txn_type = TXN_TYPES.get(pc[:2]) if len(pc) == 6 and pc.isdigit() else None
        # str() of a StrEnum member is its value (a C call; .value is a Python-level property in 3.11).
        ctx.channel = str(channel_of(request))
        country = _text(request, 19)
        ctx.cross_border = bool(country) and country != self.bank.country
        ctx.acquirer = acquirer = _text(request, 32)
        ctx.foreign = acquirer not in self.bank.own_acquirers
        return ctx

    def _validate(self, ctx: Ctx, hashed: str) -> None:
        """12, 14, 41, 43, 62, 54, 57, 13: everything decided without the HSM and without the funds."""
        request = ctx.request
        if ctx.txn_type is None:
            raise Declined(RC.INVALID_TRANSACTION, "unknown processing code")
        card = self._find_card(ctx, hashed)
        status = _STATUS_CODES.get(card.status)
        if status is not None:
            raise Declined(*status)
        now = ctx.now
        yymm = f"{now.year % 100:02d}{now.month:02d}"  # strftime("%y%m") cost 1.5 us a request (issue #5)
        if card.expiry and card.expiry < yymm:
            raise Declined(RC.EXPIRED_CARD, "card past its expiry date")
        de14 = _text(request, 14)
        if de14 and card.expiry and de14 != card.expiry:
            raise Declined(RC.EXPIRED_CARD, "expiry date does not match the card")
        # Track 2 (ISO 7813) carries the expiry of the plastic that was read: a card replaced with the same
        # number gets a new expiry, so the old (lost, stolen or skimmed) stripe must not work any more.
        track_text = _text(request, 35)
        track = security.parse_track2(track_text) if track_text else None
        if track is not None and card.expiry and track.expiry != card.expiry:
            raise Declined(RC.EXPIRED_CARD, "track 2 expiry does not match the card")
        product = self.catalog.products.get(card.product)
        if product is None:
            raise Declined(RC.SYSTEM_MALFUNCTION, "card's product is not in the catalogue")
        ctx.product = product
        allowed = product.allowed or KIND_TYPES[product.kind]
        if ctx.txn_type not in allowed:
            raise Declined(RC.NOT_PERMITTED_CARDHOLDER, f"{ctx.txn_type} not permitted by product {product.code}")
        if request.mti[1] == "1" and ctx.txn_type == TxnType.TRANSFER:
            raise Declined(RC.INVALID_TRANSACTION, "transfers are financial requests (0200)")
        self._resolve_accounts(ctx, card)
        self._resolve_amount(ctx)

    def _find_card(self, ctx: Ctx, hashed: str) -> Card:
        card = self.state.cards_by_hash.get(hashed) if hashed else None
        if card is None:
            raise Declined(RC.INVALID_CARD_NUMBER, "no such card")
        ctx.card = card
        return card

    def _resolve_accounts(self, ctx: Ctx, card: Card) -> None:
        """The account DE 3 names (positions 3-4 "from", 5-6 "to"; 00 = the card's default account), or DE
        102/103 naming one of the cardholder's own accounts; 12 when it is not the cardholder's."""
        pc = ctx.pc
        request = ctx.request
        if ctx.txn_type in CREDITING:
            account = self._card_account(card, pc[4:6], _text(request, 103))
        else:
            account = self._card_account(card, pc[2:4], _text(request, 102))
        if account is None:
            kind = pc[4:6] if ctx.txn_type in CREDITING else pc[2:4]
            raise Declined(_NO_ACCOUNT.get(kind, RC.INVALID_TRANSACTION), "account type not linked to the card")
        ctx.account = account
        if ctx.txn_type == TxnType.TRANSFER:
            to = self._card_account(card, pc[4:6], _text(request, 103))
            if to is None or to is account:
                raise Declined(RC.INVALID_TRANSACTION, "transfer destination is not another own account")
            if to.currency != account.currency:
                raise Declined(RC.INVALID_TRANSACTION, "transfer between currencies")
            ctx.to_account = to

    def _card_account(self, card: Card, account_type: str, explicit: str) -> Account | None:
        accounts = self.state.accounts
        if explicit:
            account = accounts.get(explicit)
            return account if account is not None and account.customer_id == card.customer_id else None
        account_id = card.account_id if account_type in ("00", "") else card.accounts.get(account_type)
        return accounts.get(account_id) if account_id else None

    def _resolve_amount(self, ctx: Ctx) -> None:
        """DE 4 in DE 49's currency, which must be the account's; or DE 6 when DE 51 (cardholder billing
        currency) is the account's. Balance inquiries need no amount. An advice in another currency without
        them is converted by the cell's own rate (:meth:`_cell_rate`; 96 when there is none)."""
        request = ctx.request
        assert ctx.account is not None
        currency = ctx.account.currency
        amount = ctx.request_amount = money.parse_amount(_text(request, 4))
        code = _text(request, 49)
        given = ctx.request_currency = money.alpha(code) if code else ""
        advice = request.mti[2] == "2"
        if not code and ctx.txn_type != TxnType.BALANCE:
            raise Declined(RC.INVALID_AMOUNT, "no currency (DE 49)")
        rate: tuple[int, int | None] | None = None  # (DE 6, DE 4), or the cell's rate as such a pair
        if code:
            if given is None:
                if advice:  # its exponent and rate are unknown here: cannot be posted now, sent again (96)
                    raise Declined(RC.SYSTEM_MALFUNCTION, f"currency {code} (DE 49) is not in the cell's ISO 4217 "
                                   "table: answered 96, the switch's store-and-forward sends the advice again")
                raise Declined(RC.INVALID_AMOUNT, "unknown currency")
            if given != currency:
                billing = money.parse_amount(_text(request, 6))
                if money.alpha(_text(request, 51)) == currency and billing is not None:
                    rate = (billing, amount)
                    amount = billing
                elif not advice:
                    raise Declined(RC.INVALID_AMOUNT, "currency is not the account's")
                elif amount is not None:  # (an advice of an inquiry without an amount needs no rate)
                    billed, requested = self._cell_rate(given, currency)
                    rate, converted = (billed, requested), money.at_rate(amount, billed, requested)
                    ctx.flag(ExceptionKind.CELL_RATE, (
                        f"{money.format_amount(amount, given)} without a cardholder billing amount (DE 6/DE 51): "
                        f"{money.format_amount(converted, currency)} at the cell's rate {given}/{currency} "
                        f"{self.catalog.rate(given, currency)}"))
                    amount = converted
        if ctx.txn_type == TxnType.BALANCE:
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

    def _cell_rate(self, source: str, target: str) -> tuple[int, int]:
        """The cell's own rate ``source`` -> ``target`` (``[rates]``) as the (billed, requested) pair of
        :func:`processors.money.at_rate`, the form DE 6 / DE 4 takes, so DE 28 is converted by the same rate as the
        amount. 96 without one: see the module docstring for why the advice is not posted at a guessed rate."""
        rate = self.catalog.rate(source, target)
        if rate is None:
            raise Declined(RC.SYSTEM_MALFUNCTION, (
                f"advice in {source} without DE 6/DE 51 and no rate {source}/{target} in the catalogue's [rates]: "
                "answered 96, the switch's store-and-forward sends it again; add the rate and restart the cell"))
        return money.rate_ratio(rate, source, target)

    def _pin_required(self, ctx: Ctx) -> None:
        """55 for a request without a PIN block on a channel where the product requires one (``pin_required``,
        typically ATM cash). Advices and reversals carry no PIN and are not subject to it."""
        product = ctx.product
        if (product is not None and ctx.channel in product.pin_required and 52 not in ctx.request.fields
                and ctx.request.mti[2] == "0" and ctx.txn_type != TxnType.BALANCE):
            raise Declined(RC.INCORRECT_PIN, f"PIN required on the {ctx.channel} channel")

    def _security(self, ctx: Ctx, checks: Checks) -> None:
        """96 (HSM unavailable), 75 / 55 (PIN), 05 (CVV, iCVV, ARQC); keeps the PIN try counter."""
        if checks.unavailable:
            raise Declined(RC.SYSTEM_MALFUNCTION, checks.unavailable)
        card = ctx.card
        assert card is not None
        if 52 in ctx.request.fields:
            limit = self.bank.pin_tries
            if card.pin_tries >= limit:
                raise Declined(RC.PIN_TRIES_EXCEEDED, "PIN tries exceeded")
            if not card.pvv:
                raise Declined(RC.INCORRECT_PIN, "no PIN set for the card")
            if checks.pin is not True:
                card.pin_tries += 1
                ctx.changes.add(card)
                if card.pin_tries >= limit:
                    raise Declined(RC.PIN_TRIES_EXCEEDED, "wrong PIN, tries now exhausted")
                raise Declined(RC.INCORRECT_PIN, "wrong PIN")
            if card.pin_tries:
                card.pin_tries = 0
                ctx.changes.add(card)
        if checks.cvv is False:
            raise Declined(RC.DO_NOT_HONOUR, "iCVV mismatch" if is_chip(ctx.request) else "CVV mismatch")
        if checks.arqc is False:
            raise Declined(RC.DO_NOT_HONOUR, "ARQC did not verify")
        if checks.arqc and checks.arqc_request is not None:
            self._arqc_binding(ctx, card, checks.arqc_request)

    def _arqc_binding(self, ctx: Ctx, card: Card, arqc: security.ArqcRequest) -> None:
        """05 unless the verified cryptogram is fresh and is for this request: the ATC must be above the last
        one seen (EMV Book 2 §8.1: the ATC makes each cryptogram unique; a replayed one repeats it), and the
        amount (9F02) and currency (5F2A) the card signed must be DE 4 and DE 49 (else an ARQC for 1.00
        would approve any amount). The ATC is recorded as soon as the cryptogram verified."""
        atc = arqc.atc_value
        if atc <= card.last_atc:
            raise Declined(RC.DO_NOT_HONOUR, "ATC replay")
        card.last_atc = atc
        ctx.changes.add(card)
        request = ctx.request
        amount = money.parse_amount(_text(request, 4))
        if amount is None or arqc.amount != amount:
            raise Declined(RC.DO_NOT_HONOUR, "ARQC amount (9F02) is not DE 4")
        currency = _text(request, 49)
        if currency and money.alpha(arqc.currency) != money.alpha(currency):
            raise Declined(RC.DO_NOT_HONOUR, "ARQC currency (5F2A) is not DE 49")

    def _limits_and_funds(self, ctx: Ctx) -> None:
        """61 / 65 on spending, then 51 (or 61 on a credit line's cash sub-limit) on amount + fee."""
        card, product, account = ctx.card, ctx.product, ctx.account
        assert card is not None and product is not None and account is not None
        txn_type = ctx.txn_type
        assert txn_type is not None
        amount = ctx.amount
        if txn_type in SPENDING:
            over = limit_code(self.state, product, card, ctx.now.date(), ctx.channel, ctx.cross_border, amount)
            if over is not None:
                raise Declined(*over)
        ctx.fee = fee_for(product, account, txn_type, ctx.channel, foreign=ctx.foreign,
                          cross_border=ctx.cross_border, amount=amount, override=ctx.fee_override)
        total = ctx.fee - amount if txn_type in CREDITING else amount + ctx.fee
        code = funds_for(account).check(self.state, account, product, total, self._cash_amount(ctx))
        if code is not None:
            raise Declined(code, "insufficient funds" if code == RC.INSUFFICIENT_FUNDS else
                           "cash advance sub-limit" if code == RC.EXCEEDS_AMOUNT_LIMIT else "account not active")
        if ctx.to_account is not None:
            code = funds_for(ctx.to_account).check(self.state, ctx.to_account, product, -amount, 0)
            if code is not None:
                raise Declined(code, "destination account not active")

    @staticmethod
    def _cash_amount(ctx: Ctx) -> int:
        """The part of the amount that is a cash advance (counts on a credit line's cash sub-limit)."""
        if ctx.txn_type == TxnType.WITHDRAWAL:
            return ctx.amount
        if ctx.txn_type == TxnType.TRANSFER and ctx.account is not None and ctx.account.kind == "credit":
            return ctx.amount
        return 0

    def _approve_request(self, ctx: Ctx) -> Decision:
        """Apply an approved 0100 / 0200: a hold for a pre-authorization of spending, a posting otherwise."""
        n, txn = self._new_txn(ctx, RC.APPROVED, TxnStatus.APPROVED)
        if ctx.txn_type == TxnType.BALANCE:
            if ctx.fee:  # an inquiry moves no money but may pay a fee
                self._post_txn(ctx, n, txn)
        elif ctx.request.mti[1] == "1":
            if ctx.txn_type in SPENDING:
                self._hold(ctx, n, txn)
        else:
            self._post_txn(ctx, n, txn)
        self._count_usage(ctx, txn)
        if ctx.early:
            self._apply_early(ctx, txn)
        return self._approved(ctx, txn)

    def _apply_early(self, ctx: Ctx, txn: Txn) -> None:
        """Apply the remembered reversals of ``ctx`` (processors.early) to ``txn``, just approved, in the same
        decision: the strongest of them is applied as if it arrived now, under its own duplicate key (so its
        repeats find it), and every one of them is marked applied."""
        rows = ctx.early
        assert rows
        row = early.strongest(rows)
        # Its own context on the decision's changes: the reversal's Txn records the reversal's DE 11/7/41/32/37,
        # and the rows it changes commit with the original's or advice's (one decision, one batch).
        rctx = Ctx(early.reversal_message(row), ctx.now, row.id, ctx.changes)
        rctx.pc, rctx.acquirer = txn.processing_code, row.acquirer
        self._reverse(rctx, txn, row.replacement)  # card, account and channel: the transaction's own
        for remembered in rows:
            remembered.applied_to = txn.id
            self.state.put(remembered)
            ctx.changes.add(remembered)

    # -- advices (0120, 0220) ---------------------------------------------------------------------------
    def _advice(self, request: Message) -> Decision:
        """Apply what the switch (or acquirer) already approved: no PIN, limit or funds checks."""
        ctx = self._begin(request)
        decision = self._apply_advice(ctx)
        decision.note = ctx.note
        return decision

    def _apply_advice(self, ctx: Ctx) -> Decision:
        request = ctx.request
        dup = self.state.txns_by_dup_key.get(ctx.key)
        if dup is not None:
            if request.mti[3] in "13":
                return self._replay(ctx, dup)
            return Decision(request.make_response(RC.DUPLICATE), ctx.changes.effects())
        pan = request.pan
        try:
            if ctx.txn_type is None:
                raise Declined(RC.INVALID_TRANSACTION, "unknown processing code")
            card = self._find_card(ctx, self.pan_hash(pan) if pan else "")
            product = ctx.product = self.catalog.products.get(card.product)
            if product is None:
                raise Declined(RC.SYSTEM_MALFUNCTION, "card's product is not in the catalogue")
            try:
                self._resolve_accounts(ctx, card)
            except Declined as declined:
                self._default_account(ctx, card, declined)
            self._resolve_amount(ctx)
        except Declined as declined:
            if declined.code == RC.SYSTEM_MALFUNCTION:
                # Not processed, so not delivered: the switch's store-and-forward sends it again (and the flags
                # noted so far describe nothing that was posted).
                ctx.note = declined.reason
                return Decision(request.make_response(declined.code), ctx.changes.effects())
            return self._decline(ctx, declined.code, declined.reason)
        original = None
        for key in keys_from_de90(request):
            original = self.state.txns_by_original.get(key)
            if original is not None:
                break
        if original is not None and self._same_card(card, original) and original.response_code == RC.APPROVED:
            if original.mti[1] == "1" and request.mti[1] == "2":
                if original.status == TxnStatus.COMPLETED:
                    # A second completion of one pre-authorization: an advice is repeated until the
                    # acquirer sees its response (ISO 8583:1987 advice/repeat, xx20 then xx21 - some resend
                    # xx20 with a new STAN), so it is acknowledged and never posted twice.
                    return Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
                return self._complete(ctx, original)
            if original.mti[1] == request.mti[1]:
                # The request this advice stands in for was already approved here: nothing more to apply.
                return Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
        if self.state.early_by_original:
            # Its reversal came first (processors.early): the advice is accepted, and reversed in the same decision.
            remembered = early.reversals_of(self.state, request, card.pan_hash, ctx.now)
            ctx.early = [row for row in remembered if row.applied_to is None]
        assert ctx.account is not None and ctx.txn_type is not None
        ctx.fee = fee_for(product, ctx.account, ctx.txn_type, ctx.channel, foreign=ctx.foreign,
                          cross_border=ctx.cross_border, amount=ctx.amount, override=ctx.fee_override)
        return self._approve_request(ctx)

    def _default_account(self, ctx: Ctx, card: Card, declined: Declined) -> None:
        """An advice naming an account the card does not have (DE 3 account type, DE 102/103) is posted to the
        card's default account, and recorded as an exception: the money left the terminal, so it is charged to
        the cardholder rather than lost. Not a transfer: it moves money between the cardholder's own accounts,
        nothing left the bank, so a transfer the cell cannot place stays declined (12)."""
        account = self.state.accounts.get(card.account_id)
        if ctx.txn_type == TxnType.TRANSFER or account is None:
            raise declined
        ctx.account, ctx.to_account = account, None
        ctx.flag(ExceptionKind.ACCOUNT_NOT_LINKED,
                 f"{declined.reason} (DE 3 {ctx.pc}): posted to the card's default account {account.id}")

    def _complete(self, ctx: Ctx, original: Txn) -> Decision:
        """0220 completion of a pre-authorization: close its hold and post the completed amount.

        A completion may exceed the authorized amount (tips, fuel) by the bank's tolerance
        (``completion_tolerance_bp``). Beyond it, it is still posted as sent - the sale happened, and a completion
        declined is never charged (the switch's store-and-forward takes the answer as delivered) - and recorded
        as an exception for the back office, which takes a corrupt or disputed amount up with the acquirer."""
        state = self.state
        cap = original.amount + original.amount * self.bank.completion_tolerance_bp // 10_000
        if ctx.amount > cap:
            currency = ctx.account.currency if ctx.account is not None else original.currency
            ctx.flag(ExceptionKind.COMPLETION_OVER_TOLERANCE, (
                f"completion of {money.format_amount(ctx.amount, currency)} above the authorization of "
                f"{money.format_amount(original.amount, currency)} + {self.bank.completion_tolerance_bp / 100:g}% "
                f"tolerance ({money.format_amount(cap, currency)}): posted as sent"))
        hold = state.holds.get(original.hold_id) if original.hold_id else None
        if hold is not None and hold.expires_at <= ctx.now:
            release_hold(state, hold, HoldStatus.EXPIRED, ctx.changes)
            hold = None
        if hold is not None:
            release_hold(state, hold, HoldStatus.COMPLETED, ctx.changes)
        account = state.accounts.get(original.account_id or "")
        if account is not None:
            ctx.account = account
        ctx.fee = original.fee
        ctx.txn_type = TxnType(original.txn_type)
        n, txn = self._new_txn(ctx, RC.APPROVED, TxnStatus.APPROVED)
        txn.original_id = original.id
        txn.hold_id = original.hold_id
        self._post_txn(ctx, n, txn)
        original.status = TxnStatus.COMPLETED
        ctx.changes.add(original)
        return self._approved(ctx, txn)

    # -- reversals (0400, 0420) -------------------------------------------------------------------------
    def _reversal(self, request: Message) -> Decision:
        ctx = self._begin(request)
        state = self.state
        dup = state.txns_by_dup_key.get(ctx.key)
        if dup is not None:
            return self._replay(ctx, dup)  # any repeat of a reversal gets the same answer, never 94
        original = None
        for key in keys_from_de90(request):
            original = state.txns_by_original.get(key)
            if original is not None:
                break
        pan = request.pan
        hashed = self.pan_hash(pan) if pan else ""
        card = state.cards_by_hash.get(hashed) if hashed else None
        if original is not None and pan and (card is None or not self._same_card(card, original)):
            original = None
        if original is None:
            if pan and card is None:
                return Decision(request.make_response(RC.UNABLE_TO_LOCATE), ctx.changes.effects())
            # The original (or its stand-in advice) may still arrive: remembered, so that it is not posted then.
            self._remember(ctx, hashed)
            return Decision(request.make_response(RC.UNABLE_TO_LOCATE), ctx.changes.effects())
        if original.response_code != RC.APPROVED:
            # Nothing approved here to give back; but the switch may have stood in after this decline (the cell's
            # answer lost or late) and its advice still be on the way: remembered, so that it is reversed too.
            self._remember(ctx, hashed)
            return Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
        return self._reverse(ctx, original, replacement_amount(request))

    def _remember(self, ctx: Ctx, hashed: str) -> None:
        """Remember the reversal of ``ctx`` (processors.early), once: a repeat finds it already there. Not one
        without a PAN: it would match any card's transaction with the same STAN, DE 7 and acquirer. Nor a new one
        past the caps (the answer is the same either way)."""
        if not hashed or early.remembered(self.state, ctx.key, ctx.now) is not None:
            return
        if self.early_caps.admit(self.state, hashed, ctx.request.pan or "", ctx.now):
            ctx.changes.add(early.remember(self.state, ctx.request, ctx.key, hashed, ctx.now,
                                           self.bank.reversal_retention_days))

    def _reverse(self, ctx: Ctx, original: Txn, replacement: int | None) -> Decision:
        """Reverse ``original`` down to ``replacement`` (DE 95's actual amount; None: fully)."""
        state = self.state
        request = ctx.request
        ctx.card = state.cards.get(original.card_id or "")
        ctx.account = state.accounts.get(original.account_id or "")
        acknowledge = Decision(request.make_response(RC.APPROVED), ctx.changes.effects())
        if original.response_code != RC.APPROVED or ctx.account is None or ctx.card is None:
            return acknowledge  # nothing was approved, so nothing to give back
        if replacement is not None:
            replacement = self._in_account_currency(original, replacement)
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
                to = self._card_account(ctx.card, original.processing_code[4:6], "")
                to_id = to.id if to is not None else None
            ctx.to_account = state.accounts.get(to_id or "")
            if ctx.to_account is None:
                return Decision(request.make_response(RC.UNABLE_TO_LOCATE), ctx.changes.effects())
        return self._apply_reversal(ctx, original, hold, delta, fee, target, full)

    def _same_card(self, card: Card, original: Txn) -> bool:
        """Whether ``card`` (found by the PAN of a reversal or completion) is the card of ``original``: the same
        card, or one with the same number (a replacement that kept the PAN; the hash is the PAN's)."""
        if card.id == original.card_id:
            return True
        first = self.state.cards.get(original.card_id or "")
        return first is not None and first.pan_hash == card.pan_hash

    @staticmethod
    def _in_account_currency(original: Txn, replacement: int) -> int:
        """DE 95's actual amount (ISO 8583:1987: in the transaction currency, DE 49) in the account currency of
        ``original``, by the original's own rate (DE 6 / DE 4, i.e. ``amount / request_amount``).

        Rounding: half up to the account currency's minor unit, so a replacement equal to DE 4 gives exactly
        the amount taken (no residue is left posted or reversed twice); the result never exceeds it."""
        requested = original.request_amount
        if (not requested or not original.request_currency or original.request_currency == original.currency):
            return replacement
        return min(money.at_rate(replacement, original.amount, requested), original.amount)

    def _apply_reversal(
        self, ctx: Ctx, original: Txn, hold: Hold | None, delta: int, fee: int, target: int, full: bool,
    ) -> Decision:
        state = self.state
        account = ctx.account
        card = ctx.card
        assert account is not None and card is not None
        ctx.amount, ctx.fee = delta, fee
        ctx.txn_type = TxnType(original.txn_type)
        ctx.channel = original.channel
        n, txn = self._new_txn(ctx, RC.APPROVED, TxnStatus.APPROVED)
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
            posting = post(state, ctx.changes, posting_id=f"P{self._prefix}T{n}", txn_id=txn.id, now=ctx.now,
                           description=f"reversal of {original.id}", txn_type=original.txn_type,
                           account=account, to_account=to_account, amount=delta, fee=fee,
                           cash=self._cash_of(original, account), reverse=True, payee_cash=restore)
            txn.posting_id = posting.id
        if original.txn_type in SPENDING and delta:
            add_usage(state, ctx.changes, card.id, original.created_at.date(), original.channel, -delta,
                      -1 if full else 0)
        original.reversed_amount = target
        original.status = TxnStatus.REVERSED if full else TxnStatus.PARTIALLY_REVERSED
        ctx.changes.add(original)
        return self._approved(ctx, txn)

    @staticmethod
    def _cash_of(txn: Txn, account: Account) -> bool:
        return txn.txn_type == TxnType.WITHDRAWAL or (txn.txn_type == TxnType.TRANSFER and account.kind == "credit")

    # -- shared steps -----------------------------------------------------------------------------------
    def _new_txn(self, ctx: Ctx, code: ResponseCode, status: TxnStatus) -> tuple[int, Txn]:
        seq = self.state.next_value(TXN_SEQUENCE)
        ctx.changes.add(seq)
        n = seq.value
        request = ctx.request
        account = ctx.account
        currency = account.currency if account is not None else (ctx.product.currency if ctx.product else "")
        # DE 4 / DE 49 as _resolve_amount parsed them; a decision declined before that parses them here.
        request_amount, request_currency = ctx.request_amount, ctx.request_currency
        if request_currency is None:
            request_amount = money.parse_amount(_text(request, 4))
            request_currency = money.alpha(_text(request, 49))
        value = str(code)  # a StrEnum's str() is its value
        txn = Txn(
            id=f"T{self._prefix}{n}", dup_key=ctx.key, mti=request.mti, processing_code=ctx.pc,
            txn_type=str(ctx.txn_type) if ctx.txn_type is not None else "",
            channel=txn_channel(ctx.channel, ctx.cross_border),
            card_id=ctx.card.id if ctx.card is not None else None,
            account_id=account.id if account is not None else None, amount=ctx.amount, currency=currency,
            fee=ctx.fee, response_code=value,
            approval_code=f"{n % 1_000_000:06d}" if value in APPROVAL_CODES else "",
            stan=_text(request, 11), rrn=_text(request, 37), terminal=_text(request, 41),
            acquirer=ctx.acquirer, created_at=ctx.now, status=status,
            to_account_id=ctx.to_account.id if ctx.to_account is not None else None,
            request_amount=request_amount, request_currency=request_currency or "",
        )
        ctx.changes.add(txn)
        return n, txn

    def _hold(self, ctx: Ctx, n: int, txn: Txn) -> None:
        account, card = ctx.account, ctx.card
        assert account is not None and card is not None
        hold = Hold(f"H{self._prefix}{n}", card.id, account.id, account.credit_line_id, txn.id, ctx.amount,
                    account.currency, self._cash_amount(ctx) > 0, ctx.now, ctx.now + self.hold_period)
        place_hold(self.state, hold, ctx.changes)
        self.expiry.push(hold)
        txn.hold_id = hold.id

    def _post_txn(self, ctx: Ctx, n: int, txn: Txn) -> None:
        account = ctx.account
        assert account is not None and ctx.txn_type is not None
        payment = payment_split(self.state, ctx.txn_type, account, ctx.to_account, ctx.amount, self._payment_rule)
        posting = post(self.state, ctx.changes, posting_id=f"P{self._prefix}T{n}", txn_id=txn.id, now=ctx.now,
                       description=f"{ctx.txn_type} {ctx.request.mti}", txn_type=ctx.txn_type,
                       account=account, to_account=ctx.to_account, amount=ctx.amount, fee=ctx.fee,
                       cash=self._cash_amount(ctx) > 0)
        txn.posting_id = posting.id
        if payment is not None:  # a payment into a credit line: the cash owed falls by the product's rule, once
            line, cash_before, txn.cash_part = payment
            payment_applied(line, cash_before, txn.cash_part)  # the line is in the changes already (post)

    def _payment_rule(self, account: Account) -> str:
        """The ``payment_allocation`` of a credit card account's product (cash first when it has none)."""
        product = self.catalog.products.get(account.product)
        return product.payment_allocation if product is not None else PAYMENT_ALLOCATIONS[0]

    def _count_usage(self, ctx: Ctx, txn: Txn) -> None:
        if ctx.txn_type in SPENDING and ctx.card is not None:
            add_usage(self.state, ctx.changes, ctx.card.id, ctx.now.date(), txn.channel, ctx.amount, 1)

    def _approved(self, ctx: Ctx, txn: Txn) -> Decision:
        self.state.put(txn)
        if ctx.flags:
            self._record_exceptions(ctx, txn)
        response = ctx.request.make_response(APPROVED)
        response[38] = txn.approval_code
        _fee_field(response, txn)
        self._balances(response, ctx.account, ctx.to_account)
        return Decision(response, ctx.changes.effects())

    def _balances(self, response: Message, account: Account | None, to_account: Account | None) -> None:
        """DE 54: ledger and available balance of the account (and of a transfer's destination)."""
        parts = []
        for acct in (account, to_account):
            if acct is not None:
                ledger, available = funds_for(acct).balances(self.state, acct)
                parts.append(money.balances_field(ACCOUNT_TYPES.get(acct.kind, "00"), acct.currency, ledger,
                                                  available))
        if parts:
            response[54] = "".join(parts)

    def _decline(self, ctx: Ctx, code: ResponseCode, reason: str) -> Decision:
        _, txn = self._new_txn(ctx, code, TxnStatus.DECLINED)
        txn.decline_reason = reason
        self.state.put(txn)
        request = ctx.request
        if request.mti[2] == "2":  # an advice not posted: the back office must hear of it
            amount, currency = _text(request, 4), money.alpha(_text(request, 49))
            stated = (money.format_amount(int(amount), currency) if amount.isdigit() and currency
                      else "no usable amount")
            ctx.flags = [(ExceptionKind.ADVICE_DECLINED, f"advice for {stated} declined {code}: {reason}; not posted")]
            ctx.note = ctx.flags[0][1]
            self._record_exceptions(ctx, txn, posted=0)
        return Decision(request.make_response(code), ctx.changes.effects())

    def _record_exceptions(self, ctx: Ctx, txn: Txn, posted: int | None = None) -> None:
        """An :class:`ExceptionItem` per flag of ``ctx``, for ``txn``, in the decision's changes."""
        request = ctx.request
        for kind, detail in ctx.flags or ():
            seq = self.state.next_value(EXCEPTION_SEQUENCE)
            item = ExceptionItem(
                id=f"E{self._prefix}{seq.value}", kind=kind, txn_id=txn.id, card_id=txn.card_id,
                account_id=txn.account_id, mti=request.mti, stan=_text(request, 11), rrn=_text(request, 37),
                amount=txn.amount if posted is None else posted, currency=txn.currency, detail=detail,
                created_at=ctx.now,
            )
            self.state.put(item)
            ctx.changes.add(seq, item)

    def _advised(self, request: Message, hashed: str) -> Txn | None:
        """An applied advice (xx20/xx21) standing in for ``request`` itself, if any."""
        get = request.fields.get
        key = match_key(request.mti[1], str(get(11, "")), str(get(7, "")), str(get(32, "")))
        prior = self.state.txns_by_original.get(key)
        if prior is None or prior.mti[2:3] != "2" or prior.response_code != RC.APPROVED:
            return None
        card = self.state.cards_by_hash.get(hashed) if hashed else None
        return prior if card is not None and self._same_card(card, prior) else None

    def _replay(self, ctx: Ctx, txn: Txn) -> Decision:
        """The first answer again, for a repeat of a request already decided (nothing is applied twice)."""
        response = ctx.request.make_response(txn.response_code)
        if txn.response_code == RC.APPROVED:
            response[38] = txn.approval_code
            _fee_field(response, txn)
            self._balances(response, self.state.accounts.get(txn.account_id or ""), None)
        return Decision(response, ctx.changes.effects())

