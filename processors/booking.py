"""The state changes an approved decision makes: postings, holds, limit usage; and the limit checks.

Every function here mutates :class:`~processors.state.CellState` in memory and records each changed row in a
:class:`Changes`, which turns into the decision's :class:`~processors.model.Effects` once the decision is
complete. Nothing awaits: the engine calls these between reading the state and answering.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import date, datetime
from operator import attrgetter

from processors.catalog import Product
from processors.credit import CREDIT, funds_for, payment_cash_part
from processors.fields import split_txn_channel
from processors.ledger import apply_posting, card_legs, make_posting, negate
from processors.model import (
    Account,
    Card,
    Channel,
    CreditLine,
    Effects,
    Hold,
    HoldStatus,
    Posting,
    Row,
    TxnType,
    Usage,
)
from processors.state import CellState
from switch.model.codes import ResponseCode

# Row.WRITE_RANK: the position of a row's type in ROW_TYPES (C-level key: no Python call per row).
_RANK = attrgetter("WRITE_RANK")


class Changes:
    """Rows changed by one decision, each recorded once. :meth:`effects` snapshots them in
    :data:`~processors.model.ROW_TYPES` order (referenced rows before the rows that reference them)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}

    def add(self, *rows: Row) -> None:
        for row in rows:
            self.rows[id(row)] = row

    def effects(self) -> Effects:
        effects = Effects()
        rows = self.rows
        if rows:
            effects.add(*sorted(rows.values(), key=_RANK))
        return effects


class HoldExpiry:
    """A min-heap of (expires_at, hold id) so that expired holds are found without scanning them all."""

    __slots__ = ("heap",)

    def __init__(self, holds: dict[str, Hold]) -> None:
        self.heap = [(hold.expires_at, hold.id) for hold in holds.values()]
        heapq.heapify(self.heap)

    def push(self, hold: Hold) -> None:
        heapq.heappush(self.heap, (hold.expires_at, hold.id))

    def due(self, now: datetime) -> bool:
        return bool(self.heap) and self.heap[0][0] <= now

    def expire(self, state: CellState, now: datetime, changes: Changes) -> int:
        """Release every open hold whose time has come; returns how many."""
        count = 0
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, hold_id = heapq.heappop(heap)
            hold = state.holds.get(hold_id)
            if hold is not None and hold.expires_at <= now:
                release_hold(state, hold, HoldStatus.EXPIRED, changes)
                count += 1
        return count


def place_hold(state: CellState, hold: Hold, changes: Changes) -> None:
    account = state.accounts[hold.account_id]
    state.holds[hold.id] = hold
    changes.add(hold, *funds_for(account).hold(state, account, hold.amount, hold.cash))


def reduce_hold(state: CellState, hold: Hold, amount: int, changes: Changes) -> None:
    """Give ``amount`` of an open hold back (a partial reversal); a hold reduced to nothing is released."""
    if amount >= hold.amount:
        release_hold(state, hold, HoldStatus.RELEASED, changes)
        return
    account = state.accounts[hold.account_id]
    hold.amount -= amount
    changes.add(hold, *funds_for(account).hold(state, account, -amount, hold.cash))


def release_hold(state: CellState, hold: Hold, status: HoldStatus, changes: Changes) -> None:
    """Close an open hold (completed, released by a reversal, or expired) and give its amount back."""
    account = state.accounts.get(hold.account_id)
    if account is not None:
        changes.add(*funds_for(account).hold(state, account, -hold.amount, hold.cash))
    hold.status = status
    state.holds.pop(hold.id, None)
    changes.add(hold)


def post(
    state: CellState, changes: Changes, *, posting_id: str, txn_id: str, now: datetime, description: str,
    txn_type: str, account: Account, to_account: Account | None, amount: int, fee: int, cash: bool,
    reverse: bool = False, payee_cash: int = 0,
) -> Posting:
    """Post a card transaction (or, with ``reverse``, take it back) and update what follows from the balances
    (credit lines). ``cash`` marks a cash advance: its amount counts on the line's cash sub-limit.
    ``payee_cash``: taking back a payment into a credit line (:func:`payee_of`), the cash advances it had repaid
    (``Txn.cash_part``), owed as cash again."""
    legs = card_legs(txn_type, account.id, to_account.id if to_account is not None else None, amount, fee)
    if reverse:
        legs = negate(legs)
    posting = make_posting(posting_id, txn_id, now, description, account.currency, legs)
    cash_delta = (-amount if reverse else amount) if cash else 0
    payee = payee_of(txn_type, account, to_account) if payee_cash else None
    for changed, delta in apply_posting(state.accounts, posting):
        old_balance = changed.ledger_balance - delta
        change = cash_delta if changed is account else 0
        if changed is payee:
            change += payee_cash
        changes.add(*funds_for(changed).posted(state, changed, old_balance, change))
    changes.add(posting)
    state.note_posting(posting)
    return posting


