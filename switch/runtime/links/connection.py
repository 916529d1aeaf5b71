"""One connection: a framer, one reader, one writer that sends everything queued in one call.

Batching the writes is what lets trio carry tens of thousands of messages a second
(reference/performance.md: one send_all per batch is about 20x one send_all per message).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable

import trio

from switch.exchange.ports import ConnectionClosed
from switch.model.errors import FramingError
from switch.wire.framing import Frame, Framer, MalformedFrame

log = logging.getLogger("bulkhead.link")

READ_SIZE = 65536
# Frames handled from one read before the reader yields to trio: one read can carry hundreds of frames, and a
# peer flooding malformed ones (each salvaged through the reference decoder) would otherwise hold the event loop
# for the whole batch while every other connection waits (issue 11: a well-behaved client's p99 went from 8 ms
# to 900 ms). A checkpoint costs about a microsecond; 16 frames of the cheapest kind cost far more.
FRAMES_PER_TURN = 16

# Why a connection's reader gave up on its peer (Connection.end_reason), as listed in the README.
FIRST_FRAME_TIMEOUT = "first-frame timeout"
FRAME_TIMEOUT = "frame timeout"
IDLE_TIMEOUT = "idle timeout"


class Connection:
    def __init__(
        self,
        stream: trio.abc.Stream,
        framer: Framer,
        *,
        link: str,
        peer: str,
        idle_timeout: float | None = None,
        first_frame_timeout: float | None = None,
        frame_timeout: float | None = None,
        max_queued_bytes: int = 8 * 1024 * 1024,
        max_inflight: int = 256,
    ) -> None:
        self.stream = stream
        self.framer = framer
        self.link = link
        self.peer = peer
        # Seconds. Only complete frames (keep-alives included) reset the idle timer, so bytes that never make a
        # frame do not keep a connection; a frame once started must be complete within frame_timeout, and the
        # first message (a keep-alive is not one) within first_frame_timeout of the connection (a TLS handshake
        # included).
        self.idle_timeout = idle_timeout
        self.first_frame_timeout = first_frame_timeout
        self.frame_timeout = frame_timeout
        self.max_queued_bytes = max_queued_bytes
        self.closed = False
        self.opened_at = self.last_activity = self._frame_started = trio.current_time()
        self.frames_in = 0
        self.keepalives_in = 0
        self.end_reason: str | None = None  # set when the reader gives up on a timeout (the owner logs it)
        self.format_errors: list[float] = []  # times of recent undecodable frames (the listener's budget)
        self._out: list[bytes] = []
        self._queued = 0
        self._wake = trio.Event()
        # Requests from this peer still being processed: past max_inflight the reader stops reading, so one
        # peer cannot take every slot of a slow destination or pile up unbounded work (TCP pushes back).
        self.max_inflight = max_inflight
        self.inflight = 0
        self._slot_free = trio.Event()
        # A listener's connection is served through its listener's backlog (switch.runtime.links.admission):
        # its frames wait there with the time they were read, and its reader pauses at backlog_share of them
        # instead of at max_inflight exchanges; on_slot gives it its turn again when an exchange finishes.
        self.backlog: collections.deque[tuple[float, Frame]] = collections.deque()
        self.scheduled = False  # in the backlog's ready line
        self.overdue = False  # the last frame the backlog took had waited too long, and more wait behind it
        # Time its frames spent waiting for its own exchanges (at max_inflight), not for the node: not counted
        # as waiting by the backlog.
        self.blocked_total = 0.0
        self.blocked_since: float | None = None
        self.read_blocked = 0.0  # the blocked time (as blocked_at says) when the last read returned
        self.backlog_share: int | None = None
        self.on_slot: Callable[[Connection], None] | None = None
        # Where a frame the framer delimited but could not read goes (MalformedFrame: answered in the network's form
        # and the stream read on); None: it ends the connection like any other framing error.
        self.on_malformed: Callable[[Connection, MalformedFrame], None] | None = None
        # Set by run_connection: close() from another task (an unanswered echo, an overfull queue) must
        # also end a reader blocked on a peer that sends nothing, or the connection is never given up.
        self._read_scope: trio.CancelScope | None = None

    def exchange_started(self) -> None:
        self.inflight += 1

    def exchange_done(self) -> None:
        self.inflight -= 1
        self._slot_free.set()
        if self.on_slot is not None:
            self.on_slot(self)

    def blocked_at(self, now: float) -> float:
        """Seconds this connection has spent, up to ``now``, with frames waiting and all its exchanges in
        progress (switch.runtime.links.admission)."""
        since = self.blocked_since
        return self.blocked_total if since is None else self.blocked_total + now - since

    def backlog_taken(self) -> None:
        """Its listener's backlog took one of its frames: a reader paused on a full share may go on."""
        self._slot_free.set()

    def saturated(self) -> bool:
        """Whether the reader must stop reading this peer for now: it has its share of frames waiting in the
        backlog, or (a connection without one) max_inflight requests in progress."""
        if self.backlog_share is not None:
            return len(self.backlog) >= self.backlog_share
        return self.inflight >= self.max_inflight

    async def wait_for_slot(self) -> None:
        while self.saturated() and not self.closed:
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

        Ends on EOF, on a connection error, on a timeout (``end_reason`` says which), or with FramingError when
        the byte stream cannot be delimited any more (the caller logs it and closes).
        """
        framer = self.framer
        while not self.closed:
            deadline, reason = self._deadline()
            try:
                if reason is None:
                    data = await self.stream.receive_some(READ_SIZE)
                else:
                    with trio.move_on_at(deadline) as scope:
                        data = await self.stream.receive_some(READ_SIZE)
                    if scope.cancelled_caught:
                        self.end_reason = reason
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            now = trio.current_time()
            if self.backlog_share is not None:
                self.read_blocked = self.blocked_at(now)
            partial = framer.buffered > 0
            framer.receive_data(bytes(data))
            found = 0
            while not self.closed:  # a frame handler may close (format-error policy): stop there
                try:
                    frame = framer.next_frame()
                except MalformedFrame as exc:
                    if self.on_malformed is None:
                        raise
                    found += 1
                    self.frames_in += 1
                    self.last_activity = now
                    self.on_malformed(self, exc)
                    if found % FRAMES_PER_TURN == 0:
                        await trio.lowlevel.checkpoint()
                    continue
                if frame is None:
                    break
                found += 1
                self.frames_in += 1
                if frame.keepalive:  # keeps the connection from idling out, but is not its first message
                    self.keepalives_in += 1
                self.last_activity = now
                yield frame
                if found % FRAMES_PER_TURN == 0 and self.backlog_share is None:
                    # let the other connections have the loop (a listener's connection only queues its frames,
                    # a microsecond each: its listener's backlog shares the node out instead)
                    await trio.lowlevel.checkpoint()
            if framer.buffered and (found or not partial):
                self._frame_started = now  # the bytes left over begin a new frame, which has its own deadline

    def _deadline(self) -> tuple[float, str | None]:
        """When the reader gives up waiting for the peer, and why (None: never)."""
        deadline: float = math.inf
        reason = None
        for timeout, since, why in (
            (self.idle_timeout, self.last_activity, IDLE_TIMEOUT),
            # Until the first message: keep-alives alone would hold a slot for ever on two bytes every few minutes.
            (self.first_frame_timeout if self.frames_in == self.keepalives_in else None, self.opened_at,
             FIRST_FRAME_TIMEOUT),
            (self.frame_timeout if self.framer.buffered else None, self._frame_started, FRAME_TIMEOUT),
        ):
            if timeout is not None and since + timeout < deadline:
                deadline, reason = since + timeout, why
        return deadline, reason

    def resume(self) -> None:
        """The node stopped reading this peer for a while (its requests filled max_inflight): that time is not
        the peer's, so the timers start again from now."""
        self.last_activity = self._frame_started = trio.current_time()

    def timeout_text(self) -> str:
        """What ``end_reason`` means for this connection's settings, for a log line."""
        seconds = {FIRST_FRAME_TIMEOUT: self.first_frame_timeout, FRAME_TIMEOUT: self.frame_timeout,
                   IDLE_TIMEOUT: self.idle_timeout}.get(self.end_reason or "")
        return f"{self.end_reason} ({seconds:g}s)" if seconds is not None else str(self.end_reason)

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
                        if conn.saturated():
                            await conn.wait_for_slot()
                            conn.resume()
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

