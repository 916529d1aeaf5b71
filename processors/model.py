"""The cell's data model: what a debit or credit processor cell knows about its customers.

These are plain mutable dataclasses. A running cell keeps all of them in memory (:class:`CellState`), decides
every authorization against that state without touching the database, and hands the rows it changed to the
storage writer as an :class:`Effects` batch; the answer leaves the cell only once the batch is committed
(group commit, one database transaction per batch). On restart the state is loaded back from the database,
so the database is the truth and memory is a cache that is never ahead of it for anything already answered.

Conventions
-----------
- Money is ``int`` minor units with an ISO 4217 alpha currency code (``"USD"``): :mod:`processors.money`.
- Ledger sign: every :class:`Entry` carries a signed amount and every :class:`Posting`'s entries sum to zero
  per currency. An account's balance is the plain sum of its entries. A debit (deposit) account in credit has
  a positive balance; a credit-card account that owes money has a negative balance.
- Identifiers carry their cell so that any of them finds its cell without a directory lookup:
  customer numbers and account numbers are ``CC`` + 8 digits (``CC`` = the two-digit cell), card numbers are
  BIN + ``CC`` + sequence + Luhn digit (:mod:`processors.cardnumber`).
- No clear PAN anywhere: cards are found by ``pan_hash`` (keyed hash, see :mod:`switch.infra.datakey`); the full PAN
  needed later for clearing files is ``pan_sealed`` (AES-GCM under the data key).
- Times are timezone-aware UTC ``datetime``; business days are ``date``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar


class CardStatus(StrEnum):
    INACTIVE = "inactive"
    ACTIVE = "active"
    LOST = "lost"
    STOLEN = "stolen"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    REPLACED = "replaced"  # superseded by a replacement card with a new number (answers 14 like a closed card)
    CAPTURED = "captured"  # retained by an ATM (0620 administrative advice): 04 pick up until card.unblock


class ProductKind(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class Channel(StrEnum):
    ATM = "atm"
    POS = "pos"
    ECOMMERCE = "ecommerce"
    CROSS_BORDER = "cross_border"  # applies on top of the channel the transaction came through


class TxnType(StrEnum):
    """What the cardholder did, from DE 3 positions 1-2 (ISO 8583:1987 processing code)."""

    PURCHASE = "purchase"  # 00
    WITHDRAWAL = "withdrawal"  # 01 (a cash advance on a credit card)
    REFUND = "refund"  # 20
    DEPOSIT = "deposit"  # 21
    BALANCE = "balance"  # 30
    TRANSFER = "transfer"  # 40
    STATEMENT = "statement"  # 38 mini statement (ATM receipt lines in DE 48)
    PIN_CHANGE = "pin_change"  # 92 (Mastercard), 70 (VISA): the new PIN block in DE 125


class HoldStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"  # turned into a posting by a completion
    RELEASED = "released"  # reversed
    EXPIRED = "expired"


class TxnStatus(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"  # fully reversed
    PARTIALLY_REVERSED = "partially_reversed"
    COMPLETED = "completed"  # a pre-authorization whose completion has posted


class ExceptionKind(StrEnum):
    """Why an advice needs the back office's eye (:class:`ExceptionItem`). An advice reports what already happened at
    the terminal, so it is posted; these say what the cell had to assume, or could not post."""

    COMPLETION_OVER_TOLERANCE = "completion_over_tolerance"  # posted as sent, above authorization + tolerance
    CELL_RATE = "cell_rate"  # a foreign amount without DE 6/DE 51: converted at the cell's own rate ([rates])
    ACCOUNT_NOT_LINKED = "account_not_linked"  # DE 3's account type is not the card's: posted to its default account
    FEE_NOT_TAKEN = "fee_not_taken"  # DE 28 unusable: the account's or product's fee was charged instead
    ADVICE_DECLINED = "advice_declined"  # a format error (unknown card, no amount...): answered as such, not posted


class Row:
    """Base of every persisted entity: ``KEY`` names the primary-key attribute(s)."""

    KEY: ClassVar[tuple[str, ...]] = ("id",)
    # Position of the row type in ROW_TYPES (set below): a decision's rows are recorded in this order, referenced
    # rows first. A class attribute, so sorting by it needs no Python-level key function.
    WRITE_RANK: ClassVar[int] = 0

    def snapshot(self) -> dict[str, Any]:
        """A copy of the row's current values (what the writer stores); taken when the effect is recorded so
        later in-memory changes cannot leak into an earlier batch. Containers (dict, list) are copied one level
        deep, everything else is immutable and shared. Runs ~7 times per authorization, so each class gets a
        generated function (:func:`_snapshot_function`)."""
        return snapshot_function(type(self))(self)


def snapshot_function(row_type: type) -> Callable[[Any], dict[str, Any]]:
    """The (cached) snapshot function of ``row_type`` (see :meth:`Row.snapshot`)."""
    function = _SNAPSHOTS.get(row_type)
    if function is None:
        function = _SNAPSHOTS[row_type] = _snapshot_function(row_type)
    return function


# Field annotations whose values are immutable: a snapshot shares them instead of copying (enum members too).
_IMMUTABLE = frozenset({"str", "int", "bool", "bytes", "float", "datetime", "date", "None"})
_SNAPSHOTS: dict[type, Callable[[Any], dict[str, Any]]] = {}


def _copied(value: Any) -> Any:
    """A container field's value as a snapshot holds it: a copy (one level deep) of a dict or list."""
    if type(value) is dict:
        return dict(value)
    if type(value) is list:
        return list(value)
    return value


