"""payShield host-protocol client on trio: a pool of connections, many commands in flight on each.

- One reader task per connection and one pending table keyed by the message header. The header is a
  decimal counter of the configured length, so up to 10**header_length commands can be in flight on one
  connection (capped by ``max_in_flight``); responses are matched by the echoed header, in whatever order
  the HSM answers.
- Timeouts are the caller's: wrap :meth:`ThalesClient.call` in ``trio.fail_after`` / ``move_on_after`` where
  the consequence is decided (:class:`hsm.thales.backend.ThalesBackend` does). A cancelled command's header is
  retired rather than reused, so its late answer cannot be mistaken for another command's; when it arrives it
  is logged (header, response code, error code and length only) and dropped. With a zero-length header there
  is nothing to match on: one command at a time, and a cancelled command closes the connection.
- Each pool slot reconnects on its own with exponential backoff. Commands in flight on a connection that drops
  fail with :class:`~hsm.thales.errors.HsmUnavailableError`; they are not resent (the caller decides). A caller
  never sees the transport's own exceptions (trio's ``BrokenResourceError`` / ``ClosedResourceError``,
  ``OSError``): every failure of :meth:`ThalesClient.call` is an :class:`~hsm.errors.HsmError`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import trio

from hsm.thales.base import Command, Reply, Response
from hsm.thales.commands import decode_response, encode_request, message_header
from hsm.thales.errors import HsmUnavailableError
from hsm.thales.framing import FrameBuffer, frame
from hsm.thales.profile import DEFAULT_PROFILE, Profile

log = logging.getLogger("bulkhead.hsm.client")

R = TypeVar("R", bound=Response)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Where the HSM is and how to talk to it."""

    host: str
    port: int
    header_length: int = 4
    profile: Profile = DEFAULT_PROFILE
    pool_size: int = 1
    max_in_flight: int = 256
    connect_timeout: float = 5.0
    backoff_initial: float = 0.05
    backoff_max: float = 5.0
    late_grace: float = 60.0
    lmk_id: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.header_length <= 16:
            raise ValueError("header_length must be 0 to 16")
        if self.pool_size < 1 or self.max_in_flight < 1:
            raise ValueError("pool_size and max_in_flight must be at least 1")


@dataclass(slots=True)
class _Slot:
    """One command waiting for its answer."""

    done: trio.Event = field(default_factory=trio.Event)
    message: bytes | None = None
    error: Exception | None = None


