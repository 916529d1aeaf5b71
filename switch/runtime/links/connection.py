"""One connection: a framer, one reader, one writer that sends everything queued in one call.

Batching the writes is what lets trio carry tens of thousands of messages a second
(reference/performance.md: one send_all per batch is about 20x one send_all per message).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import trio

from switch.exchange.ports import ConnectionClosed
from switch.model.errors import FramingError
from switch.wire.framing import Frame, Framer

log = logging.getLogger("bulkhead.link")

READ_SIZE = 65536


class Connection:
    def __init__(
        self,
        stream: trio.abc.Stream,
        framer: Framer,
        *,
        link: str,
        peer: str,
        idle_timeout: float | None = None,
        max_queued_bytes: int = 8 * 1024 * 1024,
        max_inflight: int = 256,
    ) -> None:
        self.stream = stream
        self.framer = framer
        self.link = link
        self.peer = peer
        self.idle_timeout = idle_timeout
        self.max_queued_bytes = max_queued_bytes
        self.closed = False
        self.last_activity = trio.current_time()
        self._out: list[bytes] = []
        self._queued = 0
        self._wake = trio.Event()
        # Requests from this peer still being processed: past max_inflight the reader stops reading, so one
        # peer cannot take every slot of a slow destination or pile up unbounded work (TCP pushes back).
        self.max_inflight = max_inflight
        self.inflight = 0
        self._slot_free = trio.Event()
        # Set by run_connection: close() from another task (an unanswered echo, an overfull queue) must
        # also end a reader blocked on a peer that sends nothing, or the connection is never given up.
        self._read_scope: trio.CancelScope | None = None

    def exchange_started(self) -> None:
        self.inflight += 1

    def exchange_done(self) -> None:
        self.inflight -= 1
        self._slot_free.set()

    async def wait_for_slot(self) -> None:
        while self.inflight >= self.max_inflight and not self.closed:
            self._slot_free = trio.Event()
            await self._slot_free.wait()

    # -- writing ------------------------------------------------------------------------------------
    def send_nowait(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionClosed(self.link)
        if self._queued + len(data) > self.max_queued_bytes:
            # A peer that does not read its responses would make us buffer without bound. Refused before it is
            # queued: the caller treats this frame as undelivered (a response's approval is reversed), so it must
            # not reach the peer with what the writer still flushes.
            log.warning("link %s peer %s: output queue over %d bytes, closing", self.link, self.peer,
                        self.max_queued_bytes)
            self.close()
            raise ConnectionClosed(self.link)
        self._out.append(data)
        self._queued += len(data)
        self._wake.set()

    def send_frame(self, body: bytes, reply_to: Frame | None = None) -> None:
        self.send_nowait(self.framer.encode(body, reply_to))

    def reply_keepalive(self, frame: Frame) -> None:
        """Answer a keep-alive (or session-control) frame as the framing says, if it says anything."""
        reply = self.framer.keepalive_reply(frame)
        if reply is not None:
            with contextlib.suppress(ConnectionClosed):  # queue bound hit: this connection ends, quietly
                self.send_nowait(reply)

    async def run_writer(self) -> None:
        try:
            while not self.closed or self._out:
                await self._wake.wait()
                self._wake = trio.Event()
                if not self._out:
                    continue
                batch, self._out, self._queued = self._out, [], 0
                await self.stream.send_all(batch[0] if len(batch) == 1 else b"".join(batch))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.close()

    # -- reading ------------------------------------------------------------------------------------
    async def frames(self) -> AsyncIterator[Frame]:
        """Frames as they arrive, keep-alives included (the link's network classifies each one).

        Ends on EOF, on a connection error, on idle timeout, or with FramingError when the byte stream
        cannot be delimited any more (the caller logs it and closes).
        """
        while not self.closed:
            try:
                if self.idle_timeout is None:
                    data = await self.stream.receive_some(READ_SIZE)
                else:
                    with trio.move_on_after(self.idle_timeout) as scope:
                        data = await self.stream.receive_some(READ_SIZE)
                    if scope.cancelled_caught:
                        log.info("link %s peer %s: idle for %.0fs, closing", self.link, self.peer,
                                 self.idle_timeout)
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            self.last_activity = trio.current_time()
            self.framer.receive_data(bytes(data))
            while not self.closed:  # a frame handler may close (format-error policy): stop there
                frame = self.framer.next_frame()
                if frame is None:
                    break
                yield frame

    def close(self) -> None:
        self.closed = True
        self._wake.set()
        if self._read_scope is not None:
            self._read_scope.cancel()

    async def aclose(self) -> None:
        self.close()
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await self.stream.aclose()


FrameHandler = Callable[[Connection, Frame], None]


async def run_connection(conn: Connection, on_frame: FrameHandler) -> None:
    """Read frames until the connection ends, passing each to ``on_frame``; the writer runs beside it.

    ``on_frame`` must not block for long: it handles the frame inline or hands it to a task.
    """
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run_writer)
            try:
                with trio.CancelScope() as conn._read_scope:
                    async for frame in conn.frames():
                        on_frame(conn, frame)
                        if conn.inflight >= conn.max_inflight:
                            await conn.wait_for_slot()
            except FramingError as exc:
                log.warning("link %s peer %s: framing error, closing: %s", conn.link, conn.peer, exc)
            finally:
                conn.close()
                # Let the writer flush what is queued (responses already decided), then stop it.
                with trio.move_on_after(1):
                    while conn._out:
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
    finally:
        await conn.aclose()

