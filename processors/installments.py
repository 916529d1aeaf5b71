"""Installment plans: a posted credit-card purchase converted into N monthly installments with a fee.

Posting scheme (ledger sign as in :mod:`processors.model`: a card account that owes money is negative; every
posting sums to zero per currency):

Conversion of a purchase of principal ``P`` with plan fee ``F`` (plan ``I..``)::

    card account            +P        the purchase leaves the revolving balance
    INST:<plan id>          -(P + F)  the plan's sub-ledger: what is still to be billed
    GL:INSTALLMENT-FEES     +F        fee income

The credit line's ``owed`` grows by ``F`` (the principal was already owed since the purchase posted; the
change follows from the legs by the one rule of :func:`processors.credit.line_posted`), so
open-to-buy shrinks by the fee at once and a conversion whose fee does not fit in open-to-buy is refused.
The invariant ``owed == -(sum of the line's card accounts + sum of its INST:<plan> accounts)`` holds before
and after (``processors.storage.ledger_check`` verifies it).

Billing of installment ``k`` (principal part ``p_k`` + fee part ``f_k``; the first installment carries the
remainders so the parts add up exactly)::

    card account            -(p_k + f_k)
    INST:<plan id>          +(p_k + f_k)

``owed`` does not change when billing: the money moves from "unbilled" to the card account's balance. After
the last installment the plan's sub-ledger is back to zero and the plan is ``completed``.

Installment ``k`` (1-based) is due ``k`` months after the day of conversion (the same day of the month,
clamped to the month's last day). :func:`bill_due` bills every installment due on or before a day, so a
missed billing run catches up and running it twice on one day bills nothing the second time.

The fee is ``rate_bp`` basis points of the principal, rounded half up; the rate comes from
:mod:`processors.pricing` (``installment.fee_rate_bp``: the request's value, else the account's, else the
product's), as do ``installment.max_count`` (default 12) and ``installment.min_amount`` (default 0).

Functions here validate (:func:`quote`) separately from changing state (:func:`convert`, :func:`bill_due`), so
a command can check everything before touching anything.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from processors import credit, ledger, pricing
from processors.catalog import Catalog, Fee, Product
from processors.model import (
    Account,
    CreditLine,
    Effects,
    InstallmentPlan,
    Posting,
    Txn,
    TxnStatus,
    TxnType,
)
from processors.state import CellState
from switch.model.errors import BulkheadError

INSTALLMENT_PREFIX: Final = "INST:"
FEES_ACCOUNT: Final = ledger.GL_INSTALLMENT_FEES
DEFAULT_MAX_COUNT: Final = 12
MAX_RATE_BP: Final = 10_000
_CONVERTIBLE = (TxnStatus.APPROVED, TxnStatus.COMPLETED)


class InstallmentError(BulkheadError):
    """A conversion or billing request is not possible; the message says why (no card data in it)."""


def sub_ledger(plan_id: str) -> str:
    """The ledger account holding a plan's unbilled part."""
    return INSTALLMENT_PREFIX + plan_id


# ------------------------------------------------------------------------------------------- postings


