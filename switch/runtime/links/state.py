"""Link state machine as a table (h11 style): every (state, event) pair not listed leaves the state unchanged
and is reported as ignored, so an unexpected event can never put a link in an undefined state.

    DOWN --connecting--> CONNECTING --connected--> CONNECTED --signed_on--> SIGNED_ON
    any --lost--> DOWN;  SIGNED_ON/CONNECTED --draining--> DRAINING --lost--> DOWN
    SIGNED_ON --signed_off--> CONNECTED
"""

from __future__ import annotations

from enum import StrEnum


class LinkState(StrEnum):
    DOWN = "down"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SIGNED_ON = "signed_on"
    DRAINING = "draining"


class LinkEvent(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SIGNED_ON = "signed_on"
    SIGNED_OFF = "signed_off"
    DRAINING = "draining"
    LOST = "lost"


S, E = LinkState, LinkEvent

TRANSITIONS: dict[tuple[LinkState, LinkEvent], LinkState] = {
    (S.DOWN, E.CONNECTING): S.CONNECTING,
    (S.CONNECTING, E.CONNECTED): S.CONNECTED,
    (S.CONNECTING, E.LOST): S.DOWN,
    (S.CONNECTED, E.SIGNED_ON): S.SIGNED_ON,
    (S.CONNECTED, E.DRAINING): S.DRAINING,
    (S.CONNECTED, E.LOST): S.DOWN,
    (S.SIGNED_ON, E.SIGNED_OFF): S.CONNECTED,
    (S.SIGNED_ON, E.DRAINING): S.DRAINING,
    (S.SIGNED_ON, E.LOST): S.DOWN,
    (S.DRAINING, E.LOST): S.DOWN,
    (S.DRAINING, E.SIGNED_OFF): S.DRAINING,
}


def next_state(state: LinkState, event: LinkEvent) -> tuple[LinkState, bool]:
    """The state after ``event``, and whether the event was legal in ``state``."""
    new = TRANSITIONS.get((state, event))
    return (state, False) if new is None else (new, True)


class LinkHealth:
    """Whether a link that looks up actually answers (sans-I/O: the link reports what happened, this says when
    the link turns degraded and when it recovers).

    A destination that accepts a connection and then stops answering (a frozen cell, a hung host) stays
    "connected" or "signed_on" by the state table above, which only follows the connection and its network
    management. So the link also counts requests that went unanswered in a row: after ``after_timeouts`` of
    them, or one unanswered echo, it is degraded until the first answer comes back in time. A connection that
    drops and comes back does not clear it: only an answer proves the destination answers again.

    :meth:`timed_out`, :meth:`echo_missed` and :meth:`answered` return True when the call changed whether the
    link is degraded, so the caller logs each transition once, not every request.
    """

    __slots__ = ("after_timeouts", "in_a_row", "reason", "since")

    def __init__(self, after_timeouts: int) -> None:
        if after_timeouts < 1:
            raise ValueError("after_timeouts must be at least 1")
        self.after_timeouts = after_timeouts
        self.in_a_row = 0  # requests unanswered since the last answer
        self.reason: str | None = None  # why the link is degraded; None while it is not
        self.since: float | None = None  # when it became degraded (the caller's clock)

    @property
    def degraded(self) -> bool:
        return self.reason is not None

    def timed_out(self, now: float) -> bool:
        self.in_a_row += 1
        if self.reason is None and self.in_a_row >= self.after_timeouts:
            self.reason, self.since = f"{self.in_a_row} requests in a row unanswered", now
            return True
        return False

    def echo_missed(self, now: float) -> bool:
        if self.reason is None:
            self.reason, self.since = "echo unanswered", now
            return True
        return False

    def answered(self) -> bool:
        self.in_a_row = 0
        if self.reason is None:
            return False
        self.reason = self.since = None
        return True
