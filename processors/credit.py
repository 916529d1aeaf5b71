"""The credit-card core's side of an authorization: the customer-level line, open-to-buy, cash sub-limit.

All the credit accounts of a customer share one :class:`~processors.model.CreditLine` (the "unified quota"):
a purchase on any of the customer's cards uses the same open-to-buy (``limit - max(owed, 0) - held``).

Rules (documented choices):

- ``owed`` is one signed rule, the one the storage ledger check verifies: ``owed == -(sum of the line's card
  account balances + sum of its installment plans' INST:<plan> sub-ledgers)``. It is kept incrementally:
  every posting on a card account changes ``owed`` by minus the balance change (:meth:`CreditFunds.posted`),
  installment conversions by their fee (:mod:`processors.installments`), ``account.post`` by its amount. A
  refund or payment beyond what was owed makes ``owed`` negative (the line is in credit).
- Open-to-buy is ``limit - max(owed, 0) - held`` (:attr:`~processors.model.CreditLine.open_to_buy`): a credit
  balance is owed back to the cardholder but adds no spending power beyond the limit.
- ``cash_owed`` grows with cash advances, shrinks with their reversals and with cardholder payments, and stays
  within ``0..max(owed, 0)``. How much of a payment goes to cash is the product's ``payment_allocation``
  (:func:`payment_cash_part`): ``cash_first`` (the default, and common practice: cash advances usually carry
  the highest rate, and card rules such as the US CARD Act send payments to the highest-rate balance first),
  ``purchases_first`` (cash falls only once the purchases are paid) or ``pro_rata`` (in proportion to the cash
  share of what is owed, rounded down). Only the split changes: ``owed`` falls by the whole payment either way.
- Holds count on the line (``held``, ``cash_held``) *and* on the account (``Account.held``), so that every
  account's ``held`` equals the sum of its open holds whatever its kind.
- A cash advance that fits the open-to-buy but not the cash sub-limit is declined **61** (ISO 8583:1987
  "exceeds withdrawal amount limit"); one that does not fit the open-to-buy at all is **51**.
"""

from __future__ import annotations

from processors.catalog import Product
from processors.debit import DEBIT, Funds
from processors.model import Account, CreditLine, Row
from processors.state import CellState
from switch.model.codes import ResponseCode


class CreditFunds(Funds):
    """:class:`~processors.debit.Funds` for card accounts under a credit line."""

    @staticmethod
    def line(state: CellState, account: Account) -> CreditLine | None:
        return state.credit_lines.get(account.credit_line_id) if account.credit_line_id else None

    def check(
        self, state: CellState, account: Account, product: Product, total: int, cash_amount: int,
    ) -> ResponseCode | None:
        line = self.line(state, account)
        if line is None or line.status != "active" or account.status != "active":
            return ResponseCode.RESTRICTED_CARD
        if total > line.open_to_buy:
            return ResponseCode.INSUFFICIENT_FUNDS
        if cash_amount and cash_amount > line.cash_limit - line.cash_owed - line.cash_held:
            return ResponseCode.EXCEEDS_AMOUNT_LIMIT
        return None

    def hold(self, state: CellState, account: Account, amount: int, cash: bool) -> list[Row]:
        account.held += amount
        line = self.line(state, account)
        if line is None:
            return [account]
        line.held += amount
        if cash:
            line.cash_held += amount
        return [account, line]

    def posted(self, state: CellState, account: Account, old_balance: int, cash_delta: int) -> list[Row]:
        line = self.line(state, account)
        if line is None:
            return [account]
        line_posted(line, account.ledger_balance - old_balance, cash_delta)
        return [account, line]

    def balances(self, state: CellState, account: Account) -> tuple[int, int]:
        """Ledger balance of the card account (negative: owed) and the line's open-to-buy as available."""
        line = self.line(state, account)
        return account.ledger_balance, (line.open_to_buy if line is not None else 0)


CREDIT = CreditFunds()


def line_posted(line: CreditLine, ledger_change: int, cash_delta: int = 0) -> None:
    """Follow a posting on ``line``: ``ledger_change`` is the sum of its entries on the line's card accounts and
    installment sub-ledgers, ``cash_delta`` the change of the cash-advance part. The one place that applies the
    rule ``owed == -(card accounts + INST sub-ledgers)`` (module docstring); everything that posts calls it."""
    line.owed -= ledger_change
    line.cash_owed = max(0, min(line.cash_owed + cash_delta, line.owed))


PAYMENT_ALLOCATIONS = ("cash_first", "purchases_first", "pro_rata")


def payment_cash_part(line: CreditLine, amount: int, rule: str) -> int:
    """The part of a payment of ``amount`` that repays cash advances, by ``rule`` (module docstring), from the
    line as it is before the payment."""
    cash = max(0, min(line.cash_owed, line.owed))
    if rule == "cash_first":
        return min(amount, cash)
    if rule == "purchases_first":
        return max(0, min(cash, amount - (max(line.owed, 0) - cash)))
    if rule == "pro_rata":
        return min(cash, amount * cash // line.owed) if line.owed > 0 else 0
    raise ValueError(f"unknown payment allocation {rule!r} (one of {', '.join(PAYMENT_ALLOCATIONS)})")


def payment_applied(line: CreditLine, cash_before: int, cash_part: int) -> None:
    """After a payment's posting: the cash owed is ``cash_before`` (the line's ``cash_owed`` before the payment)
    less the payment's ``cash_part``, within ``0..max(owed, 0)``.

    The posting's :func:`line_posted` has already capped ``cash_owed`` at the lower ``owed``; that cap is the
    cash the payment reached under ``purchases_first``, not an extra repayment. Lowering the capped value by
    ``cash_part`` again would repay cash twice and free more cash sub-limit than was paid, so the result is
    computed from the value before the payment."""
    line.cash_owed = max(0, min(cash_before - cash_part, line.owed))


def funds_for(account: Account) -> Funds:
    """The :class:`Funds` rules of an account's kind."""
    return CREDIT if account.kind == "credit" else DEBIT