def new_posting(state: CellState, effects: Effects, txn_id: str | None, now: datetime, description: str,
                currency: str, legs: list[tuple[str, int]]) -> Posting:
    """A balanced posting (:func:`processors.ledger.make_posting`) applied to the customer accounts it names.

    ``legs`` are (ledger account, signed amount). Customer account balances in ``state`` are updated; the
    sequence row, the posting with its entries and the changed accounts are recorded in ``effects``. GL and
    ``INST:`` sub-ledger accounts have no balance row; the credit lines of the card accounts and sub-ledgers
    posted to follow with :func:`processors.credit.line_posted` (recorded too). Validate before calling: an
    unbalanced posting or an unknown customer account here is a bug (:class:`~processors.ledger.LedgerError`).
    """
    seq = state.next_value("posting")
    posting = ledger.make_posting(f"P{state.cell:02d}-{seq.value}", txn_id, now, description, currency, legs)
    changed: list[Account] = []
    line_changes: dict[str, int] = {}  # credit line id -> sum of the posting's entries on its ledgers
    for entry in posting.entries:
        if ledger.is_gl(entry.account):
            continue
        if entry.account.startswith(INSTALLMENT_PREFIX):
            plan = state.plans.get(entry.account[len(INSTALLMENT_PREFIX):])
            if plan is None:
                raise ledger.LedgerError(f"posting {posting.id} names unknown plan ledger {entry.account}")
            line_changes[plan.credit_line_id] = line_changes.get(plan.credit_line_id, 0) + entry.amount
            continue
        account = state.accounts.get(entry.account)
        if account is None or account.currency != entry.currency:
            raise ledger.LedgerError(f"posting {posting.id} cannot post {entry.currency} to account {entry.account}")
        account.ledger_balance += entry.amount
        if account not in changed:
            changed.append(account)
        if account.kind == "credit" and account.credit_line_id is not None:
            line_changes[account.credit_line_id] = line_changes.get(account.credit_line_id, 0) + entry.amount
    lines: list[CreditLine] = []
    for line_id, change in line_changes.items():
        line = state.credit_lines.get(line_id)
        if line is None:
            raise ledger.LedgerError(f"posting {posting.id} moves money on unknown credit line {line_id}")
        credit.line_posted(line, change)  # the one owed rule (processors.credit)
        lines.append(line)
    effects.add(seq, posting, *changed, *lines)
    state.note_posting(posting)
    return posting


# ------------------------------------------------------------------------------------------- schedule