def _snapshot_function(row_type: type) -> Callable[[Any], dict[str, Any]]:
    """``lambda row: {"id": row.id, ...}`` for ``row_type``, built once: one dict display instead of a loop of
    getattr calls and type tests per field (3x faster on a Txn, issue #5). Fields in ``SNAPSHOT_SKIP`` are left
    out; a field whose annotation is not known to be immutable goes through :func:`_copied`."""
    skip = getattr(row_type, "SNAPSHOT_SKIP", ())
    enums = {name for name, value in globals().items() if isinstance(value, type) and issubclass(value, StrEnum)}
    items = []
    for f in dataclasses.fields(row_type):
        if f.name in skip:
            continue
        parts = {part.strip() for part in str(f.type).split("|")}
        shared = parts <= _IMMUTABLE | enums
        items.append(f"{f.name!r}: row.{f.name}" if shared else f"{f.name!r}: _copied(row.{f.name})")
    namespace: dict[str, Any] = {"_copied": _copied}
    # The source is built from the dataclass's own field names only, never from data.
    exec(f"def snapshot(row):\n    return {{{', '.join(items)}}}\n", namespace)
    function: Callable[[Any], dict[str, Any]] = namespace["snapshot"]
    return function


@dataclass(slots=True)
class Customer(Row):
    id: str  # customer number: CC + 8 digits
    cell: int
    name: str
    external_ref: str  # the bank's customer reference (CIF); the stable input of the cell assignment rule
    status: str = "active"  # active | closed
    created_at: datetime | None = None


@dataclass(slots=True)
class Account(Row):
    """A deposit account (debit) or a card account under a credit line (credit)."""

    id: str  # account number: CC + 8 digits
    customer_id: str
    kind: str  # "checking" | "savings" | "credit"
    currency: str  # ISO 4217 alpha
    product: str  # product code (conf products.toml)
    ledger_balance: int = 0  # sum of this account's ledger entries
    held: int = 0  # sum of open holds on this account (available = ledger_balance - held, debit)
    status: str = "active"  # active | frozen | closed
    credit_line_id: str | None = None  # credit accounts: the customer-level line they share
    pricing: dict[str, Any] = field(default_factory=dict)  # account-level pricing overrides (processors.pricing)
    opened_at: datetime | None = None

    @property
    def available(self) -> int:
        return self.ledger_balance - self.held


