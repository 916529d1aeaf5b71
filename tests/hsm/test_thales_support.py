"""Helpers shared by the host-protocol tests (no tests here): a running server and a scripted peer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.thales.dispatch import execute
from hsm.thales.framing import FrameBuffer, frame
from hsm.thales.profile import DEFAULT_PROFILE, Profile
from hsm.thales.server import serve_hsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
LOCALHOST = "127.0.0.1"


@asynccontextmanager
async def running_server(hsm: SoftwareHsm = HSM, *, header_length: int = 4,
                         profile: Profile = DEFAULT_PROFILE) -> AsyncIterator[int]:
    """``bulkhead hsm serve`` in-process on a free port; yields the port."""
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(serve_hsm, hsm, LOCALHOST, 0, header_length, profile)
        yield port
        nursery.cancel_scope.cancel()


async def exchange(stream: trio.abc.Stream, messages: list[bytes], *, expect: int | None = None) -> list[bytes]:
    """Send ``messages`` framed in one write; read ``expect`` (default: as many) answers."""
    await stream.send_all(b"".join(frame(m) for m in messages))
    return await read_messages(stream, len(messages) if expect is None else expect)


async def read_messages(stream: trio.abc.Stream, count: int) -> list[bytes]:
    buffer = FrameBuffer()
    out: list[bytes] = []
    with trio.fail_after(10):
        while len(out) < count:
            data = await stream.receive_some(65536)
            assert data, "connection closed early"
            buffer.receive_data(data)
            while (m := buffer.next_message()) is not None:
                out.append(m)
    return out


Send = Callable[[bytes], Awaitable[None]]
Behaviour = Callable[["ScriptedPeer", int, bytes, Send], Awaitable[None]]


def answer(message: bytes, header_length: int = 4) -> bytes:
    """What the real server would answer (to build scripted replies)."""
    return execute(HSM, message, header_length, DEFAULT_PROFILE)


class ScriptedPeer:
    """A host-protocol server whose behaviour per request a test decides (slow, silent, dropping...).

    ``behaviour(peer, connection_number, message, send)`` runs in its own task per request, so a slow answer
    does not hold up the next request. ``drop(n)`` closes connection ``n``.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[tuple[int, bytes]] = []
        self._streams: dict[int, trio.SocketStream] = {}

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=LOCALHOST)
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._connection, listeners)

    async def drop(self, number: int) -> None:
        await trio.aclose_forcefully(self._streams[number])

    async def _connection(self, stream: trio.SocketStream) -> None:
        number = self.connections
        self.connections += 1
        self._streams[number] = stream
        lock = trio.Lock()

        async def send(message: bytes) -> None:
            async with lock:
                await stream.send_all(frame(message))

        async def act(message: bytes) -> None:
            # The test may close this connection on purpose.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.behaviour(self, number, message, send)

        buffer = FrameBuffer()
        async with trio.open_nursery() as nursery:
            try:
                while data := await stream.receive_some(65536):
                    buffer.receive_data(data)
                    while (m := buffer.next_message()) is not None:
                        self.requests.append((number, m))
                        nursery.start_soon(act, m)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def scripted(behaviour: Behaviour) -> AsyncIterator[tuple[ScriptedPeer, int]]:
    peer = ScriptedPeer(behaviour)
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(peer.run)
        yield peer, port
        nursery.cancel_scope.cancel()
