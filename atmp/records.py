"""What the ATMP's storage gives back (:mod:`atmp.storage`): plain values, no database code, so the engine's
sans-I/O steps can hold them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from atmp.cash import Movement, Replenishment
from atmp.dispense import Action, DispenseOutcome
from atmp.model import Cassette, TerminalStatus
from atmp.totals import Comparison


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """A withdrawal's dispense outcome as recorded. ``corrections`` counts replacements (a reversal after the
    confirmation, a word after the host's assumption), ``ignored`` the late or conflicting words after it."""

    terminal_id: str
    original_key: str
    currency: str
    business_date: date
    recorded_at: datetime
    updated_at: datetime
    outcome: DispenseOutcome
    corrections: int = 0
    ignored: int = 0


@dataclass(frozen=True, slots=True)
class Recorded:
    """The result of :meth:`atmp.storage.AtmStore.record_outcome`: what was done (``action``: new, duplicate,
    replaced, ignored) and why, the outcome that stands, the one it replaced, how the cassettes moved, and the
    cash afterwards: which cassettes are low now and which became low with this withdrawal (alert on those)."""

    action: Action
    why: str
    stored: StoredOutcome
    previous: DispenseOutcome | None
    delta: Movement
    cassettes: tuple[Cassette, ...]
    low_cash: tuple[int, ...]
    became_low: tuple[int, ...]
    newly_captured: bool = False
    mix_found: bool = True  # False: no DE 63 and no mix could make the amount; no notes were counted
    notes_mismatch: int = 0  # value of the notes counted minus the amount dispensed (0: they agree)


@dataclass(frozen=True, slots=True)
class StatusChange:
    terminal_id: str
    before: TerminalStatus
    after: TerminalStatus


@dataclass(frozen=True, slots=True)
class Event:
    """A row of the audit trail (``atm_events``): status changes, key loads and exchanges, captures, faults,
    replenishments, totals, corrections of dispense outcomes. ``actor`` is the OS user of a command, or "node"."""

    id: int
    terminal_id: str
    at: datetime
    kind: str
    detail: str
    actor: str


@dataclass(frozen=True, slots=True)
class ReplenishmentRecord:
    id: int
    terminal_id: str
    at: datetime
    actor: str
    replenishment: Replenishment


@dataclass(frozen=True, slots=True)
class TotalsRecord:
    """A business day's totals of a terminal: its own (reported in a 0500 or entered by an operator: ``source``)
    beside the host's at the time they were recorded."""

    comparison: Comparison
    source: str  # "terminal" | "operator"
    recorded_at: datetime
    reports: int  # how many times the terminal's side was given for this day (the latest stands)