@dataclass(slots=True)
class CreditLine(Row):
    """The customer-level limit shared by all the customer's credit cards (the "unified quota")."""

    id: str  # CC + 8 digits
    customer_id: str
    currency: str
    limit: int  # total credit limit, minor units
    cash_limit: int  # cash-advance sub-limit
    # Posted amount owed across the line's accounts, installments' unbilled part included: exactly
    # -(sum of the line's card account balances + its INST:<plan> sub-ledgers), the rule the ledger check
    # verifies. Signed: negative when refunds or payments left the line in credit (processors.credit).
    owed: int = 0
    cash_owed: int = 0  # the part of ``owed`` that came from cash advances
    held: int = 0  # open authorization holds across the line
    cash_held: int = 0
    status: str = "active"

    @property
    def open_to_buy(self) -> int:
        """What may still be spent: a credit balance (negative ``owed``) is not extra spending power."""
        return self.limit - max(self.owed, 0) - self.held

    @property
    def cash_open_to_buy(self) -> int:
        return min(self.open_to_buy, self.cash_limit - self.cash_owed - self.cash_held)


@dataclass(slots=True)
class Card(Row):
    id: str  # surrogate card id ("K" + CC + 8 digits); never the PAN
    pan_hash: str
    last4: str
    bin: str
    pan_sealed: bytes  # AES-GCM under the data key; opened only for clearing files
    customer_id: str
    product: str
    account_id: str  # default account (the one DE 3 account type "00" means)
    accounts: dict[str, str] = field(default_factory=dict)  # DE 3 account type ("10","20","30") -> account id
    status: CardStatus = CardStatus.INACTIVE
    status_reason: str = ""
    expiry: str = ""  # YYMM
    psn: str = "00"  # PAN sequence number (EMV 5F34)
    service_code: str = "201"
    pvki: int = 1
    pvv: str = ""  # PIN verification value from the HSM (FW); empty: no PIN set
    pin_tries: int = 0  # consecutive wrong PINs
    limits: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> overrides (see Limits)
    replaces: str | None = None  # card id this card replaced
    issued_at: datetime | None = None
    last_atc: int = 0  # highest EMV application transaction counter (9F36) seen in a verified ARQC
    status_before_block: str = ""  # the status card.unblock restores (a blocked card that was never activated)
    # The PIN change (its Txn id) that set ``pvv``; "" when a command set it (issuance, card.set_pin). A reversal
    # of that PIN change restores the PVV before it only while this still names it (processors.engine.pinchange).
    pin_set_by: str = ""


@dataclass(slots=True)
class Hold(Row):
    id: str
    card_id: str
    account_id: str
    credit_line_id: str | None
    txn_id: str
    amount: int
    currency: str
    cash: bool  # counts against the cash-advance sub-limit
    created_at: datetime
    expires_at: datetime
    status: HoldStatus = HoldStatus.OPEN


@dataclass(slots=True)
class Usage(Row):
    """Limit usage of one card on one business day through one channel (approved, not reversed)."""

    KEY: ClassVar[tuple[str, ...]] = ("card_id", "day", "channel")
    card_id: str
    day: date
    channel: str
    amount: int = 0
    count: int = 0


