"""Double-entry postings: builders that always balance, and a sans-I/O checker.

Every financial event of a cell is one :class:`~processors.model.Posting` whose :class:`Entry` amounts sum to
zero per currency. Customer accounts are named by their account id, the bank's own books by ``GL:`` names. An
account's ``ledger_balance`` is the sum of its entries (sign convention in :mod:`processors.model`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from processors.model import Account, Entry, Posting, TxnType
from switch.model.errors import BulkheadError

GL_SETTLEMENT = "GL:SETTLEMENT"  # what the scheme/acquirers owe us or we owe them for card transactions
GL_FEES = "GL:FEES"  # fee income
GL_CASH = "GL:CASH"  # cash taken in at branches (deposits made through commands)
GL_INSTALLMENT_FEES = "GL:INSTALLMENT-FEES"


class LedgerError(BulkheadError):
    """A posting that does not balance, or legs that cannot be posted: always a bug on our side."""


def is_gl(account: str) -> bool:
    return account.startswith("GL:")


def make_posting(
    posting_id: str, txn_id: str | None, created_at: datetime, description: str, currency: str,
    legs: Iterable[tuple[str, int]],
) -> Posting:
    """A posting of ``legs`` (account, signed amount) in one currency; zero legs are left out.

    Raises :class:`LedgerError` if the legs do not sum to zero, so an unbalanced posting never exists.
    """
    entries: list[Entry] = []
    total = 0
    for account, amount in legs:
        if amount:
            total += amount
            entries.append(Entry(f"{posting_id}-{len(entries) + 1}", posting_id, account, amount, currency))
    if total:
        raise LedgerError(f"posting {posting_id} does not balance: {total:+d} {currency}")
    return Posting(posting_id, txn_id, created_at, description, entries)


def card_legs(
    txn_type: str, account: str, to_account: str | None, amount: int, fee: int,
) -> list[tuple[str, int]]:
    """The legs of a card transaction of ``amount`` with ``fee``, by transaction type.

    A purchase or withdrawal takes amount + fee from the cardholder: the amount is owed to the acquirer side
    (GL:SETTLEMENT), the fee is income. A refund or deposit is the same the other way (the fee, if any, is still
    charged). A transfer moves the amount between two of the cardholder's accounts. A balance inquiry, a mini
    statement or a PIN change could only move a fee (the engine charges none for a PIN change). Reversals post
    the same legs negated.
    """
    if txn_type in (TxnType.PURCHASE, TxnType.WITHDRAWAL):
        return [(account, -amount - fee), (GL_SETTLEMENT, amount), (GL_FEES, fee)]
    if txn_type in (TxnType.REFUND, TxnType.DEPOSIT):
        return [(account, amount - fee), (GL_SETTLEMENT, -amount), (GL_FEES, fee)]
    if txn_type == TxnType.TRANSFER:
        if to_account is None:
            raise LedgerError("a transfer needs a destination account")
        return [(account, -amount - fee), (to_account, amount), (GL_FEES, fee)]
    if txn_type in (TxnType.BALANCE, TxnType.STATEMENT, TxnType.PIN_CHANGE):
        return [(account, -fee), (GL_FEES, fee)]
    raise LedgerError(f"no posting rule for transaction type {txn_type!r}")


def negate(legs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    return [(account, -amount) for account, amount in legs]


def apply_posting(accounts: Mapping[str, Account], posting: Posting) -> list[tuple[Account, int]]:
    """Add the posting's entries to the customer accounts it names; returns (account, delta) per account.

    GL accounts are not kept in memory (their balances are derived by the ledger check)."""
    changed: list[tuple[Account, int]] = []
    for entry in posting.entries:
        if is_gl(entry.account):
            continue
        account = accounts.get(entry.account)
        if account is None:
            raise LedgerError(f"posting {posting.id} names unknown account {entry.account}")
        if account.currency != entry.currency:
            raise LedgerError(f"posting {posting.id} posts {entry.currency} to a {account.currency} account")
        account.ledger_balance += entry.amount
        changed.append((account, entry.amount))
    return changed


def check_postings(postings: Iterable[Posting]) -> list[str]:
    """Problems found in ``postings`` (empty when every posting balances per currency and its entries point
    back at it). Sans-I/O: the storage's ledger check and the tests feed it rows."""
    problems: list[str] = []
    for posting in postings:
        sums: dict[str, int] = defaultdict(int)
        for entry in posting.entries:
            if entry.posting_id != posting.id:
                problems.append(f"entry {entry.id} of posting {posting.id} names posting {entry.posting_id}")
            sums[entry.currency] += entry.amount
        for currency, total in sorted(sums.items()):
            if total:
                problems.append(f"posting {posting.id} is off by {total:+d} {currency}")
    return problems


def balances_from_entries(entries: Iterable[Entry]) -> dict[str, int]:
    """Each account's balance as the sum of its entries."""
    out: dict[str, int] = defaultdict(int)
    for entry in entries:
        out[entry.account] += entry.amount
    return dict(out)


def check_balances(accounts: Sequence[Account], entries: Iterable[Entry]) -> list[str]:
    """Problems where an account's ``ledger_balance`` differs from the sum of its entries."""
    sums = balances_from_entries(entries)
    return [
        f"account {a.id}: ledger_balance {a.ledger_balance} != entries {sums.get(a.id, 0)}"
        for a in accounts if a.ledger_balance != sums.get(a.id, 0)
    ]
