"""The per-transaction context (jPOS TransactionManager's Context): everything one exchange carries through the
pipeline. State lives here, never on the pipeline or the node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from switch.contracts.network import Network
from switch.exchange.identity import Lookup
from switch.exchange.lifecycle import DELIVERED, REVERSAL_QUEUED, SEND, IllegalTransition, Lifecycle, Outcome
from switch.exchange.ports import Source, TerminalGate, Upstream
from switch.model.message import FieldValue, Message
from switch.routing import RouteDecision, RoutingTable
from switch.wire.framing import Frame


@dataclass(slots=True, eq=False)
class Exchange(Lifecycle):
    """One exchange: its request, where it came from and went, its response, and its lifecycle (an exchange *is*
    a :class:`Lifecycle`: its phase and events are slots of its own, so a step is one call, not two, and no second
    object is built per request). Compared by identity."""

    request: Message
    source: str  # the link it came in on
    network: Network  # the source link's network: it answers in that dialect
    conn: Source
    frame: Frame  # the request's frame: the answer's framing header is built from it
    table: RoutingTable  # the table the exchange started on (a reload does not change it mid-way)
    received_at: datetime
    t0: float  # perf_counter at arrival
    decision: RouteDecision | None = None
    link: Upstream | None = None
    upstream_us: int | None = None
    t1: float = 0.0  # perf_counter when the request went upstream
    response: Message | None = None
    body: bytes = field(default=b"", repr=False)  # the response as the source's network encodes it (card data)
    outcome: Outcome = Outcome.ERROR
    notes: list[str] = field(default_factory=list)
    owed_reversal: Message | None = None  # a reversal decided on and not queued yet (after an internal error)
    inflight_key: str | None = None  # its original's key while upstream and unsettled (switch.exchange.inflight)
    # The source's values of the fields rewritten into the link's identity (switch.exchange.identity; None: not
    # rewritten), and the journal lookups the rewrite waits for.
    source_ids: dict[int, FieldValue | None] | None = None
    identity_lookups: list[Lookup] | None = None
    gate: TerminalGate | None = None  # the ATMP, for a request from one of the bank's terminals (atmp = true)
    terminal_fields: dict[int, FieldValue] | None = None  # what the gate took off before routing (put back after)
    _pan_hash: str | None = None

    @property
    def trace_id(self) -> str:
        return self.request.meta.trace_id

    def decide(self, event: int, response: Message, outcome: Outcome) -> None:
        """The response is decided (``event`` says how): the one place a response and its outcome are set."""
        # Lifecycle.advance, inlined: every exchange decides once, and a call is a fifth of a microsecond here.
        lifecycle: Lifecycle = self  # its slots (mypy looks for them in the dataclass's own)
        step = lifecycle._row[event]
        if step is None:
            raise IllegalTransition(lifecycle._illegal(event))
        lifecycle.phase, lifecycle._row, bit = step
        lifecycle._events |= bit
        self.response, self.outcome = response, outcome

    @property
    def sent_upstream(self) -> bool:
        return self.went_through(SEND)

    @property
    def delivered(self) -> bool:
        return self.phase is DELIVERED

    @property
    def reversal_queued(self) -> bool:
        return self.went_through(REVERSAL_QUEUED)

    def pan_hash(self, hasher: Callable[[str], str]) -> str | None:
        """The request PAN's keyed hash, computed once per exchange (the journal and the stand-in card status
        cache both need it)."""
        if self._pan_hash is None and self.request.pan:
            self._pan_hash = hasher(self.request.pan)
        return self._pan_hash
