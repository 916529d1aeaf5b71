"""A hostile peer for the ``flood`` scenario (issue 11 item 8): a few connections sending malformed frames.

Each frame is a ``generic`` 0200 purchase cut short inside field 37, so the node can read its MTI and STAN and
answers it 30: the most expensive kind of garbage (decode fails, the reference decoder salvages, a response is
built, encoded and journaled nowhere). The flooder paces ``rate`` frames a second over ``connections``
connections, each writing what it owes every ``step`` seconds (a burst: at 0.25 s, about 190 frames in one write
per connection), reads and discards whatever comes back (a peer that does not read would only get
itself closed by the node's output bound), and reconnects at once whenever the node closes it (the format-error
budget), as a hostile peer would. Its process protocol is the generators' (:func:`bench.loadgen.worker_main`):
"ready", the start time, then a :class:`FloodResult`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import trio

from schemes.generic import SCHEME
from switch.model.message import Message
from switch.wire.framing import LengthFraming


@dataclass(frozen=True)
class FloodSpec:
    host: str
    port: int
    connections: int
    rate: float  # malformed frames a second, over all connections
    seconds: float  # from the start time
    step: float = 0.01  # seconds between two writes of a connection: rate * step / connections frames each


@dataclass
class FloodResult:
    sent: int = 0  # malformed frames written
    answered_bytes: int = 0  # what the node sent back (its 30s)
    connects: int = 0  # connections opened (1 per connection unless the node closed some)


def malformed_frame() -> bytes:
    """A framed 0200 whose body ends inside field 37 (the RRN): undecodable, but its MTI and STAN are readable."""
    msg = Message("0200", {2: "4761739001010010", 3: "000000", 4: "000000001000", 7: "1207101010", 11: "000777",
                           12: "101010", 13: "1207", 22: "012", 37: "777777777777", 41: "FLOOD001",
                           42: "BULKHEADFLOOD01", 49: "840"})
    body = SCHEME.encode(msg)
    cut = body.index(b"777777777777") + 3
    return LengthFraming("binary2").framer().encode(body[:cut])


async def _connection(spec: FloodSpec, share: float, frame: bytes, end: float, result: FloodResult) -> None:
    owed, last = 0.0, trio.current_time()
    while trio.current_time() < end:
        try:
            stream = await trio.open_tcp_stream(spec.host, spec.port)
        except OSError:
            await trio.sleep(spec.step)
            continue
        result.connects += 1
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(_drain, stream, nursery.cancel_scope, result)
            try:
                while (now := trio.current_time()) < end:
                    # Paced by the clock, not by steps: a reconnect takes no step's worth of frames of its own.
                    owed = min(owed + share * (now - last), share * 10 * spec.step)
                    last = now
                    count = int(owed)
                    owed -= count
                    if count:
                        await stream.send_all(frame * count)
                        result.sent += count
                    await trio.sleep(spec.step)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()


async def _drain(stream: trio.SocketStream, scope: trio.CancelScope, result: FloodResult) -> None:
    try:
        while data := await stream.receive_some(65536):
            result.answered_bytes += len(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()  # closed by the node: the sender reconnects


async def run_flood(spec: FloodSpec, t0: float) -> FloodResult:
    result = FloodResult()
    frame = malformed_frame()
    await trio.sleep(max(0.0, t0 - time.monotonic()))
    end = trio.current_time() + spec.seconds
    async with trio.open_nursery() as nursery:
        for _ in range(spec.connections):
            nursery.start_soon(_connection, spec, spec.rate / spec.connections, frame, end, result)
    return result


def flood_main(spec: FloodSpec, pipe: Connection) -> None:
    try:
        pipe.send("ready")
        t0 = pipe.recv()
        assert isinstance(t0, float)
        pipe.send(trio.run(run_flood, spec, t0))
    except Exception as exc:  # reported by the parent
        pipe.send(f"{type(exc).__name__}: {exc}")
    finally:
        pipe.close()
