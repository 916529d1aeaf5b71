"""One simulated ATM's connection to the host: a reader, a batching writer and a table of what the terminal waits
for, matched by the ATM network's key (MTI class, DE 11, DE 41).

A request's answer may not come in time (:meth:`Connection.exchange` returns None: the caller decides what the
terminal does about it, a reversal for a financial request) and may come later (counted late, never taken for
another); a connection that goes down fails everything still waited for (:class:`Dropped`), and the terminal
reconnects (:mod:`switch.sim.atmterminal`). Answers carrying a MAC are checked under the terminal's TAK.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

import trio

from switch.contracts.network import Network
from switch.infra.outbox import Outbox
from switch.model.errors import FramingError, RemoteProtocolError
from switch.model.message import Message
from switch.sim.atmkeys import TerminalKeys
from switch.sim.atmreport import FleetReport
from switch.wire.framing import Framer

log = logging.getLogger("bulkhead.sim.atm")
READ_SIZE = 65536
MAX_LATE = 4096  # keys of timed-out requests remembered to count their late answers


class Dropped(Exception):
    """The connection went down before the answer came."""


class _Slot:
    __slots__ = ("answer", "done", "dropped")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.answer: Message | None = None
        self.dropped = False


class Connection:
    """What one terminal sends and waits for on one TCP connection (or a test's memory stream)."""

    def __init__(self, stream: trio.abc.Stream, framer: Framer, network: Network, keys: TerminalKeys,
                 report: FleetReport, on_answer: Callable[[Message], None]) -> None:
        self.stream = stream
        self.framer = framer
        self.network = network
        self.keys = keys
        self.report = report
        self.on_answer = on_answer  # every matched answer (the terminal watches for DE 48 RK)
        self.match = network.matcher(None)
        self.outbox = Outbox()
        self.pending: dict[Hashable, _Slot] = {}
        self.expired: dict[Hashable, None] = {}
        self.closed = trio.Event()

    async def run(self) -> None:
        """Read and write until the peer goes or the caller cancels; then fail what is still awaited."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.outbox.run, self.stream, nursery.cancel_scope)
                await self._read()
                nursery.cancel_scope.cancel()
        finally:
            self.closed.set()
            for slot in self.pending.values():
                slot.dropped = True
                slot.done.set()
            self.pending.clear()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def exchange(self, msg: Message, timeout: float) -> Message | None:
        """Send ``msg`` and wait up to ``timeout`` seconds for its answer: the answer, or None when it did not come
        in time; :class:`Dropped` when the connection went down first."""
        if self.closed.is_set():
            raise Dropped()
        slot = _Slot()
        key = self.match(msg)
        if key in self.pending:
            raise ValueError(f"a request with key {key} is already waited for")
        # Encoded with its MAC when the terminal MACs, framed, queued for the writer.
        self.outbox.put(self.framer.encode(self.keys.encode(self.network, msg)))
        self.pending[key] = slot
        with trio.move_on_after(timeout):
            await slot.done.wait()
        if slot.dropped:
            raise Dropped()
        if slot.answer is None:
            self.pending.pop(key, None)
            self.expired[key] = None
            if len(self.expired) > MAX_LATE:
                self.expired.pop(next(iter(self.expired)))
        return slot.answer

    async def _read(self) -> None:
        try:
            while True:
                data = await self.stream.receive_some(READ_SIZE)
                if not data:
                    return
                self.framer.receive_data(bytes(data))
                while (frame := self.framer.next_frame()) is not None:
                    if frame.keepalive:
                        reply = self.framer.keepalive_reply(frame)
                        if reply is not None:
                            self.outbox.put(reply)
                        continue
                    self._answer(frame.body)
        except FramingError as exc:
            log.warning("atm simulator: closing the connection: %s", exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _answer(self, body: bytes) -> None:
        try:
            msg = self.network.decode(body)
        except RemoteProtocolError as exc:
            self.report.undecodable += 1
            log.warning("atm simulator: undecodable answer: %s", exc)
            return
        if self.keys.mac and self.keys.tak is not None and not self.keys.exempt(msg):
            # The host MACs its answers to a MAC terminal (README "ATM interface", MAC): under the TAK it has, and the
            # answer to a key confirmation under the new one; the answer to a key exchange request goes without.
            verified = self.keys.check(body, msg)
            self.report.mac["missing" if verified is None else "verified" if verified else "bad"] += 1
        key = self.match(msg)
        slot = self.pending.pop(key, None)
        if slot is None:
            if key in self.expired:
                del self.expired[key]
                self.report.late += 1
            else:
                self.report.unmatched += 1
            return
        slot.answer = msg
        slot.done.set()
        self.on_answer(msg)

