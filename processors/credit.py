"""The credit-card core's side of an authorization: the customer-level line, open-to-buy, cash sub-limit.

All the credit accounts of a customer share one :class:`~processors.model.CreditLine` (the "unified quota"):
a purchase on any of the customer's cards uses the same open-to-buy (``limit - owed - held``).

Rules (documented choices):

- ``owed`` follows the line's accounts: it is the sum over them of ``max(0, -ledger_balance)`` (a credit
  balance from a refund or an overpayment owes nothing and is not open-to-buy either), kept incrementally from
  each posting's before/after balance. Installment plans (:mod:`processors.installments`) add their own part.
- ``cash_owed`` grows with cash advances, shrinks with their reversals, and never exceeds ``owed``.
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
from switch.codes import ResponseCode


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
        if total > line.limit - line.owed - line.held:
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
        line.owed += max(0, -account.ledger_balance) - max(0, -old_balance)
        line.cash_owed = max(0, min(line.cash_owed + cash_delta, line.owed))
        return [account, line]

    def balances(self, state: CellState, account: Account) -> tuple[int, int]:
        """Ledger balance of the card account (negative: owed) and the line's open-to-buy as available."""
        line = self.line(state, account)
        return account.ledger_balance, (line.open_to_buy if line is not None else 0)


CREDIT = CreditFunds()


def funds_for(account: Account) -> Funds:
    """The :class:`Funds` rules of an account's kind."""
    return CREDIT if account.kind == "credit" else DEBIT