def payee_of(txn_type: str, account: Account, to_account: Account | None) -> Account | None:
    """The credit card account a card transaction pays into from outside its line - a card deposit's (DE 3
    "21"), or a transfer's destination when the money comes from a deposit account - else None."""
    if txn_type == TxnType.DEPOSIT:
        payee = account
    elif txn_type == TxnType.TRANSFER and to_account is not None and account.kind != "credit":
        payee = to_account
    else:
        return None
    return payee if payee.kind == "credit" and payee.credit_line_id else None


def payment_split(
    state: CellState, txn_type: str, account: Account, to_account: Account | None, amount: int,
    rule: Callable[[Account], str],
) -> tuple[CreditLine, int, int] | None:
    """(line, its cash owed now, the cash part) of a payment of ``amount`` into a credit line (:func:`payee_of`),
    by ``rule``, the payee account's ``payment_allocation``: the same split as the ``credit.payment`` command
    (:func:`processors.credit.payment_cash_part`). Call before posting, then
    :func:`processors.credit.payment_applied` after it. None when the transaction is not such a payment."""
    payee = payee_of(txn_type, account, to_account)
    line = CREDIT.line(state, payee) if payee is not None else None
    if payee is None or line is None:
        return None
    return line, line.cash_owed, payment_cash_part(line, amount, rule(payee))


# -- limits -----------------------------------------------------------------------------------------------

_LIMIT_KINDS = ("per_txn", "daily_amount", "daily_count")


def channel_limit(product: Product, card: Card, channel: str) -> tuple[int | None, int | None, int | None]:
    """(per_txn, daily_amount, daily_count) for ``channel``: the card's overrides over the product's defaults."""
    base = product.limits.get(channel)
    per_txn, daily_amount, daily_count = (
        (base.per_txn, base.daily_amount, base.daily_count) if base is not None else (None, None, None))
    over = card.limits.get(channel) if card.limits else None
    if over:
        per_txn = over.get("per_txn", per_txn)
        daily_amount = over.get("daily_amount", daily_amount)
        daily_count = over.get("daily_count", daily_count)
    return per_txn, daily_amount, daily_count


def limit_channels(channel: str, cross_border: bool) -> tuple[str, ...]:
    return (channel, Channel.CROSS_BORDER.value) if cross_border else (channel,)


def limit_code(
    state: CellState, product: Product, card: Card, day: date, channel: str, cross_border: bool, amount: int,
) -> tuple[ResponseCode, str] | None:
    """61 (amount per transaction or per day) or 65 (count per day) when ``amount`` would exceed a limit of
    the channel, or of the cross-border limits on top of it; None when within every limit."""
    for name in limit_channels(channel, cross_border):
        per_txn, daily_amount, daily_count = channel_limit(product, card, name)
        if per_txn is None and daily_amount is None and daily_count is None:
            continue
        usage = state.usage.get((card.id, day, name))
        used_amount, used_count = (usage.amount, usage.count) if usage is not None else (0, 0)
        if per_txn is not None and amount > per_txn:
            return ResponseCode.EXCEEDS_AMOUNT_LIMIT, f"{name} per-transaction limit"
        if daily_amount is not None and used_amount + amount > daily_amount:
            return ResponseCode.EXCEEDS_AMOUNT_LIMIT, f"{name} daily amount limit"
        if daily_count is not None and used_count + 1 > daily_count:
            return ResponseCode.EXCEEDS_COUNT_LIMIT, f"{name} daily count limit"
    return None


def add_usage(
    state: CellState, changes: Changes, card_id: str, day: date, txn_channel: str, amount: int, count: int,
) -> None:
    """Count (or, with negative values, give back) usage on the channel(s) a transaction was counted on."""
    channel, cross_border = split_txn_channel(txn_channel)
    for name in limit_channels(channel, cross_border):
        key = (card_id, day, name)
        usage = state.usage.get(key)
        if usage is None:
            usage = state.usage[key] = Usage(card_id, day, name)
        usage.amount = max(0, usage.amount + amount)
        usage.count = max(0, usage.count + count)
        changes.add(usage)
