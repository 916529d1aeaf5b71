"""Which originals have a message upstream whose outcome is not settled yet, so that a reversal or advice for the
same original waits for it rather than overtaking it (issue 11).

Two ways a reversal could otherwise reach the issuer before an advice of its original, with nothing in the
store-and-forward queue yet to hold it back: the acquirer's 0120/0220 is sent live and the issuer is slow, the
acquirer's 0400 for the same original arrives, passes, and is answered; then the advice times out and is queued
as 0121/0221, to be delivered after the reversal. Or an 0100/0200 to a destination that may be stood in for is
still in flight when the 0400 passes; it times out, the switch approves it and queues its 0221: the issuer
reverses nothing, then posts the advice, and the customer is charged for a reversed sale.

So an exchange that may leave an advice behind (an advice, or an original to a destination with a stand-in
policy) is entered here under its original's key (switch.exchange.reversal.original_key) when it goes upstream,
and leaves once its outcome is settled: answered, or its fallback has queued what it queues (the advice is then
durable, and the queue's own order takes over). A reversal or advice for a key that is here parks behind it and
is resumed when the last exchange under that key leaves; it then looks at the queue as it would have (and queues
behind the advice, or goes live when there was none).

In memory and per node process: the hot path pays a dictionary entry only for originals to stand-in
destinations, and no database read. Sans-I/O: the pipeline resumes the followers it is handed.
"""

from __future__ import annotations

from collections.abc import Callable

from switch.exchange.context import Exchange

Resume = Callable[[], None]


class InFlightOriginals:
    """Exchanges upstream by original key, and the exchanges parked behind each key."""

    __slots__ = ("_followers", "_holders")

    def __init__(self) -> None:
        self._holders: dict[str, list[Exchange]] = {}
        self._followers: dict[str, list[Resume]] = {}

    def enter(self, key: str, x: Exchange) -> None:
        """``x`` went upstream for original ``key``: until it leaves, messages for ``key`` wait for it."""
        self._holders.setdefault(key, []).append(x)
        x.inflight_key = key

    def leave(self, x: Exchange) -> list[Resume]:
        """``x``'s outcome is settled (once; later calls return nothing): how to resume what was parked behind its
        key, when no other exchange holds that key any more, for the caller to call, oldest first."""
        key, x.inflight_key = x.inflight_key, None
        if key is None:
            return []
        holders = self._holders.get(key)
        if holders is None or x not in holders:
            return []
        holders.remove(x)
        if holders:
            return []
        del self._holders[key]
        return self._followers.pop(key, [])

    def follow(self, key: str, resume: Resume) -> bool:
        """Park an exchange behind the exchanges upstream for ``key``, if there are any (True: ``resume`` is handed
        back once they have all settled); False: none, go on."""
        if key not in self._holders:
            return False
        self._followers.setdefault(key, []).append(resume)
        return True

    def holds(self, key: str) -> bool:
        return key in self._holders

    def __len__(self) -> int:
        return len(self._holders)
