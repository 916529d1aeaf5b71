"""A cell's working state in memory, with the indexes the authorization path needs.

Built once from the database rows (:meth:`CellState.from_rows`, fed by :func:`processors.storage.load_rows`);
afterwards only the cell's engine changes it, and every change it makes is also recorded in an
:class:`~processors.model.Effects` for the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from processors.fields import original_key
from processors.model import (
    Account,
    Card,
    CreditLine,
    Customer,
    EarlyReversal,
    ExceptionItem,
    Hold,
    HoldStatus,
    InstallmentPlan,
    Row,
    Sequence,
    Txn,
    TxnStatus,
    Usage,
)


@dataclass
class CellState:
    cell: int
    customers: dict[str, Customer] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    credit_lines: dict[str, CreditLine] = field(default_factory=dict)
    cards: dict[str, Card] = field(default_factory=dict)  # by card id
    cards_by_hash: dict[str, Card] = field(default_factory=dict)  # by keyed PAN hash (one live card per PAN)
    holds: dict[str, Hold] = field(default_factory=dict)  # open holds only
    usage: dict[tuple[str, date, str], Usage] = field(default_factory=dict)
    txns: dict[str, Txn] = field(default_factory=dict)  # recent decided transactions, by id
    txns_by_dup_key: dict[str, Txn] = field(default_factory=dict)
    # DE 90 match key (processors.fields.match_key) -> the request a reversal or completion names
    txns_by_original: dict[str, Txn] = field(default_factory=dict)
    plans: dict[str, InstallmentPlan] = field(default_factory=dict)
    # Reversals that arrived before their original (processors.early): by their dup key, and by each match key
    # they name (a list: a 0400 and a later 0420 may name the same original)
    early_reversals: dict[str, EarlyReversal] = field(default_factory=dict)
    early_by_original: dict[str, list[EarlyReversal]] = field(default_factory=dict)
    # ... and by the keyed PAN hash of their card, to cap how many one card may have (processors.early.Caps)
    early_by_card: dict[str, list[EarlyReversal]] = field(default_factory=dict)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    # Advices posted on an assumption or not posted (processors.model.ExceptionItem): open ones, and resolved ones
    # of the retention window (loading)
    exceptions: dict[str, ExceptionItem] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, cell: int, rows: Iterable[Row]) -> CellState:
        """Index rows loaded from the cell's database (postings and entries are not kept in memory)."""
        state = cls(cell)
        for row in rows:
            state.put(row)
        return state

    def put(self, row: Row) -> None:
        """Add or replace one row in the indexes."""
        put = _PUT.get(type(row))
        if put is None:  # a subclass of a row type (none in the model; tests may make some)
            put = next((_PUT[kind] for kind in type(row).__mro__ if kind in _PUT), None)
        if put is not None:
            put(self, row)

    def _put_customer(self, row: Customer) -> None:
        self.customers[row.id] = row

    def _put_account(self, row: Account) -> None:
        self.accounts[row.id] = row

    def _put_credit_line(self, row: CreditLine) -> None:
        self.credit_lines[row.id] = row

    def _put_card(self, row: Card) -> None:
        self.cards[row.id] = row
        current = self.cards_by_hash.get(row.pan_hash)
        # A replacement with the same number shares the hash: the newest card (the one that does not
        # point back at the other) answers for the PAN.
        if current is None or current.id == row.id or row.replaces == current.id:
            self.cards_by_hash[row.pan_hash] = row

    def _put_hold(self, row: Hold) -> None:
        if row.status == HoldStatus.OPEN:
            self.holds[row.id] = row
        else:
            self.holds.pop(row.id, None)

    def _put_usage(self, row: Usage) -> None:
        self.usage[(row.card_id, row.day, row.channel)] = row

    def _put_txn(self, row: Txn) -> None:
        self.txns[row.id] = row
        self.txns_by_dup_key[row.dup_key] = row
        key = original_key(row)
        if key is not None:
            # An approved request wins the key over a declined one (a stand-in advice after our decline).
            known = self.txns_by_original.get(key)
            if known is None or known.id == row.id or known.status == TxnStatus.DECLINED:
                self.txns_by_original[key] = row

    def _put_plan(self, row: InstallmentPlan) -> None:
        self.plans[row.id] = row

    def _put_early_reversal(self, row: EarlyReversal) -> None:
        known = self.early_reversals.get(row.id)
        self.early_reversals[row.id] = row
        if known is not None:
            self.forget_early_reversal(known)
            self.early_reversals[row.id] = row
        for key in (row.original_key, row.alternate_key):
            if key:
                self.early_by_original.setdefault(key, []).append(row)
        self.early_by_card.setdefault(row.pan_hash, []).append(row)

    def forget_early_reversal(self, row: EarlyReversal) -> None:
        """Drop a remembered reversal from the indexes (memory only)."""
        self.early_reversals.pop(row.id, None)
        for index, key in ((self.early_by_original, row.original_key), (self.early_by_original, row.alternate_key),
                           (self.early_by_card, row.pan_hash)):
            listed = index.get(key)
            if listed is not None:
                listed[:] = [other for other in listed if other is not row]
                if not listed:
                    del index[key]

    def _put_exception(self, row: ExceptionItem) -> None:
        self.exceptions[row.id] = row

    def _put_sequence(self, row: Sequence) -> None:
        self.sequences[row.name] = row

    def next_value(self, name: str) -> Sequence:
        """Advance the named counter; the caller records the returned row in its Effects."""
        seq = self.sequences.get(name)
        if seq is None:
            seq = self.sequences[name] = Sequence(name)
        seq.value += 1
        return seq


# CellState.put by row type: one dict lookup instead of a chain of isinstance tests (the engine puts a Txn per
# decision; loading puts every row). Postings and entries are not kept in memory.
_PUT: dict[type[Row], Callable[[CellState, Any], None]] = {
    Customer: CellState._put_customer,
    Account: CellState._put_account,
    CreditLine: CellState._put_credit_line,
    Card: CellState._put_card,
    Hold: CellState._put_hold,
    Usage: CellState._put_usage,
    Txn: CellState._put_txn,
    InstallmentPlan: CellState._put_plan,
    Sequence: CellState._put_sequence,
    EarlyReversal: CellState._put_early_reversal,
    ExceptionItem: CellState._put_exception,
}
