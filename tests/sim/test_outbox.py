"""The batching writer: everything queued between two sends goes out in one ``send_all``."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from switch.config import SimulatorConfig
from switch.infra.outbox import Outbox
from switch.sim.issuer import IssuerConfig
from switch.sim.rules import Rule
from switch.wire.framing import FramingConfig


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


def test_issuer_config_from_node_config(tmp_path: Path) -> None:
    rules = tmp_path / "issuer-rules.toml"
    rules.write_text("[[rules]]\naction = 'drop'\nbin = '422222'\n", encoding="utf-8")
    sim = SimulatorConfig("demo-issuer", "127.0.0.1", 9583, "generic", FramingConfig("bcd2"), rules)
    config = IssuerConfig.from_node_config(sim)
    assert (config.host, config.port, config.scheme, config.framing) == (
        "127.0.0.1", 9583, "generic", FramingConfig("bcd2")
    )
    assert config.rules.rules == (Rule("drop", bin="422222"),)
    bare = IssuerConfig.from_node_config(SimulatorConfig("x", "::1", 0, "generic", FramingConfig("binary2")))
    assert bare.rules.rules == ()
