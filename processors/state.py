"""A cell's working state in memory, with the indexes the authorization path needs.

Built once from the database rows (:meth:`CellState.from_rows`, fed by :func:`processors.storage.load_rows`);
afterwards only the cell's engine changes it, and every change it makes is also recorded in an
:class:`~processors.model.Effects` for the writer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from processors.fields import original_key
from processors.model import (
    Account,
    Card,
    CreditLine,
    Customer,
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
    sequences: dict[str, Sequence] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, cell: int, rows: Iterable[Row]) -> CellState:
        """Index rows loaded from the cell's database (postings and entries are not kept in memory)."""
        state = cls(cell)
        for row in rows:
            state.put(row)
        return state

    def put(self, row: Row) -> None:
        """Add or replace one row in the indexes."""
        if isinstance(row, Customer):
            self.customers[row.id] = row
        elif isinstance(row, Account):
            self.accounts[row.id] = row
        elif isinstance(row, CreditLine):
            self.credit_lines[row.id] = row
        elif isinstance(row, Card):
            self.cards[row.id] = row
            current = self.cards_by_hash.get(row.pan_hash)
            # A replacement with the same number shares the hash: the newest card (the one that does not
            # point back at the other) answers for the PAN.
            if current is None or current.id == row.id or row.replaces == current.id:
                self.cards_by_hash[row.pan_hash] = row
        elif isinstance(row, Hold):
            if row.status == HoldStatus.OPEN:
                self.holds[row.id] = row
            else:
                self.holds.pop(row.id, None)
        elif isinstance(row, Usage):
            self.usage[(row.card_id, row.day, row.channel)] = row
        elif isinstance(row, Txn):
            self.txns[row.id] = row
            self.txns_by_dup_key[row.dup_key] = row
            key = original_key(row)
            if key is not None:
                # An approved request wins the key over a declined one (a stand-in advice after our decline).
                known = self.txns_by_original.get(key)
                if known is None or known.id == row.id or known.status == TxnStatus.DECLINED:
                    self.txns_by_original[key] = row
        elif isinstance(row, InstallmentPlan):
            self.plans[row.id] = row
        elif isinstance(row, Sequence):
            self.sequences[row.name] = row

    def next_value(self, name: str) -> Sequence:
        """Advance the named counter; the caller records the returned row in its Effects."""
        seq = self.sequences.get(name)
        if seq is None:
            seq = self.sequences[name] = Sequence(name)
        seq.value += 1
        return seq