@dataclass(slots=True)
class Txn(Row):
    """One authorization-log row per request the cell decided (approved or declined)."""

    id: str
    dup_key: str  # MTI class + DE 11 + 7 + 41 + 32: a repeat of a request already decided answers 94
    mti: str
    processing_code: str
    txn_type: str
    channel: str
    card_id: str | None
    account_id: str | None
    amount: int  # in the account's currency
    currency: str
    fee: int
    response_code: str
    approval_code: str
    stan: str
    rrn: str
    terminal: str
    acquirer: str
    created_at: datetime
    status: TxnStatus
    decline_reason: str = ""
    original_id: str | None = None  # reversals, completions: the transaction they act on
    hold_id: str | None = None
    posting_id: str | None = None
    reversed_amount: int = 0  # in the account's currency, like ``amount``
    to_account_id: str | None = None  # transfers: the destination account (a reversal takes back exactly it)
    # DE 4 / DE 49 as received (transaction amount and currency). ``amount`` is in the account's currency
    # (DE 6 when DE 51 is the account's); a partial reversal's DE 95 is in this currency and is scaled.
    request_amount: int | None = None
    request_currency: str = ""
    # A payment into a credit line (a card deposit, a transfer in; processors.booking.payee_of): the cash advances
    # it repaid and no reversal has taken back yet; a reversal owes that much cash again (processors.credit).
    cash_part: int = 0


@dataclass(slots=True)
class Entry(Row):
    id: str
    posting_id: str
    account: str  # a customer account id, or a GL account name such as "GL:SETTLEMENT"
    amount: int  # signed, see module docstring
    currency: str


@dataclass(slots=True)
class Posting(Row):
    """A balanced double-entry event. ``entries`` are persisted as their own rows."""

    id: str
    txn_id: str | None
    created_at: datetime
    description: str
    entries: list[Entry] = field(default_factory=list)

    SNAPSHOT_SKIP: ClassVar[tuple[str, ...]] = ("entries",)  # stored as Entry rows of their own (Effects.add)


@dataclass(slots=True)
class InstallmentPlan(Row):
    id: str
    credit_line_id: str
    account_id: str
    source_txn_id: str
    currency: str
    principal: int
    count: int
    fee: int  # total fee of the plan, billed with the installments
    rate_bp: int  # fee rate applied (basis points), recorded for statements
    billed: int = 0  # installments billed so far
    created_at: datetime | None = None
    status: str = "active"  # active | completed | cancelled


@dataclass(slots=True)
class EarlyReversal(Row):
    """A reversal (0400/0420 or a repeat) that reached the cell before the request it reverses (issue 11).

    The cell answers it 25 (nothing on file to reverse) and remembers it, committed with that answer, until
    ``expires_at`` (the bank's ``reversal_retention_days``). A full reversal makes the original (0100/0200)
    declined when it arrives, and its advice (0120/0220) applied and reversed at once, so nothing stays posted or
    held in any order of arrival. A partial one (DE 95) is applied to whichever of them is approved first
    (:mod:`processors.early`). No PAN: the card is matched by ``pan_hash``."""

    id: str  # the reversal's dup key (processors.fields.dup_key), so its repeats find it
    original_key: str  # match_key of the original it names (DE 90, else its own DE 11/7/32, financial class)
    alternate_key: str  # without DE 90: the same key in the authorization class; "" with DE 90
    pan_hash: str  # keyed hash of DE 2; "" when the reversal carried no PAN
    mti: str
    stan: str  # DE 11, 7, 41, 32, 37 of the reversal: what its Txn records once it is applied
    transmitted: str
    terminal: str
    acquirer: str
    rrn: str
    replacement: int | None  # DE 95 actual amount (transaction currency); None: a full reversal
    received_at: datetime
    expires_at: datetime
    applied_to: str | None = None  # the Txn (approved original or advice) it was applied to


@dataclass(slots=True)
class ExceptionItem(Row):
    """An advice the cell posted on an assumption, or could not post: one row per advice transaction and reason,
    for the back office to check (``bulkhead exceptions list``) and close (``bulkhead exceptions resolve``).

    An advice (0120/0220) records something that already happened at the terminal, so the cell acknowledges and
    posts it (processors.engine); where a rule would have refused a request, the advice is posted anyway and the
    rule's objection is kept here. Amounts are in the account's currency (minor units). No card data: the card
    is its id, the message its MTI, STAN and RRN."""

    id: str  # "E" + cell + "-" + sequence
    kind: ExceptionKind
    txn_id: str  # the advice's Txn (posted, or declined for ADVICE_DECLINED)
    card_id: str | None
    account_id: str | None
    mti: str
    stan: str
    rrn: str
    amount: int  # what was posted or held (0 when nothing was)
    currency: str
    detail: str  # what was assumed and why, in words (amounts in major units)
    created_at: datetime
    status: str = "open"  # open | resolved
    resolved_at: datetime | None = None
    resolution: str = ""  # the operator's note when resolving it


