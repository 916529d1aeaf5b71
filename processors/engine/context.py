"""What every step of a decision works with: its answer (:class:`Decision`), the per-request context (:class:`Ctx`),
the HSM results (:class:`Checks`), the control flow of a failed check (:class:`Declined`), and the engine's parts
the steps read (:class:`Parts`, which :class:`~processors.engine.CellEngine` is).

The steps (:mod:`~processors.engine.steps`, :mod:`~processors.engine.rules`, :mod:`~processors.engine.checks`,
:mod:`~processors.engine.approval`, :mod:`~processors.engine.reversals`, :mod:`~processors.engine.advices`) are
functions of ``(eng, ctx, ...)``: per-request state lives in the context, never on the engine (STYLE 8).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hsm.api import Hsm
from processors import early, security
from processors.booking import Changes, HoldExpiry
from processors.catalog import Catalog, Product
from processors.model import (
    CARD_EVENT_SEQUENCE,
    Account,
    Card,
    EarlyReversal,
    Effects,
    ExceptionKind,
    ProductKind,
    TxnType,
)
from processors.state import CellState
from switch.model.codes import ResponseCode
from switch.model.message import Message

RC = ResponseCode
APPROVED = RC.APPROVED.value  # DE 39 of an approval, as make_response takes it without an enum lookup
# One counter numbers a decision's txn, hold and posting: T01-7, H01-7, P01-T7 (commands number their own
# postings P01-<n> from the "posting" sequence, so the engine's carry the T).
TXN_SEQUENCE = "txn"
EXCEPTION_SEQUENCE = "exception"  # numbers the exception items E01-1, E01-2, ...
EVENT_SEQUENCE = CARD_EVENT_SEQUENCE  # numbers the cards' audit events A01-1, A01-2, ...

# Transaction types each product kind supports when the product does not list ``allowed``.
KIND_TYPES: dict[ProductKind, frozenset[str]] = {
    ProductKind.DEBIT: frozenset(TxnType),
    ProductKind.CREDIT: frozenset({TxnType.PURCHASE, TxnType.WITHDRAWAL, TxnType.REFUND, TxnType.DEPOSIT,
                                   TxnType.BALANCE, TxnType.STATEMENT, TxnType.PIN_CHANGE}),
}
# DE 3 / DE 54 account type (ISO 8583:1987: 10 savings, 20 checking, 30 credit) of each account kind.
ACCOUNT_TYPES = {"savings": "10", "checking": "20", "credit": "30"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def text(request: Message, number: int) -> str:
    """A text field of ``request``; "" when absent (or binary)."""
    value = request.fields.get(number)
    return value if isinstance(value, str) else ""


class Parts:
    """The engine's collaborators and settings, as the decision steps read them. Attributes, not copies: a caller
    may swap ``catalog`` or ``hsm`` on a running engine (the tests do) and every step sees the new one."""

    def __init__(
        self, state: CellState, catalog: Catalog, *, hsm: Hsm | None, pan_hash: Callable[[str], str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.state = state
        self.catalog = catalog
        self.hsm = hsm
        self.pan_hash = pan_hash
        self.clock = clock
        self.bank = catalog.bank
        self.hold_period = timedelta(days=catalog.bank.hold_days)
        self.expiry = HoldExpiry(state.holds)
        self.prefix = f"{state.cell:02d}-"  # of the ids the engine makes: T01-7, H01-7, P01-T7, E01-2
        self.early_caps = early.Caps.of(catalog.bank, state.cell)


@dataclass
class Decision:
    """The answer to send (None: nothing to answer) and the rows to commit before sending it.

    ``finish``, when set, completes the response after the decision (the ARPC in DE 55, from the HSM). The host
    submits ``effects`` first, right after :meth:`CellEngine.handle` returns, then awaits ``finish()``, and
    sends the response once both that and the commit are done. ``finish`` never reads or changes state."""

    response: Message | None
    effects: Effects
    finish: Callable[[], Awaitable[None]] | None = None
    note: str = ""  # something the operator should know (the host logs it); never card data


@dataclass(slots=True)
class Checks:
    """HSM results for one request; None where nothing was checked."""

    pin: bool | None = None
    cvv: bool | None = None
    arqc: bool | None = None
    arqc_request: security.ArqcRequest | None = None
    unavailable: str = ""  # why the HSM could not answer (the request gets 96)
    # A PIN change (processors.engine.pinchange) whose current PIN verified: the PVV of the new PIN (DE 125), or
    # ``new_pin_unreadable`` when the HSM found no PIN in that block
    new_pvv: str | None = None
    new_pin_unreadable: bool = False


class Declined(Exception):
    """A check failed: the decision is this response code (control flow inside a decision only)."""

    def __init__(self, code: ResponseCode, reason: str) -> None:
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Ctx:
    """Per-request context of a decision (never kept on the engine)."""

    request: Message
    now: datetime
    key: str
    changes: Changes
    pc: str = ""
    txn_type: TxnType | None = None
    channel: str = ""
    cross_border: bool = False
    foreign: bool = False
    card: Card | None = None
    product: Product | None = None
    account: Account | None = None
    to_account: Account | None = None
    amount: int = 0
    fee: int = 0
    fee_override: int | None = None  # DE 28 of the request: the transaction-level fee (processors.fees)
    note: str = ""  # what the decision noted for the operator (Decision.note)
    acquirer: str = ""  # DE 32
    # DE 4 / DE 49 as received, once rules.resolve_amount has parsed them (the Txn records them; None: not yet)
    request_amount: int | None = None
    request_currency: str | None = None
    # Remembered reversals (processors.early) to apply to this request's transaction if it is approved
    early: list[EarlyReversal] | None = None
    # What an advice was posted despite (processors.model.ExceptionItem), recorded with its Txn
    flags: list[tuple[ExceptionKind, str]] | None = None

    def flag(self, kind: ExceptionKind, detail: str) -> None:
        """Note an exception of this advice for the back office (and the host's log)."""
        if self.flags is None:
            self.flags = []
        self.flags.append((kind, detail))
        self.note = f"{self.note}; {detail}" if self.note else detail
