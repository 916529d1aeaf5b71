"""The batching writer: everything queued between two sends goes out in one ``send_all``."""

from __future__ import annotations

import trio
import trio.testing

from switch.infra.outbox import Outbox


class RecordingStream(trio.abc.SendStream):
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.broken = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.broken:
            raise trio.BrokenResourceError
        self.writes.append(bytes(data))
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_queued_frames_leave_in_one_write() -> None:
    stream = RecordingStream()
    outbox = Outbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run, stream, nursery.cancel_scope)
        outbox.put(b"a")
        outbox.put_many([b"bb", b"ccc"])
        await trio.testing.wait_all_tasks_blocked()
        outbox.put(b"d")
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert stream.writes == [b"abbccc", b"d"]
    assert outbox.sends == 2


async def test_broken_stream_cancels_the_connection_scope() -> None:
    stream = RecordingStream()
    stream.broken = True
    outbox = Outbox()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.run, stream, nursery.cancel_scope)
            outbox.put(b"x")
            await trio.sleep_forever()  # ended by the writer's cancel
