"""A per-connection writer that sends everything queued since its last send in one ``send_all``.

Joining queued frames into one write is what keeps a pipelined link fast (one send per received batch, not
per message: the reference measurements show 20x between the two on loopback).
"""

from __future__ import annotations

import trio


class Outbox:
    __slots__ = ("_items", "_wakeup", "sends")

    def __init__(self) -> None:
        self._items: list[bytes] = []
        self._wakeup = trio.Event()
        self.sends = 0  # number of send_all calls, for tests and statistics

    def put(self, data: bytes) -> None:
        self._items.append(data)
        self._wakeup.set()

    def put_many(self, data: list[bytes]) -> None:
        self._items.extend(data)
        self._wakeup.set()

    async def run(self, stream: trio.abc.SendStream, on_broken: trio.CancelScope) -> None:
        """Send until cancelled. A broken connection cancels ``on_broken`` (the connection's scope)."""
        try:
            while True:
                await self._wakeup.wait()
                # No checkpoint between the wait and the new Event: a put() cannot be lost in between.
                self._wakeup = trio.Event()
                items, self._items = self._items, []
                if items:
                    self.sends += 1
                    await stream.send_all(items[0] if len(items) == 1 else b"".join(items))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            on_broken.cancel()
