"""Mini statements (0200 / 0100, DE 3 ``38xxxx``): the account's newest postings as ATM receipt lines in DE 48.

DE 48 of the answer holds up to :data:`~processors.state.STATEMENT_LINES` (10) lines of exactly 40 characters,
with no separator, newest first (the bank's ATM host interface, README "ATM interface")::

    DDMM ␣ description (20, left-justified, cut) ␣ amount (13, right-justified) sign (1)
    1506 CASH WITHDRAWAL            100.00-
    1406 DEPOSIT                    250.00␣

- ``DDMM``: the posting's day and month (UTC, the cell's clock);
- the description: what the posting was, in upper-case ASCII (:func:`describe`);
- the amount: major.minor in the account currency's minor unit (ISO 4217: ``100.00`` USD, ``1000`` JPY,
  ``1.000`` BHD), right-justified in 13 characters, then its sign: ``-`` a debit (money out of the account),
  a space a credit. An amount too long for 13 characters (above 9,999,999,999.99 in USD) is printed as 13 ``*``,
  as cheque writers do, rather than cut.

A line is one posting's effect on the account (its entries on that account summed: a withdrawal and its fee are
one line). Lines come from the ledger postings, kept per account in memory as they are applied and loaded from the
ledger at start (:meth:`processors.state.CellState.note_posting`, :func:`processors.storage.load_state`), for the
last ``txn_retention_days``: a statement shows the same lines before and after a restart.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from processors import money
from processors.model import StatementLine
from processors.state import STATEMENT_LINES, CellState

LINE_LENGTH: Final = 40
DESCRIPTION_LENGTH: Final = 20
AMOUNT_LENGTH: Final = 13
OVERFLOW: Final = "*" * AMOUNT_LENGTH

# The engine's postings are described "<txn type> <MTI>" (processors.engine.approval.post_txn): on a receipt, what
# the cardholder did. Anything else (the commands' "cash deposit REF", "payment REF", installments) is printed as
# it was written.
_CARD_POSTINGS: Final = {
    "withdrawal": "CASH WITHDRAWAL",
    "purchase": "PURCHASE",
    "refund": "REFUND",
    "deposit": "DEPOSIT",
    "transfer": "TRANSFER",
    "balance": "INQUIRY FEE",
    "statement": "STATEMENT FEE",
}


def describe(description: str) -> str:
    """A posting's description as a receipt prints it: upper-case printable ASCII (accents dropped)."""
    kind, _, mti = description.partition(" ")
    if kind in _CARD_POSTINGS and len(mti) == 4 and mti.isdigit():
        return _CARD_POSTINGS[kind]
    if description.startswith("reversal of "):  # processors.engine.reversals: "reversal of T01-7"
        return "REVERSAL"
    plain = unicodedata.normalize("NFKD", description).encode("ascii", "ignore").decode("ascii")
    return "".join(c if " " <= c <= "~" else " " for c in plain.upper())


def amount_text(amount: int, currency: str) -> str:
    """``abs(amount)`` as major.minor in ``currency``'s minor unit, right-justified in 13 characters, then the
    sign: ``-`` for a debit (negative), a space for a credit."""
    exponent = money.exponent(currency)
    major, minor = divmod(abs(amount), 10**exponent)
    text = f"{major}.{minor:0{exponent}d}" if exponent else str(major)
    if len(text) > AMOUNT_LENGTH:
        text = OVERFLOW
    return text.rjust(AMOUNT_LENGTH) + ("-" if amount < 0 else " ")


def line_text(line: StatementLine) -> str:
    """One receipt line of exactly 40 characters."""
    description = describe(line.description)[:DESCRIPTION_LENGTH].ljust(DESCRIPTION_LENGTH)
    return f"{line.posted_at:%d%m} {description} {amount_text(line.amount, line.currency)}"


def receipt(lines: Iterable[StatementLine]) -> str:
    """DE 48: the lines as given (newest first), at most 10, each 40 characters, no separator."""
    out: list[str] = []
    for line in lines:
        if len(out) == STATEMENT_LINES:
            break
        out.append(line_text(line))
    return "".join(out)


def statement_field(state: CellState, account_id: str, now: datetime, window_days: int) -> str:
    """DE 48 of a mini statement of ``account_id``: its newest postings of the last ``window_days`` ("" when
    there are none: the answer then carries no DE 48)."""
    kept = state.statements.get(account_id)
    if not kept:
        return ""
    since = now - timedelta(days=window_days)
    return receipt(line for line in reversed(kept) if line.posted_at >= since)
