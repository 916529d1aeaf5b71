"""The pending-request table of an outbound link (jPOS QMUX, moov iso8583-connection).

A request is registered under its match key before it is written; the link's single reader hands every
response to :meth:`Mux.deliver`, and a request the network rejected (its original sent back) to
:meth:`Mux.reject`. A second request with a key already in flight is refused. A response that
matches nothing (it came after its request timed out, or was never asked for) goes to the late handler:
nothing unmatched is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from switch.contracts.network import Rejected
from switch.exchange.ports import DuplicateKeyError
from switch.model.message import Message
from switch.runtime.links.waiter import Slot


class Pending:
    """One request waiting: its key and the slot its response (a :class:`Rejected` when the network refused the
    request; None: connection lost) is given to."""

    __slots__ = ("key", "slot")

    def __init__(self, key: Hashable, slot: Slot[Message | Rejected] | None = None) -> None:
        self.key = key
        self.slot: Slot[Message | Rejected] = Slot() if slot is None else slot

    # Event-like view (is_set / wait) and the response, as before the Slot replaced a trio.Event.
    @property
    def event(self) -> Slot[Message | Rejected]:
        return self.slot

    @property
    def response(self) -> Message | Rejected | None:
        return self.slot.value


class Mux:
    def __init__(
        self,
        name: str,
        match_key: Callable[[Message], Hashable],
        late_handler: Callable[[Message], None],
    ) -> None:
        self.name = name
        self.match_key = match_key
        self.late_handler = late_handler
        self._pending: dict[Hashable, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def register(self, request: Message, slot: Slot[Message | Rejected] | None = None) -> Pending:
        """Register ``request``; its response goes to ``slot`` (a new :class:`Slot` to wait on by default,
        or a :class:`~switch.runtime.links.waiter.Continuation`)."""
        key = self.match_key(request)
        if key in self._pending:
            raise DuplicateKeyError(f"link {self.name}: a request with the same key is in flight")
        pending = Pending(key, slot)
        self._pending[key] = pending
        return pending

    def forget(self, pending: Pending) -> None:
        """Drop a registration (timeout, cancellation, send failure). Idempotent."""
        if self._pending.get(pending.key) is pending:
            del self._pending[pending.key]

    def deliver(self, response: Message) -> bool:
        """Hand a response to its waiting request; False (and the late handler) when none waits."""
        pending = self._pending.pop(self.match_key(response), None)
        # A slot already settled: the request timed out (or was cancelled) and has not yet forgotten itself.
        if pending is None or not pending.slot.set(response):
            self.late_handler(response)
            return False
        return True

    def reject(self, original: Message, rejection: Rejected) -> bool:
        """The network rejected ``original`` (one of our requests, sent back): its waiter gets ``rejection``;
        False when none waits (it timed out and was dealt with: the caller says so)."""
        pending = self._pending.pop(self.match_key(original), None)
        return pending is not None and pending.slot.set(rejection)

    def fail_all(self) -> int:
        """The connection is gone: wake every waiter with no response; they decide what that means."""
        waiting = list(self._pending.values())
        self._pending.clear()
        for pending in waiting:
            pending.slot.set(None)
        return len(waiting)
