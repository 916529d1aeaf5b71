"""Posting builders always balance; the checker finds what does not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from processors import ledger
from processors.model import Account, Entry, Posting, TxnType

NOW = datetime(2025, 6, 15, tzinfo=UTC)


@pytest.mark.parametrize("txn_type", [t for t in TxnType])
@pytest.mark.parametrize(("amount", "fee"), [(1_000, 0), (1_000, 25), (0, 50)])
def test_card_legs_balance_for_every_type(txn_type: TxnType, amount: int, fee: int) -> None:
    legs = ledger.card_legs(txn_type, "A1", "A2", amount, fee)
    assert sum(amount for _, amount in legs) == 0
    posting = ledger.make_posting("P1", "T1", NOW, "x", "USD", legs)
    assert ledger.check_postings([posting]) == []
    assert all(entry.amount for entry in posting.entries)  # zero legs are left out
    reverse = ledger.make_posting("P2", "T2", NOW, "x", "USD", ledger.negate(legs))
    totals = ledger.balances_from_entries([*posting.entries, *reverse.entries])
    assert set(totals.values()) <= {0}


def test_purchase_legs() -> None:
    assert ledger.card_legs(TxnType.PURCHASE, "A1", None, 1_000, 25) == [
        ("A1", -1_025), (ledger.GL_SETTLEMENT, 1_000), (ledger.GL_FEES, 25)]


def test_unbalanced_posting_is_refused() -> None:
    with pytest.raises(ledger.LedgerError):
        ledger.make_posting("P1", None, NOW, "x", "USD", [("A1", -10), (ledger.GL_FEES, 9)])
    with pytest.raises(ledger.LedgerError):
        ledger.card_legs(TxnType.TRANSFER, "A1", None, 10, 0)
    with pytest.raises(ledger.LedgerError):
        ledger.card_legs("mystery", "A1", None, 10, 0)


def test_check_postings_reports_problems() -> None:
    bad = Posting("P9", None, NOW, "x", [Entry("e1", "P9", "A1", -10, "USD"), Entry("e2", "P8", "GL:FEES", 9, "USD"),
                                         Entry("e3", "P9", "A1", 5, "EUR")])
    problems = ledger.check_postings([bad])
    assert problems == ["entry e2 of posting P9 names posting P8", "posting P9 is off by +5 EUR",
                        "posting P9 is off by -1 USD"]


def test_apply_posting_and_check_balances() -> None:
    account = Account("A1", "C1", "checking", "USD", "debit", ledger_balance=100)
    posting = ledger.make_posting("P1", None, NOW, "x", "USD", ledger.card_legs(TxnType.PURCHASE, "A1", None, 40, 0))
    assert ledger.apply_posting({"A1": account}, posting) == [(account, -40)]
    assert account.ledger_balance == 60
    assert ledger.check_balances([account], posting.entries) == ["account A1: ledger_balance 60 != entries -40"]
    with pytest.raises(ledger.LedgerError):
        ledger.apply_posting({}, posting)
    eur = Account("A1", "C1", "checking", "EUR", "debit")
    with pytest.raises(ledger.LedgerError):
        ledger.apply_posting({"A1": eur}, posting)
