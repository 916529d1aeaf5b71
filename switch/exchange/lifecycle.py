"""The lifecycle of an exchange as one table (h11's ``_state.py`` style): every (phase, event) pair not listed is
illegal and raises :class:`IllegalTransition`, so a step that runs twice or out of order is a loud bug, never a
second answer or a lost reversal.

::

    RECEIVED --route--> ROUTED --send--> SENT --answered / rejected--> DECIDED
       |                  |                 \\--no_answer--> FALLBACK --resolved--> DECIDED
       |                  |--link_down / hold---------------^
       |--decide----------+--decide------------------------------------------------> DECIDED
    DECIDED --journal--> JOURNALING --deliver--> DELIVERED
                              |--source_gone--> UNDELIVERED
                              |--journal_failed--> UNJOURNALED --deliver / source_gone--> DELIVERED / UNDELIVERED
    DECIDED --redecide--> DECIDED  (an answer the source's format cannot carry becomes a 96)
    any phase before the end --abandon--> ABANDONED  (the node stops hard, or nothing can be answered)

Compensations are events too, legal only where they can happen: ``reversal_queued`` (after no answer, or when an
approval cannot reach its acquirer) and ``queued`` (a stand-in advice, or a held advice or reversal). They
leave the phase as it is and are remembered (a reversal at most once: :data:`ONCE`): what happened to an
exchange is its phase plus the set of events it went through (:meth:`Lifecycle.went_through`), not loose
booleans.

DELIVERED, UNDELIVERED and ABANDONED end the lifecycle (an undelivered or abandoned exchange may still have its
reversal queued). :meth:`Lifecycle.close` then counts the exchange as over, once: a second close raises.
"""

from __future__ import annotations

import enum

from switch.model.errors import BulkheadError


# Integer enums: the table is indexed by them on every step of every exchange (a plain Enum hashes in Python:
# six transitions cost 7 us; a list lookup by int a fraction of that). The members are also module names below.
class Phase(enum.IntEnum):
    RECEIVED = 0
    ROUTED = 1  # a destination and a link are chosen (the link may be down)
    SENT = 2  # written upstream; its answer, rejection or deadline comes back to the exchange
    FALLBACK = 3  # no usable answer: held, stood in for, or answered 91 (and reversed)
    DECIDED = 4  # the response is decided
    JOURNALING = 5  # its journal row is submitted; the response leaves once it has committed
    UNJOURNALED = 6  # the journal failed: a 96 goes out without a row (what it approved is reversed)
    DELIVERED = 7
    UNDELIVERED = 8  # the source was gone (what it approved is reversed)
    ABANDONED = 9

    @property
    def label(self) -> str:
        return self.name.lower()


class Event(enum.IntEnum):
    ROUTE = 0
    DECIDE = 1  # answered by the switch itself: format error, network management, no route, PIN failure
    SEND = 2
    ANSWERED = 3
    REJECTED = 4
    NO_ANSWER = 5  # no answer in time, or the connection was lost after sending
    LINK_DOWN = 6  # nothing was sent: no usable link
    RESOLVED = 7  # the fallback resolved the response
    REDECIDE = 8
    JOURNAL = 9
    JOURNAL_FAILED = 10
    DELIVER = 11
    SOURCE_GONE = 12
    REVERSAL_QUEUED = 13
    QUEUED = 14  # a held advice or reversal, or a stand-in advice, is in the store-and-forward queue
    ABANDON = 15
    HOLD = 16  # an advice or reversal that must queue behind an earlier one for the same original (not sent)

    @property
    def label(self) -> str:
        return self.name.lower()


class Outcome(enum.StrEnum):
    """What became of an exchange, as the journal and the metrics record it."""

    APPROVED = "approved"
    DECLINED = "declined"
    FORMAT_ERROR = "format_error"
    NO_ROUTE = "no_route"
    NETWORK = "network"  # network management answered by the switch
    UNAVAILABLE = "unavailable"  # no usable link (or the node is stopping): 91
    TIMEOUT = "timeout"  # sent, unanswered: 91, and a reversal where money may have moved
    STORED = "stored"  # an advice or reversal held for its destination (accepted: 00)
    STAND_IN = "stand_in"  # approved by the switch on the issuer's behalf
    REJECTED = "rejected"  # the destination's network refused the request unprocessed
    ERROR = "error"
    SHED = "shed"  # answered 91 at once by a listener's admission control, without an exchange (not journaled)


class IllegalTransition(BulkheadError):
    """A step ran in a phase where it cannot happen: a bug (whoever catches it logs the exchange's trace id)."""


P, E = Phase, Event
_BEFORE_END = (P.RECEIVED, P.ROUTED, P.SENT, P.FALLBACK, P.DECIDED, P.JOURNALING, P.UNJOURNALED)

