"""A connection's reader gives up on a peer that sends no frame, trickles one, or sends bytes that never make
a frame; only complete frames reset the idle timer; a big batch of frames does not hold the event loop."""

from __future__ import annotations

import contextlib
import itertools

import trio
import trio.testing

from switch.runtime.links.connection import (
    FIRST_FRAME_TIMEOUT,
    FRAME_TIMEOUT,
    FRAMES_PER_TURN,
    IDLE_TIMEOUT,
    Connection,
)
from switch.wire.framing import Frame, LengthFraming

FRAMER = LengthFraming("binary2")


def _frame(body: bytes = b"0800hello") -> bytes:
    return FRAMER.framer().encode(body)


async def _read_all(conn: Connection) -> tuple[list[Frame], float]:
    """Every frame the reader yields until it gives up, and when it did (trio clock)."""
    frames = [frame async for frame in conn.frames()]
    return frames, trio.current_time()


def _conn(stream: trio.abc.Stream, **timeouts: float) -> Connection:
    return Connection(stream, FRAMER.framer(), link="acq", peer="10.0.0.9:4000", **timeouts)


async def test_a_silent_peer_is_dropped_at_the_first_frame_deadline(autojump_clock: trio.testing.MockClock) -> None:
    _peer, ours = trio.testing.memory_stream_pair()
    start = trio.current_time()
    conn = _conn(ours, idle_timeout=600, first_frame_timeout=2, frame_timeout=5)
    frames, ended = await _read_all(conn)
    assert frames == [] and conn.end_reason == FIRST_FRAME_TIMEOUT
    assert ended - start == 2


async def test_a_trickled_frame_is_dropped_at_its_deadline_whatever_the_bytes_keep_coming(
    autojump_clock: trio.testing.MockClock,
) -> None:
    peer, ours = trio.testing.memory_stream_pair()
    conn = _conn(ours, idle_timeout=600, first_frame_timeout=60, frame_timeout=3)
    data = _frame(b"0800" + b"x" * 100)

    async def trickle() -> None:
        await peer.send_all(_frame())  # one good frame first: the first-frame deadline is met
        await trio.sleep(10)
        for byte in data:
            await peer.send_all(bytes([byte]))
            await trio.sleep(0.5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        start = trio.current_time()
        frames, ended = await _read_all(conn)
        nursery.cancel_scope.cancel()
    assert len(frames) == 1 and conn.end_reason == FRAME_TIMEOUT
    assert ended - start == 13  # the second frame's first byte at 10 s, its deadline 3 s later


async def test_only_complete_frames_reset_the_idle_timer(autojump_clock: trio.testing.MockClock) -> None:
    peer, ours = trio.testing.memory_stream_pair()
    conn = _conn(ours, idle_timeout=2, first_frame_timeout=60, frame_timeout=60)

    async def talk() -> None:
        for _ in range(5):  # a frame a second: never idle for 2 s
            await peer.send_all(_frame())
            await trio.sleep(1)
        half = _frame()[:3]  # then bytes that never complete a frame
        await peer.send_all(half)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(talk)
        start = trio.current_time()
        frames, ended = await _read_all(conn)
        nursery.cancel_scope.cancel()
    assert len(frames) == 5 and conn.end_reason == IDLE_TIMEOUT
    assert ended - start == 6  # 2 s after the last complete frame (at 4 s); the partial one reset nothing


async def test_keepalives_keep_a_connection_that_has_sent_a_message(autojump_clock: trio.testing.MockClock) -> None:
    peer, ours = trio.testing.memory_stream_pair()
    conn = _conn(ours, idle_timeout=2, first_frame_timeout=1, frame_timeout=1)

    async def keepalives() -> None:
        await peer.send_all(_frame())
        for _ in range(10):
            await peer.send_all(b"\x00\x00")
            await trio.sleep(1.5)
        await peer.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(keepalives)
        frames, _ = await _read_all(conn)
    assert len(frames) == 11 and conn.end_reason is None  # ended by the peer's close, not a timeout


async def test_keepalives_alone_do_not_meet_the_first_message_deadline(autojump_clock: trio.testing.MockClock) -> None:
    # Two bytes every few seconds must not hold a slot for ever: the first-frame deadline waits for a message.
    peer, ours = trio.testing.memory_stream_pair()
    conn = _conn(ours, idle_timeout=600, first_frame_timeout=5, frame_timeout=1)

    async def keepalives() -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            for _ in range(20):
                await peer.send_all(b"\x00\x00")
                await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(keepalives)
        frames, elapsed = await _read_all(conn)
        nursery.cancel_scope.cancel()
    assert all(f.keepalive for f in frames) and conn.end_reason == FIRST_FRAME_TIMEOUT
    assert 5 <= elapsed < 6


async def test_a_batch_of_frames_yields_to_other_tasks() -> None:
    peer, ours = trio.testing.memory_stream_pair()
    conn = _conn(ours)
    batch = 50 * FRAMES_PER_TURN
    seen_by_other: list[int] = []
    handled = 0

    async def other() -> None:
        while handled < batch:
            seen_by_other.append(handled)
            await trio.lowlevel.checkpoint()

    await peer.send_all(_frame() * batch)  # one read carries all of them
    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        async with contextlib.aclosing(conn.frames()) as frames:
            async for _ in frames:
                handled += 1
                if handled == batch:
                    break
    # The other task ran between every FRAMES_PER_TURN frames, not only once the batch was done (trio runs each
    # runnable task once per scheduling round in a random order, so two turns of the reader may fall between
    # two looks of the other task).
    progress = sorted(set(seen_by_other))
    assert len(progress) >= batch // (2 * FRAMES_PER_TURN)
    assert all(b - a <= 2 * FRAMES_PER_TURN for a, b in itertools.pairwise(progress))


def test_the_per_peer_cap_counts_an_ipv6_host_by_its_64() -> None:
    from switch.runtime.links.inbound import _peer_group

    assert _peer_group("192.0.2.7") == "192.0.2.7"
    assert _peer_group("2001:db8:1:2::a") == _peer_group("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert _peer_group("2001:db8:1:3::a") != _peer_group("2001:db8:1:2::a")
