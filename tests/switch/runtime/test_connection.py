"""A connection's output queue bound: the frame that would go over it is refused, not sent."""

from __future__ import annotations

import pytest
import trio

from switch.exchange.ports import ConnectionClosed
from switch.runtime.links.connection import Connection
from switch.wire.framing import LengthFraming


class _Recorder(trio.abc.Stream):
    def __init__(self) -> None:
        self.sent = b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += bytes(data)

    async def wait_send_all_might_not_block(self) -> None:
        pass

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.sleep_forever()
        return b""  # pragma: no cover

    async def aclose(self) -> None:
        pass


async def test_a_frame_over_the_queue_bound_is_refused_and_never_written() -> None:
    stream = _Recorder()
    conn = Connection(stream, LengthFraming("binary2").framer(), link="acq", peer="p", max_queued_bytes=16)
    conn.send_frame(b"0210 accepted")  # 15 bytes framed: within the bound
    with pytest.raises(ConnectionClosed):
        conn.send_frame(b"0210 approval")  # the caller reverses this one: it must not reach the peer
    with trio.fail_after(5):
        await conn.run_writer()
    assert stream.sent == b"\x00\x0d0210 accepted"
