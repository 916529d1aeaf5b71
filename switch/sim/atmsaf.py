"""A simulated ATM's store-and-forward queue: the advices it owes the host (dispense confirmations 0220, reversal
advices 0420), kept until the host acknowledges each, sent one at a time in the order they were made, the first
time under the advice's MTI and after that as a repeat (0221, 0421) with the same STAN, across connection drops
and host restarts. Pure: the terminal (:mod:`switch.sim.atmterminal`) sends, times out and retries.

What ends an advice is the host's answer (0230, 0430) with any code but those that say "not now": 58 (the terminal
is not in service for the host at the moment), 63 (the MAC failed: a key exchange may have crossed it), 91 and 96
(the host could not record it). An advice answered 25 (no approved request by that key) is ended too, and counted:
sending it again would not change the answer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from switch.model.message import Message
from switch.sim.atmmsgs import repeat

RETRY_CODES = frozenset({"58", "63", "91", "96"})


@dataclass
class Advice:
    """One advice owed to the host. ``lose_first``: its first transmission is lost on the way (the simulator does
    not write it), so the terminal learns nothing and sends it again as a repeat."""

    msg: Message
    lose_first: bool = False
    attempts: int = 0

    @property
    def label(self) -> str:
        return "confirmation" if self.msg.mti[1] == "2" else "reversal"

    def next_send(self) -> tuple[Message, bool]:
        """The message of the next transmission (the advice, then its repeat) and whether it reaches the wire."""
        first = self.attempts == 0
        self.attempts += 1
        return (self.msg if first else repeat(self.msg)), not (first and self.lose_first)


class StoreAndForward:
    def __init__(self) -> None:
        self._queue: deque[Advice] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, advice: Advice) -> None:
        self._queue.append(advice)

    def head(self) -> Advice | None:
        return self._queue[0] if self._queue else None

    def answered(self, code: str) -> bool:
        """The host answered the advice at the head with ``code``: True when that ends it (it leaves the queue),
        False when it stays to be sent again."""
        if not self._queue:
            raise ValueError("no advice in flight")
        if code in RETRY_CODES:
            return False
        self._queue.popleft()
        return True
