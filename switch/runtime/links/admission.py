"""Admission control for a listener: a bounded backlog between the connections' readers and the exchanges, so that
overload is answered at once instead of late (issue 11, item 10).

Why. A node offered more than it can process used to read each connection only as fast as it processed it, so
the excess waited in the kernel's socket buffers where nobody could see its age: offered 2.4 times its capacity,
the node answered every request it took with 00, 8 to 13 seconds after it was due, when the acquirer had long
timed out and reversed. The late work only added reversals.

How. Every connection's reader reads as fast as its peer sends and puts each frame in its listener's backlog
with the time it was read (:meth:`Backlog.put`); one task per listener (:meth:`Backlog.run`) takes them in
arrival order and hands each to the listener. A frame that waited in the backlog longer than the listener's
``max_wait_ms`` is handed over *overdue*: if it is an authorization or financial request, the listener answers it
91 at once without starting an exchange (it is *shed*); so is a request that finds the backlog full
(``max_backlog`` frames). Everything else is processed as before. The backlog takes the connections in turn, a
frame each (:class:`Backlog`), so a connection's messages keep their order and one busy peer cannot take the
node from the others; a connection with ``max_inflight_per_connection`` frames waiting is not read until some
are taken. When the load falls the backlog empties at once, the overdue requests cheaply, and the next request
is processed as soon as it arrives.

What is never shed: reversals, advices and network management. They bring money back, record what already
happened at a terminal, or keep a link up, and an unanswered one only comes back as a repeat. They wait their
turn and are processed however long they waited.

Why 91 and not stand-in: stand-in answers for a destination that cannot answer, from the switch's own rules
and database; an overloaded node has no time to spare for either. 91 (issuer or switch inoperative) tells the
acquirer to try again later, which is what it does after a timeout anyway, minus the reversal.

What shedding costs: the request is decoded and its 91 encoded, a fraction of a processed exchange, so most of
the node's capacity still goes to the requests it takes. Shed requests are not journaled (under overload the
journal's writer is the last place to add work); they are counted per listener and reason (``links status``,
``bulkhead_listener_shed``) and logged as a summary: one line when shedding starts, one per 10 s while it goes
on, and one when it has stopped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import trio

from switch.runtime.links.connection import FRAMES_PER_TURN, Connection
from switch.wire.framing import Frame

log = logging.getLogger("bulkhead.link")

# Why a request was shed (links status "shed", metric bulkhead_listener_shed{reason}).
WAITED = "waited"  # longer than max_wait_ms in the backlog
OVERDUE = "behind overdue"  # arrived on a connection whose last frame taken had waited longer than max_wait_ms
FULL = "backlog full"  # the listener's backlog held max_backlog frames when it arrived
# Shedding counts as over once nothing has been shed for this long (the "stopped shedding" line); while it goes
# on, a summary line every SUMMARY_S.
CALM_S = 1.0
SUMMARY_S = 10.0

# Frames taken from one connection per turn of the ready line (deficit round robin's quantum).
QUANTUM = 8
# (connection, frame, overdue): the listener's handling of one frame taken from the backlog.
Handler = Callable[[Connection, Frame, bool], None]


class Backlog:
    """The frames a listener's readers have read and its exchanges have not yet taken.

    Each connection keeps its own frames in arrival order (``Connection.backlog``); the connections that have
    frames and room for another exchange (fewer than ``max_inflight_per_connection`` in flight) wait their turn
    in one ready line, and each turn takes up to QUANTUM frames of the connection at its head (deficit round
    robin: a few frames at a time keep one connection's answers in one write, and no peer gets more turns than
    another however much it sends). A connection's messages keep their order.

    A frame's wait counts only while the node could have taken it: time its connection spent at its own
    in-flight limit (a slow destination, not a busy node) is credited back, so a peer whose requests wait for
    their own earlier ones is never shed for it.
    """

    def __init__(self, listener: str, *, max_wait_s: float, limit: int, per_connection: int) -> None:
        self.listener = listener
        self.max_wait_s = max_wait_s
        self.limit = limit
        self.per_connection = per_connection  # frames a connection may have waiting before its reader pauses
        self._ready: deque[Connection] = deque()
        self._wake = trio.Event()
        self.total = 0  # frames waiting, over every connection
        self.peak = 0  # the most frames it held
        self.shed: dict[str, int] = {WAITED: 0, OVERDUE: 0, FULL: 0}
        self.dropped = 0  # requests whose connection closed before their turn: nobody left to answer
        self._since: float | None = None  # shedding since (trio time); None: not shedding
        self._last_shed = 0.0
        self._episode = 0  # requests shed since shedding started
        self._reported = 0  # of those, already in a log line
        self._last_line = 0.0

    def __len__(self) -> int:
        return self.total

    def attach(self, conn: Connection) -> None:
        """Serve ``conn`` through this backlog: its reader pauses when it has per_connection frames waiting
        (TCP pushes back on that peer alone), and a finished exchange gives it its turn again."""
        conn.backlog_share = self.per_connection
        conn.on_slot = self._schedule

    def oldest_wait(self) -> float:
        """Seconds the oldest frame at the head of a ready connection's line has waited (0 when none)."""
        heads = [conn.backlog[0][0] + conn.blocked_total for conn in list(self._ready) if conn.backlog]
        return trio.current_time() - min(heads) if heads else 0.0

    def refuses(self, conn: Connection) -> str | None:
        """Why a request arriving on ``conn`` now would be shed at once if it may be (None: queue it): the
        backlog is full (unless this connection has nothing waiting: round robin serves it next), or the
        connection's line is overdue."""
        if self.total >= self.limit and conn.backlog:
            return FULL
        return OVERDUE if conn.overdue else None

    def put(self, conn: Connection, frame: Frame, read_at: float) -> None:
        """Queue ``frame``, read from ``conn`` at ``read_at`` (past ``limit`` too: what may not be shed is never
        refused, and the caller sheds what may be before it gets here)."""
        # Stamped net of the time the connection had spent blocked on its own in-flight limit when the frame was
        # read, so that at its turn (now - blocked_total) - stamp is the time it waited for the node alone (see
        # _take; a frame read before a pause of its reader keeps its read time and its credit).
        conn.backlog.append((read_at - conn.read_blocked, frame))
        self.total += 1
        if self.total > self.peak:
            self.peak = self.total
        self._schedule(conn)

    def _schedule(self, conn: Connection) -> None:
        if conn.scheduled or not conn.backlog:
            return
        if conn.inflight >= conn.max_inflight:
            if conn.blocked_since is None:  # its frames wait for its own exchanges from now on
                conn.blocked_since = trio.current_time()
            return
        if conn.blocked_since is not None:
            conn.blocked_total += trio.current_time() - conn.blocked_since
            conn.blocked_since = None
        conn.scheduled = True
        self._ready.append(conn)
        self._wake.set()

    async def run(self, handle: Handler) -> None:
        """Hand the waiting frames to ``handle``, marked overdue once they waited longer than ``max_wait_s``;
        yields to the other tasks after every FRAMES_PER_TURN frames, so the readers keep reading (and stamping
        arrival times) while the backlog is worked off."""
        ready = self._ready
        while True:
            if not ready:
                self._calm()
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            now = trio.current_time()
            taken = 0
            while ready and taken < FRAMES_PER_TURN:
                conn = ready.popleft()
                conn.scheduled = False
                taken += self._take(conn, handle, now)
                self._schedule(conn)  # to the end of the line, if it has more and room for them
            if ready:  # more to do: let the readers and the answers in first (an empty line waits above anyway)
                await trio.lowlevel.checkpoint()

    def _take(self, conn: Connection, handle: Handler, now: float) -> int:
        """Up to QUANTUM frames of ``conn``, while it has room for more exchanges; how many were taken."""
        backlog = conn.backlog
        cutoff = now - conn.blocked_total - self.max_wait_s
        halfway = now - conn.blocked_total - self.max_wait_s / 2
        n = 0
        while backlog and n < QUANTUM and conn.inflight < conn.max_inflight:
            stamp, frame = backlog.popleft()
            self.total -= 1
            n += 1
            late = stamp < cutoff
            # What this connection sends next would wait at least as long: once its line holds half of
            # max_wait_s, its new requests are shed as they arrive (at once, rather than after max_wait_s in the
            # line), so what it has queued is still taken in time (CoDel's target below its interval).
            conn.overdue = stamp < halfway and bool(backlog)
            conn.backlog_taken()
            try:
                handle(conn, frame, late)
            except Exception as exc:  # one peer's frame must never stop the listener: that peer is let go
                log.error("listener %s: frame from %s failed: %s; closing", self.listener, conn.peer,
                          type(exc).__name__)
                conn.close()
        if not backlog:
            conn.overdue = False
        return n

    def count_shed(self, reason: str) -> None:
        """One request answered 91 without an exchange (the listener calls it)."""
        self.shed[reason] += 1
        now = trio.current_time()
        self._last_shed = now
        self._episode += 1
        if self._since is None:
            self._since = self._last_line = now
            self._reported = 1
            log.warning("listener %s: overloaded: answering 91 at once to requests that cannot be answered in time "
                        "(%s; backlog %d, oldest waited %.0f ms)", self.listener, reason, self.total,
                        self.oldest_wait() * 1000)
        elif now - self._last_line >= SUMMARY_S:
            self._summary("still shedding", now)

    def poll(self) -> None:
        """Called periodically (the listener's log flush): report an overload that has ended."""
        self._calm()

    def _calm(self) -> None:
        """If nothing was shed for CALM_S, the overload is over: say so with its count."""
        if self._since is not None and trio.current_time() - self._last_shed >= CALM_S:
            self._summary("stopped shedding", trio.current_time())
            self._since = None
            self._episode = 0

    def _summary(self, what: str, now: float) -> None:
        assert self._since is not None
        new = self._episode - self._reported
        self._reported = self._episode
        self._last_line = now
        log.warning("listener %s: %s: %d requests shed in %.1f s (%d since the last line; by reason %s; "
                    "backlog %d)", self.listener, what, self._episode, now - self._since, new,
                    ", ".join(f"{k}={v}" for k, v in self.shed.items() if v), self.total)

    def status(self) -> dict[str, object]:
        return {"backlog": self.total, "backlog_peak": self.peak,
                "oldest_wait_ms": round(self.oldest_wait() * 1000, 1), "shed": dict(self.shed), "dropped": self.dropped,
                "shedding": self._since is not None}


def sheddable(mti: str) -> bool:
    """Authorization and financial requests as first sent (x100, x102, x200, x202; 1987 and 1993 MTIs): the class
    digit 1 or 2, the function digit 0 and an origin that is not a repeat. Never advices, reversals or network
    management; never a repeat (x101, x201): its original may have been approved, and the issuer answers a
    repeat with the first answer, so a 91 to it could leave a charge the acquirer never reverses."""
    return mti[1] in "12" and mti[2] == "0" and mti[3] in "02"