def split(total: int, count: int) -> list[int]:
    """``total`` in ``count`` parts that add up exactly; the first part carries the remainder."""
    base, rest = divmod(total, count)
    return [base + rest] + [base] * (count - 1)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of the month (Jan 31 + 1 month = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(plan: InstallmentPlan, k: int) -> date:
    """When installment ``k`` (1-based) of ``plan`` is due."""
    if plan.created_at is None:
        raise InstallmentError(f"plan {plan.id} has no creation date")
    return add_months(plan.created_at.date(), k)


def installment_amount(plan: InstallmentPlan, k: int) -> int:
    """Principal part + fee part of installment ``k`` (1-based)."""
    return split(plan.principal, plan.count)[k - 1] + split(plan.fee, plan.count)[k - 1]


# ------------------------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class Quote:
    """A validated conversion, ready for :func:`convert`."""

    account: Account
    line: CreditLine
    txn: Txn
    product: Product
    count: int
    rate_bp: int
    principal: int
    fee: int

    def schedule(self) -> list[int]:
        """The amount of each installment (principal part + fee part)."""
        return [p + f for p, f in zip(split(self.principal, self.count), split(self.fee, self.count), strict=True)]


def quote(state: CellState, catalog: Catalog, account_id: str, txn_id: str, count: int,
          rate_bp: int | None = None) -> Quote:
    """Check that purchase ``txn_id`` on credit account ``account_id`` can be split in ``count`` installments
    and price it. Changes nothing."""
    account = state.accounts.get(account_id)
    if account is None:
        raise InstallmentError(f"unknown account {account_id}")
    if account.kind != "credit" or account.credit_line_id is None:
        raise InstallmentError(f"account {account_id} is not a credit card account")
    line = state.credit_lines.get(account.credit_line_id)
    if line is None:
        raise InstallmentError(f"account {account_id} names credit line {account.credit_line_id}, which is unknown")
    if account.status != "active" or line.status != "active":
        raise InstallmentError(f"account {account_id} or its credit line is not active")
    product = catalog.products.get(account.product)
    if product is None:
        raise InstallmentError(f"account {account_id} has product {account.product!r}, not in the catalogue")
    txn = _purchase(state, account, txn_id)
    max_count = pricing.get_int("installment.max_count", product, account, default=DEFAULT_MAX_COUNT)
    if not 2 <= count <= max_count:
        raise InstallmentError(f"count must be 2..{max_count}, got {count}")
    principal = txn.amount
    min_amount = pricing.get_int("installment.min_amount", product, account, default=0)
    if principal < max(min_amount, count):
        raise InstallmentError(f"amount {principal} is below the smallest convertible ({max(min_amount, count)})")
    if rate_bp is not None and not 0 <= rate_bp <= MAX_RATE_BP:
        raise InstallmentError(f"rate_bp must be 0..{MAX_RATE_BP}, got {rate_bp}")
    rate = pricing.installment_rate_bp(product, account, rate_bp)
    fee = Fee(rate_bp=rate).on(principal)
    if fee > line.open_to_buy:
        raise InstallmentError(f"the plan fee {fee} exceeds the open-to-buy {line.open_to_buy}")
    return Quote(account, line, txn, product, count, rate, principal, fee)


def _purchase(state: CellState, account: Account, txn_id: str) -> Txn:
    txn = state.txns.get(txn_id)
    if txn is None:
        raise InstallmentError(f"unknown transaction {txn_id} (or older than the retention period)")
    if txn.account_id != account.id:
        raise InstallmentError(f"transaction {txn_id} is not on account {account.id}")
    if txn.txn_type != TxnType.PURCHASE or txn.status not in _CONVERTIBLE or txn.reversed_amount:
        raise InstallmentError(f"transaction {txn_id} is not an approved, unreversed purchase "
                               f"({txn.txn_type}, {txn.status})")
    if txn.posting_id is None:
        raise InstallmentError(f"transaction {txn_id} is not posted (an authorization: convert its completion)")
    if txn.currency != account.currency:
        raise InstallmentError(f"transaction {txn_id} is in {txn.currency}, the account in {account.currency}")
    for plan in state.plans.values():
        if plan.source_txn_id == txn_id and plan.status != "cancelled":
            raise InstallmentError(f"transaction {txn_id} is already converted (plan {plan.id})")
    return txn


def convert(state: CellState, q: Quote, now: datetime, effects: Effects) -> InstallmentPlan:
    """Create the plan of a validated quote and post the conversion (see the module docstring)."""
    seq = state.next_value("installment_plan")
    plan = InstallmentPlan(
        id=f"I{state.cell:02d}{seq.value:08d}", credit_line_id=q.line.id, account_id=q.account.id,
        source_txn_id=q.txn.id, currency=q.account.currency, principal=q.principal, count=q.count, fee=q.fee,
        rate_bp=q.rate_bp, created_at=now,
    )
    state.put(plan)
    effects.add(seq, plan)
    new_posting(state, effects, q.txn.id, now, f"installment plan {plan.id}: {q.count} installments",
                q.account.currency, [(q.account.id, q.principal), (sub_ledger(plan.id), -(q.principal + q.fee)),
                                     (FEES_ACCOUNT, q.fee)])
    return plan


# ------------------------------------------------------------------------------------------- billing


def due(state: CellState, day: date) -> list[tuple[InstallmentPlan, int]]:
    """(plan, installment number) of every installment due on or before ``day`` and not billed yet."""
    out: list[tuple[InstallmentPlan, int]] = []
    for plan in sorted(state.plans.values(), key=lambda p: p.id):
        if plan.status != "active":
            continue
        if plan.account_id not in state.accounts:
            raise InstallmentError(f"plan {plan.id} names account {plan.account_id}, which is unknown")
        k = plan.billed + 1
        while k <= plan.count and due_date(plan, k) <= day:
            out.append((plan, k))
            k += 1
    return out


def bill_due(state: CellState, day: date, now: datetime, effects: Effects) -> list[dict[str, object]]:
    """Bill every installment due on or before ``day``; returns one summary per installment billed."""
    billed: list[dict[str, object]] = []
    for plan, k in due(state, day):
        amount = installment_amount(plan, k)
        posting = new_posting(state, effects, None, now, f"installment {k}/{plan.count} of plan {plan.id}",
                              plan.currency, [(plan.account_id, -amount), (sub_ledger(plan.id), amount)])
        plan.billed = k
        if k == plan.count:
            plan.status = "completed"
        effects.add(plan)
        billed.append({"plan": plan.id, "installment": k, "amount": amount, "currency": plan.currency,
                       "account": plan.account_id, "posting": posting.id})
    return billed
