"""Which originals have a message in the switch whose outcome is not settled yet, so that a reversal or advice
for the same original waits for it rather than overtaking it (issue 11).

Ways a reversal could otherwise reach the issuer before an advice of its original, with nothing in the
store-and-forward queue yet to hold it back: the acquirer's 0120/0220 is sent live and the issuer is slow, the
acquirer's 0400 for the same original arrives, passes, and is answered; then the advice times out and is queued
as 0121/0221, to be delivered after the reversal. Or the 0220 and its 0420 arrive together and each reads the
queue (a database read, in a task) before the other has gone anywhere: the 0420's read may come back first and
send it live ahead of the 0220. Or an 0100/0200 to a destination that may be stood in for is still in flight
when the 0400 passes; it times out, the switch approves it and queues its 0221: the issuer reverses nothing, then
posts the advice, and the customer is charged for a reversed sale.

So every exchange that may leave something behind for its original (an advice or reversal, which the switch
forwards, holds, or queues as its repeat; an original to a destination with a stand-in policy) is entered here
under its original's key (switch.exchange.reversal.original_key) when it is routed, before it awaits anything,
and leaves once its outcome is settled: answered, or its fallback has queued what it queues (that is then
durable, and the queue's own order takes over). Entered when routed, inline in the link reader, the exchanges
under a key are in arrival order: an exchange's place in that list is its arrival number for the key. An advice
or reversal waits only for the exchanges that arrived before it (never behind itself, nor behind a later one),
and is resumed when the last of them leaves. Since the advices and reversals waiting are entered too, they are
resumed one at a time, oldest first: each goes on (to the queue, or live) and settles before the next looks.

In memory and per node process: the hot path pays a list entry only for originals to stand-in destinations,
and no database read; a purchase to a destination without stand-in pays nothing. Sans-I/O: the pipeline resumes
the followers it is handed.
"""

from __future__ import annotations

from collections.abc import Callable

from switch.exchange.context import Exchange

Resume = Callable[[], None]


class InFlightOriginals:
    """Unsettled exchanges by original key, in arrival order, and those of them parked until the ones before them
    have settled."""

    __slots__ = ("_holders", "_parked")

    def __init__(self) -> None:
        self._holders: dict[str, list[Exchange]] = {}
        self._parked: dict[str, list[tuple[Exchange, Resume]]] = {}

    def enter(self, key: str, x: Exchange) -> None:
        """``x`` arrived for original ``key``: until it leaves, later messages for ``key`` that wait, wait for it."""
        self._holders.setdefault(key, []).append(x)
        x.inflight_key = key

    def follow(self, x: Exchange, resume: Resume) -> bool:
        """Park ``x`` behind the exchanges for its key that arrived before it, if any is still unsettled (True:
        ``resume`` is handed back once they all have left); False: none, go on. An exchange never entered has no
        place in the order, and goes on."""
        key = x.inflight_key
        holders = self._holders.get(key) if key is not None else None
        if key is None or not holders or holders[0] is x or x not in holders:
            return False
        self._parked.setdefault(key, []).append((x, resume))
        return True

    def leave(self, x: Exchange) -> list[Resume]:
        """``x``'s outcome is settled, or it ended (once; later calls return nothing): how to resume the exchange
        parked behind its key that has nothing before it any more (the oldest), if one is parked, for the caller
        to call."""
        key, x.inflight_key = x.inflight_key, None
        if key is None:
            return []
        holders = self._holders.get(key)
        if holders is None or x not in holders:
            return []
        holders.remove(x)
        if not holders:
            del self._holders[key]
        parked = [p for p in self._parked.pop(key, ()) if p[0] is not x]  # x may have ended while parked
        if not parked:
            return []
        # Every parked exchange was entered, so the oldest left has nothing before it; with no holder left at all
        # (which the entering makes impossible) each would be resumed rather than forgotten.
        oldest = holders[0] if holders else None
        resumed = [resume for follower, resume in parked if oldest is None or follower is oldest]
        kept = [p for p in parked if oldest is not None and p[0] is not oldest]
        if kept:
            self._parked[key] = kept
        return resumed

    def holds(self, key: str) -> bool:
        return key in self._holders

    def parked(self, key: str) -> int:
        """How many exchanges wait behind others for ``key``."""
        return len(self._parked.get(key, ()))

    def __len__(self) -> int:
        return len(self._holders)