TRANSITIONS: dict[Phase, dict[Event, Phase]] = {
    P.RECEIVED: {E.ROUTE: P.ROUTED, E.DECIDE: P.DECIDED},
    P.ROUTED: {E.SEND: P.SENT, E.LINK_DOWN: P.FALLBACK, E.HOLD: P.FALLBACK, E.DECIDE: P.DECIDED},
    P.SENT: {E.ANSWERED: P.DECIDED, E.REJECTED: P.DECIDED, E.NO_ANSWER: P.FALLBACK},
    P.FALLBACK: {E.RESOLVED: P.DECIDED, E.REVERSAL_QUEUED: P.FALLBACK, E.QUEUED: P.FALLBACK},
    P.DECIDED: {E.JOURNAL: P.JOURNALING, E.REDECIDE: P.DECIDED, E.REVERSAL_QUEUED: P.DECIDED},
    P.JOURNALING: {E.DELIVER: P.DELIVERED, E.SOURCE_GONE: P.UNDELIVERED, E.JOURNAL_FAILED: P.UNJOURNALED},
    P.UNJOURNALED: {E.DELIVER: P.DELIVERED, E.SOURCE_GONE: P.UNDELIVERED, E.REVERSAL_QUEUED: P.UNJOURNALED},
    P.UNDELIVERED: {E.REVERSAL_QUEUED: P.UNDELIVERED},
    P.DELIVERED: {},
    P.ABANDONED: {E.REVERSAL_QUEUED: P.ABANDONED},
}
for _phase in _BEFORE_END:
    TRANSITIONS[_phase][E.ABANDON] = P.ABANDONED

FINAL = frozenset({P.DELIVERED, P.UNDELIVERED, P.ABANDONED})
# Events that may happen once in an exchange's life: a second reversal of one approval would double the money.
ONCE = frozenset({E.REVERSAL_QUEUED})

# The members as module names, for the exchange's hot path: an attribute of an Enum class costs about 0.25 us on
# CPython 3.11 (an exchange names a dozen), a module global a fifth of that. The events are plain ints: indexing a
# list by an IntEnum member costs three times indexing it by an int.
RECEIVED, ROUTED, SENT, FALLBACK, DECIDED, JOURNALING, UNJOURNALED, DELIVERED, UNDELIVERED, ABANDONED = Phase
(ROUTE, DECIDE, SEND, ANSWERED, REJECTED, NO_ANSWER, LINK_DOWN, RESOLVED, REDECIDE, JOURNAL, JOURNAL_FAILED, DELIVER,
 SOURCE_GONE, REVERSAL_QUEUED, QUEUED, ABANDON, HOLD) = (int(event) for event in Event)

# The table as rows indexed by event: (the next phase, its row, the event's bit), or None where the event is
# illegal. An exchange keeps its current row, so a step is one list index (the six steps of an exchange: about a
# microsecond). A phase has one row per set of ONCE events already gone through, without those events: the table
# itself refuses a second reversal, and a closed exchange's row refuses everything, with no check per step.
_Row = list["tuple[Phase, _Row, int] | None"]
_DEAD: _Row = [None] * len(Event)


def _rows() -> _Row:
    rows: dict[tuple[Phase, frozenset[Event]], _Row] = {}

    def row(phase: Phase, done: frozenset[Event]) -> _Row:
        found = rows.get((phase, done))
        if found is None:
            found = rows[phase, done] = [None] * len(Event)
            for event, new in TRANSITIONS[phase].items():
                if event not in done:
                    found[event] = (new, row(new, done | (ONCE & {event})), 1 << event)
        return found

    return row(P.RECEIVED, frozenset())


_START = _rows()


class Lifecycle:
    """An exchange's phase and the events it went through. :meth:`advance` is the only way to change either."""

    __slots__ = ("_events", "_row", "closed", "phase")

    def __init__(self) -> None:
        self.__post_init__()

    def __post_init__(self) -> None:
        """Start in RECEIVED. Named so a dataclass that is a Lifecycle (the exchange) runs it from its own
        ``__init__``."""
        self.phase = RECEIVED
        self._row = _START
        self._events = 0  # a bit per Event that happened (cheaper than a set per exchange on the hot path)
        self.closed = False

    def advance(self, event: int) -> None:
        """Go on to the phase after ``event``; :class:`IllegalTransition` (and nothing changes) when the table has
        no such step, when the exchange is closed, or when an event that happens once happened already."""
        step = self._row[event]
        if step is None:
            raise IllegalTransition(self._illegal(event))
        self.phase, self._row, bit = step
        self._events |= bit

    def _illegal(self, event: int) -> str:
        why = " (closed)" if self.closed else " (again)" if self.went_through(event) and event in ONCE else ""
        return f"{Event(event).label} in phase {self.phase.label}{why}"

    def went_through(self, event: int) -> bool:
        return bool(self._events & (1 << event))

    def close(self) -> None:
        """The exchange is over (counted, its place freed): once, and only from a phase that ends it."""
        if self.closed or self.phase not in FINAL:
            raise IllegalTransition(f"closed in phase {self.phase.label}" + (" twice" if self.closed else ""))
        self.closed = True
        self._row = _DEAD