class _Connection:
    """One TCP connection: a sender side (any task) and one reader task."""

    def __init__(self, stream: trio.abc.Stream, config: ClientConfig, name: str) -> None:
        self.stream = stream
        self.config = config
        self.name = name
        self.pending: dict[bytes, _Slot] = {}
        self.retired: dict[bytes, float] = {}
        self.send_lock = trio.Lock()
        self.capacity = trio.Semaphore(min(config.max_in_flight, 10 ** config.header_length))
        self.closed = trio.Event()
        self.answered = 0
        self._counter = 0

    async def call(self, command: Command[R]) -> Reply[R]:
        async with self.capacity:
            if self.closed.is_set():
                raise HsmUnavailableError(f"connection {self.name} closed")
            header = self._next_header()
            data = frame(encode_request(command, header, self.config.profile, lmk_id=self.config.lmk_id))
            slot = self.pending[header] = _Slot()
            completed = False
            try:
                await self._send(data)
                await slot.done.wait()
                completed = True
            finally:
                if not completed:
                    self._abandon(header)
        if slot.error is not None:
            raise slot.error
        assert slot.message is not None
        return decode_response(slot.message, self.config.header_length, command, self.config.profile)

    async def _send(self, data: bytes) -> None:
        async with self.send_lock:
            # The connection may have dropped while this task waited for the lock (the stream is then closed
            # under it): callers must see HsmUnavailableError, never the transport's own exceptions.
            if self.closed.is_set():
                raise HsmUnavailableError(f"connection {self.name} closed")
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.closed.set()
                raise HsmUnavailableError(f"connection {self.name} lost while sending "
                                          f"({type(exc).__name__})") from exc
            except BaseException:
                # A send cut short (cancelled) may leave half a frame on the wire: the connection can no longer
                # be trusted. Close it; the pool slot reconnects.
                self.closed.set()
                raise

    def _next_header(self) -> bytes:
        """A header not pending and not retired (the semaphore guarantees one exists unless many retired)."""
        width = self.config.header_length
        if width == 0:
            return b""
        self._expire_retired()
        space = 10 ** width
        for _ in range(space):
            self._counter = (self._counter + 1) % space
            header = str(self._counter).zfill(width).encode("ascii")
            if header not in self.pending and header not in self.retired:
                return header
        raise HsmUnavailableError(f"connection {self.name}: every header is in use or awaiting a late answer")

    def _abandon(self, header: bytes) -> None:
        slot = self.pending.pop(header, None)
        if slot is None or slot.done.is_set():
            return
        if self.config.header_length == 0:
            self.closed.set()  # nothing to tell a late answer from the next one
            return
        self.retired[header] = trio.current_time() + self.config.late_grace

    def _expire_retired(self) -> None:
        if self.retired:
            now = trio.current_time()
            for header in [h for h, until in self.retired.items() if until <= now]:
                del self.retired[header]

    async def read_loop(self) -> None:
        buffer = FrameBuffer()
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    return
                buffer.receive_data(data)
                while (message := buffer.next_message()) is not None:
                    self._deliver(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.warning("HSM connection %s: read failed (%s)", self.name, type(exc).__name__)
        finally:
            self.closed.set()

    def _deliver(self, message: bytes) -> None:
        header = message_header(message, self.config.header_length)
        slot = self.pending.pop(header, None)
        if slot is None:
            late = self.retired.pop(header, None) is not None
            log.warning("HSM connection %s: dropped %s response header=%r code=%r error=%r (%d bytes)",
                        self.name, "late" if late else "unmatched", header.decode("ascii", "replace"),
                        _safe(message, self.config.header_length, 2), _safe(message, self.config.header_length + 2, 2),
                        len(message))
            return
        self.answered += 1
        slot.message = message
        slot.done.set()

    def fail_all(self, error: Exception) -> None:
        for slot in self.pending.values():
            if not slot.done.is_set():
                slot.error = error
                slot.done.set()
        self.pending.clear()


def _safe(message: bytes, start: int, length: int) -> str:
    """Response and error codes are two printable characters; anything else is shown as ``?``."""
    chunk = message[start:start + length].decode("ascii", "replace")
    return chunk if chunk.isprintable() else "?"


class ThalesClient:
    """A pool of connections to one HSM. Run :meth:`run` in a nursery (or use :func:`open_thales_client`)."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._ready: list[_Connection] = []
        self._changed = trio.Event()
        self._next = 0

    @property
    def connected(self) -> int:
        """Connections currently up."""
        return len(self._ready)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep ``pool_size`` connections up until cancelled. Reports started at once; calls wait for a link."""
        async with trio.open_nursery() as nursery:
            for index in range(self.config.pool_size):
                nursery.start_soon(self._keep_connected, index)
            task_status.started()

    async def wait_connected(self, count: int = 1) -> None:
        """Wait until at least ``count`` connections are up."""
        while len(self._ready) < count:
            await self._changed.wait()

    async def call(self, command: Command[R]) -> Reply[R]:
        """Send ``command`` on the least busy connection and wait for its answer (no timeout of its own)."""
        while not self._ready:
            await self._changed.wait()
        return await self._pick().call(command)

    def _pick(self) -> _Connection:
        self._next = (self._next + 1) % len(self._ready)
        rotated = self._ready[self._next:] + self._ready[:self._next]
        return min(rotated, key=lambda c: len(c.pending))

    def _notify(self) -> None:
        """Wake everything waiting for the set of connections to change."""
        self._changed.set()
        self._changed = trio.Event()

    async def _keep_connected(self, index: int) -> None:
        cfg = self.config
        name = f"{cfg.host}:{cfg.port}#{index}"
        delay = cfg.backoff_initial
        while True:
            try:
                with trio.fail_after(cfg.connect_timeout):
                    stream = await trio.open_tcp_stream(cfg.host, cfg.port)
            except (OSError, trio.TooSlowError) as exc:
                log.warning("HSM connection %s: connect failed (%s); retrying in %.2fs", name,
                            type(exc).__name__, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, cfg.backoff_max)
                continue
            answered = await self._serve(stream, name)
            if answered:
                delay = cfg.backoff_initial
            else:
                # Dropped before answering anything: back off so a refusing peer does not spin us.
                await trio.sleep(delay)
                delay = min(delay * 2, cfg.backoff_max)

    async def _serve(self, stream: trio.abc.Stream, name: str) -> int:
        conn = _Connection(stream, self.config, name)
        log.info("HSM connection %s: up", name)
        self._ready.append(conn)
        self._notify()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.read_loop)
                await conn.closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._ready.remove(conn)
            self._notify()
            conn.fail_all(HsmUnavailableError(f"connection {name} lost with the command in flight"))
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            log.warning("HSM connection %s: down", name)
        return conn.answered


@asynccontextmanager
async def open_thales_client(config: ClientConfig, *, wait: bool = True) -> AsyncIterator[ThalesClient]:
    """A running :class:`ThalesClient`; with ``wait`` the first connection is up when this yields."""
    async with trio.open_nursery() as nursery:
        client = ThalesClient(config)
        await nursery.start(client.run)
        if wait:
            await client.wait_connected()
        try:
            yield client
        finally:
            nursery.cancel_scope.cancel()


__all__ = ["ClientConfig", "ThalesClient", "open_thales_client"]

