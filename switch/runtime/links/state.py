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