CARD_EVENT_SEQUENCE = "card_event"  # the Sequence numbering card events: A01-1, A01-2, ...


class CardEventKind(StrEnum):
    """What happened to a card outside the ledger (:class:`CardEvent`)."""

    PIN_CHANGED = "pin_changed"  # a PIN change at an ATM (0200, DE 3 92/70)
    PIN_CHANGE_REVERSED = "pin_change_reversed"  # its reversal: the PVV before it restored (or not: see detail)
    CAPTURED = "captured"  # retained by an ATM (0620, DE 60 CAPTURED)
    RELEASED = "released"  # a captured card unblocked by an operator (card.unblock)


@dataclass(slots=True)
class CardEvent(Row):
    """The audit trail of a card's PIN and status changes made by messages (and a captured card's release): one row
    per event, no money and no ledger. No card data: the card is its id; no PIN block is kept. ``previous_pvv`` is
    the PIN verification value a PIN change replaced (PIN verification data like ``Card.pvv``, which the cell keeps
    anyway), so that the change's reversal can put it back; it is loaded, like the transactions, for
    ``txn_retention_days``."""

    id: str  # "A" + cell + "-" + sequence
    key: str  # the duplicate key (processors.fields.dup_key) of the message that made it: its repeats find it
    card_id: str
    kind: CardEventKind
    created_at: datetime
    terminal: str = ""  # DE 41
    txn_id: str | None = None  # the PIN change's transaction (or its reversal's)
    detail: str = ""
    previous_pvv: str = ""


@dataclass(slots=True)
class StatementLine:
    """One line of a mini statement: a posting's effect on one customer account (:mod:`processors.engine.statement`).
    Not a row of its own: made from the postings as they are applied, and loaded from them at a cell's start."""

    posted_at: datetime
    description: str  # the posting's description
    amount: int  # signed (the entry's sign: negative takes money from the cardholder)
    currency: str


@dataclass(slots=True)
class Sequence(Row):
    """Counters for identifiers (customer/account/card sequence numbers per cell, per BIN)."""

    KEY: ClassVar[tuple[str, ...]] = ("name",)
    name: str
    value: int = 0


# Every persisted row type, in an order that respects references (for loading and for the writer).
ROW_TYPES: tuple[type[Row], ...] = (
    Sequence, Customer, CreditLine, Account, Card, Hold, Usage, Txn, Posting, Entry, InstallmentPlan, EarlyReversal,
    ExceptionItem, CardEvent,
)
for _rank, _row_type in enumerate(ROW_TYPES):
    _row_type.WRITE_RANK = _rank


@dataclass
class Effects:
    """Rows changed by one decision or command, as snapshots, in the order they changed.

    The writer upserts each snapshot by its type's KEY (a later snapshot of the same row in one batch wins),
    except :class:`Posting`, whose snapshot carries its entries, written as :class:`Entry` rows.
    """

    rows: list[tuple[type[Row], dict[str, Any]]] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        append = self.rows.append
        snapshots = _SNAPSHOTS
        for row in rows:
            row_type = type(row)
            function = snapshots.get(row_type) or snapshot_function(row_type)
            append((row_type, function(row)))
            if isinstance(row, Posting):
                entry_snapshot = snapshot_function(Entry)
                for entry in row.entries:
                    append((Entry, entry_snapshot(entry)))

    def extend(self, other: Effects) -> None:
        self.rows.extend(other.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)
