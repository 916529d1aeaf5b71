"""The debit platform's side of an authorization: funds, holds and balances of a deposit account.

A deposit account's available balance is ``ledger_balance - held`` plus any overdraft the account or product
grants (pricing item ``overdraft``, account level before product level). The engine
(:mod:`processors.engine`) asks a :class:`Funds` object for the account's kind; :mod:`processors.credit` is
the credit-card counterpart. Each method changes the rows in memory and returns the rows it changed, for the
decision's :class:`~processors.model.Effects`.
"""

from __future__ import annotations

from processors.catalog import Product
from processors.model import Account, Row
from processors.state import CellState
from switch.model.codes import ResponseCode

OVERDRAFT = "overdraft"


class Funds:
    """What the engine needs from an account kind. This base class is the debit (deposit account) one."""

    def check(
        self, state: CellState, account: Account, product: Product, total: int, cash_amount: int,
    ) -> ResponseCode | None:
        """None when ``total`` (amount + fee) may be taken from ``account`` now, else the decline code.
        ``cash_amount`` is the part that is cash (a credit line's cash sub-limit; unused for debit)."""
        if account.status != "active":
            return ResponseCode.RESTRICTED_CARD
        overdraft = account.pricing.get(OVERDRAFT, product.pricing.get(OVERDRAFT, 0))
        if total > account.ledger_balance - account.held + int(overdraft):
            return ResponseCode.INSUFFICIENT_FUNDS
        return None

    def hold(self, state: CellState, account: Account, amount: int, cash: bool) -> list[Row]:
        """Reserve ``amount`` (negative: give part of a hold back)."""
        account.held += amount
        return [account]

    def posted(self, state: CellState, account: Account, old_balance: int, cash_delta: int) -> list[Row]:
        """Follow-up after a posting changed ``account.ledger_balance`` from ``old_balance``."""
        return [account]

    def balances(self, state: CellState, account: Account) -> tuple[int, int]:
        """(ledger, available) as DE 54 reports them."""
        return account.ledger_balance, account.ledger_balance - account.held


DEBIT = Funds()
