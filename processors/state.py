"""A cell's working state in memory, with the indexes the authorization path needs.

Built once from the database rows (:meth:`CellState.from_rows`, fed by :func:`processors.storage.load_rows`);
afterwards only the cell's engine changes it, and every change it makes is also recorded in an
:class:`~processors.model.Effects` for the writer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from processors.fields import original_key
from processors.model import (
    Account,
    Card,
    CardEvent,
    CreditLine,
    Customer,
    EarlyReversal,
    ExceptionItem,
    Hold,
    HoldStatus,
    InstallmentPlan,
    Posting,
    Row,
    Sequence,
    StatementLine,
    Txn,
    TxnStatus,
    Usage,
)

# Mini statement lines kept per customer account (processors.engine.statement): the ATM receipt holds 10.
STATEMENT_LINES: Final = 10


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
    # Audit events of cards (processors.model.CardEvent) of the retention window: by id, by the duplicate key of
    # the message that made them (a repeated 0620 finds its capture), by transaction (a PIN change's reversal)
    card_events: dict[str, CardEvent] = field(default_factory=dict)
    card_events_by_key: dict[str, CardEvent] = field(default_factory=dict)
    card_events_by_txn: dict[str, CardEvent] = field(default_factory=dict)
    # Each customer account's newest postings, oldest first, at most STATEMENT_LINES (mini statements): fed by
    # note_posting as postings are applied, loaded from the ledger at start (processors.storage.load_state)
    statements: dict[str, deque[StatementLine]] = field(default_factory=dict)

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

    def _put_card_event(self, row: CardEvent) -> None:
        self.card_events[row.id] = row
        if row.key:
            self.card_events_by_key[row.key] = row
        if row.txn_id:
            self.card_events_by_txn[row.txn_id] = row

    def forget_card_event(self, row: CardEvent) -> None:
        """Drop an audit event from the indexes (memory only: its row stays)."""
        self.card_events.pop(row.id, None)
        if self.card_events_by_key.get(row.key) is row:
            del self.card_events_by_key[row.key]
        if row.txn_id and self.card_events_by_txn.get(row.txn_id) is row:
            del self.card_events_by_txn[row.txn_id]

    def note_posting(self, posting: Posting) -> None:
        """Keep ``posting``'s lines for the mini statements of the customer accounts it moved (its entries on one
        account summed: one line per posting and account). Call once per posting applied."""
        # On every posting of the decision path: about 1 us of the ~60 us a cell spends on an 0200.
        accounts = self.accounts
        sums: dict[str, int] = {}
        for entry in posting.entries:
            account = entry.account
            if account in accounts:  # customer accounts only: not GL:, not INST: sub-ledgers
                sums[account] = sums.get(account, 0) + entry.amount
        if not sums:
            return
        currency, when, description = posting.entries[0].currency, posting.created_at, posting.description
        for account_id, amount in sums.items():
            if amount:
                self.add_statement_line(account_id, StatementLine(when, description, amount, currency))

    def add_statement_line(self, account_id: str, line: StatementLine) -> None:
        lines = self.statements.get(account_id)
        if lines is None:
            lines = self.statements[account_id] = deque(maxlen=STATEMENT_LINES)
        lines.append(line)

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
    CardEvent: CellState._put_card_event,
}
