"""Admission control (issue 11 item 10): a listener offered more than its node can process answers 91 at once to what
it cannot take in time, takes what it does take in time, never sheds reversals or advices, keeps one peer's flood
from starving another, and recovers as soon as the load falls.

The node here is a fake whose every exchange blocks the event loop for a few milliseconds (time.sleep), the way
real processing does, so a burst of requests is more than it can do within the listener's max_wait_ms.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from schemes.generic import SCHEME
from switch.config import ListenerConfig
from switch.model.message import Message
from switch.runtime.links.admission import FULL, OVERDUE, WAITED
from switch.runtime.links.connection import Connection
from switch.runtime.links.hooks import LinkHooks
from switch.runtime.links.inbound import Listener
from switch.wire.framing import Frame, LengthFraming
from tests.integration.harness import purchase

FRAMER = LengthFraming("binary2")
COST_S = 0.005  # what one exchange costs the fake node: 200 a second


class SlowNode:
    """Answers 00 to every request it is given, after COST_S of blocking work; keeps what it took, in order."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, str, str]] = []  # (terminal, MTI, STAN)

    def on_request(self, _source: str, conn: Connection, frame: Frame, msg: Message) -> None:
        conn.exchange_started()
        time.sleep(COST_S)
        self.taken.append((str(msg.get(41)), msg.mti, str(msg.stan)))
        conn.send_frame(SCHEME.encode(SCHEME.make_response(msg, "00")), reply_to=frame)
        conn.exchange_done()

    def on_format_error(self, *_args: Any) -> None:
        raise AssertionError("no malformed frame is sent here")


@asynccontextmanager
async def serving(node: SlowNode, **limits: int) -> AsyncIterator[Listener]:
    cfg = ListenerConfig(name="acq", host="127.0.0.1", port=0, scheme="generic",
                         options=SCHEME.link_options(None, None), **limits)
    listener = Listener(cfg, SCHEME, LinkHooks(node.on_request, node.on_format_error))
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.run)
        yield listener
        nursery.cancel_scope.cancel()


class Acquirer:
    """One connection that sends a burst in one write and notes when each answer came back, by STAN."""

    def __init__(self, stream: trio.SocketStream, terminal: str) -> None:
        self.stream = stream
        self.terminal = terminal
        self.framer = FRAMER.framer()
        self.sent_at: dict[str, float] = {}
        self.answers: dict[str, list[tuple[str, str, float]]] = {}  # STAN -> [(MTI, code, latency)]

    async def send(self, messages: list[Message]) -> None:
        now = trio.current_time()
        for msg in messages:
            self.sent_at[str(msg.stan)] = now
        await self.stream.send_all(b"".join(FRAMER.framer().encode(SCHEME.encode(m)) for m in messages))

    async def read_until(self, count: int, timeout: float = 20.0) -> None:
        with trio.fail_after(timeout):
            while sum(len(a) for a in self.answers.values()) < count:
                data = await self.stream.receive_some(65536)
                assert data, "the listener closed the connection"
                now = trio.current_time()
                self.framer.receive_data(bytes(data))
                while (frame := self.framer.next_frame()) is not None:
                    msg = SCHEME.decode(frame.body)
                    stan = str(msg.stan)
                    self.answers.setdefault(stan, []).append((msg.mti, str(msg[39]), now - self.sent_at[stan]))

    def codes(self) -> Counter[str]:
        return Counter(code for answers in self.answers.values() for _, code, _ in answers)


@asynccontextmanager
async def acquirer(listener: Listener, terminal: str = "TERM0001") -> AsyncIterator[Acquirer]:
    assert listener.port is not None
    async with await trio.open_tcp_stream("127.0.0.1", listener.port) as stream:
        yield Acquirer(stream, terminal)


def burst(n: int, first_stan: int, terminal: str = "TERM0001") -> list[Message]:
    return [purchase(stan=first_stan + i, terminal=terminal) for i in range(n)]


async def test_a_burst_beyond_capacity_is_shed_at_once_and_what_is_taken_is_taken_in_time() -> None:
    node = SlowNode()
    # 300 requests at 5 ms each is 1.5 s of work; the listener gives a request 200 ms in its backlog.
    async with serving(node, max_wait_ms=200) as listener, acquirer(listener) as acq:
        await acq.send(burst(300, 1000))
        await acq.read_until(300)
    # Every request answered exactly once: taken ones 00 by the node, the others 91 by the listener at once.
    assert sorted(acq.answers) == sorted(f"{1000 + i:06d}" for i in range(300))
    assert all(len(a) == 1 for a in acq.answers.values())
    codes = acq.codes()
    assert set(codes) == {"00", "91"} and codes["00"] == len(node.taken)
    shed = listener.backlog.shed
    assert codes["91"] == sum(shed.values()) and shed[WAITED] + shed[OVERDUE] == codes["91"]
    assert listener.received == 300
    # Without admission the last 00 would leave 1.5 s after it was sent, and every one of them would be late for
    # an acquirer with a 1 s deadline; with it, what is taken is taken within max_wait_ms (plus its own turn).
    latencies = {code: [lat for a in acq.answers.values() for _, c, lat in a if c == code] for code in codes}
    assert max(latencies["00"]) < 1.0 and max(latencies["91"]) < 1.0
    # A connection's requests are taken in the order they were sent.
    stans = [stan for _, _, stan in node.taken]
    assert stans == sorted(stans)
    status = listener.status()
    assert status["backlog"] == 0 and status["shed"] == shed and isinstance(status["backlog_peak"], int)


async def test_reversals_and_advices_are_never_shed_however_long_they_waited() -> None:
    node = SlowNode()
    async with serving(node, max_wait_ms=100) as listener, acquirer(listener) as acq:
        money = [purchase(stan=5001, mti="0420"), purchase(stan=5002, mti="0220"), purchase(stan=5003, mti="0421")]
        await acq.send([*burst(200, 3000), *money])
        await acq.read_until(203)
    assert acq.codes()["91"] > 0  # the burst was shed in part...
    for msg in money:  # ...but what brings money back or records it went to the node, behind the burst
        ((mti, code, _),) = acq.answers[str(msg.stan)]
        assert (mti, code) == (SCHEME.make_response(msg, "00").mti, "00")
        assert (msg.get(41), msg.mti, msg.stan) in node.taken


async def test_one_peer_flooding_does_not_starve_another() -> None:
    node = SlowNode()
    # Nothing is shed here (max_wait_ms is long): the flood's 600 frames are 3 s of work, and the quiet peer's
    # request must not wait behind them.
    async with serving(node, max_wait_ms=5000) as listener, \
            acquirer(listener, "FLOOD001") as flood, acquirer(listener, "QUIET001") as quiet:
        await flood.send(burst(600, 10_000, terminal="FLOOD001"))
        await trio.sleep(0.05)
        one = purchase(stan=20_000, terminal="QUIET001")
        await quiet.send([one])
        await quiet.read_until(1)
        await flood.read_until(600)
    # The quiet peer's request takes its turn beside the flood (a few frames each), not behind 600 frames of it.
    ((mti, code, latency),) = quiet.answers["020000"]
    assert (mti, code) == ("0210", "00") and latency < 1.0
    assert flood.codes() == {"00": 600}, listener.backlog.shed


async def test_shedding_stops_when_the_load_falls_and_the_log_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bulkhead.link")
    node = SlowNode()
    async with serving(node, max_wait_ms=100) as listener, acquirer(listener) as acq:
        await acq.send(burst(200, 30_000))
        await acq.read_until(200)
        assert listener.status()["shedding"] is True
        await trio.sleep(1.2)  # nothing shed for a second: the overload is over
        await acq.send([purchase(stan=31_000)])
        await acq.read_until(201)
        assert acq.answers["031000"][0][1] == "00"
        assert listener.status()["shedding"] is False
    lines = [r.getMessage() for r in caplog.records]
    started = [line for line in lines if "overloaded: answering 91 at once" in line]
    stopped = [line for line in lines if "stopped shedding" in line]
    assert len(started) == 1 and len(stopped) == 1
    assert f"{acq.codes()['91']} requests shed" in stopped[0]


async def test_a_full_backlog_sheds_requests_on_arrival_and_still_queues_what_may_not_be_shed() -> None:
    node = SlowNode()
    async with serving(node, max_wait_ms=10_000, max_backlog=20) as listener, acquirer(listener) as acq:
        reversal = purchase(stan=45_000, mti="0400")
        await acq.send([*burst(200, 40_000), reversal])
        await acq.read_until(201)
    assert listener.backlog.shed[FULL] == acq.codes()["91"] > 0
    assert acq.answers["045000"][0][:2] == ("0410", "00")
    assert len(node.taken) == acq.codes()["00"]


async def test_a_frame_whose_handling_fails_closes_its_connection_and_the_listener_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken(SlowNode):
        def on_request(self, source: str, conn: Connection, frame: Frame, msg: Message) -> None:
            if msg.stan == "000666":
                raise RuntimeError("a bug in one exchange")
            super().on_request(source, conn, frame, msg)

    node = Broken()
    async with serving(node) as listener:
        async with acquirer(listener) as bad:
            await bad.send([purchase(stan=666)])
            with trio.fail_after(5):
                assert await bad.stream.receive_some(100) == b""  # let go
        async with acquirer(listener) as good:
            await good.send([purchase(stan=667)])
            await good.read_until(1)
        assert good.answers["000667"][0][1] == "00"
    assert any("frame from" in r.getMessage() and "RuntimeError" in r.getMessage() for r in caplog.records)


async def test_a_repeat_is_never_shed() -> None:
    node = SlowNode()
    async with serving(node, max_wait_ms=100) as listener, acquirer(listener) as acq:
        repeat = purchase(stan=50_999, mti="0201")
        await acq.send([*burst(200, 50_000), repeat])
        await acq.read_until(201)
    assert acq.codes()["91"] > 0
    ((mti, code, _),) = acq.answers["050999"]
    assert (mti, code) == ("0210", "00") and ("TERM0001", "0201", "050999") in node.taken


class AsyncNode:
    """Exchanges that wait for a slow destination (no CPU): what queues behind a connection's in-flight limit
    waits for its own requests, not for the node."""

    def __init__(self, nursery: trio.Nursery, delay: float) -> None:
        self.nursery = nursery
        self.delay = delay
        self.most = 0

    def on_request(self, _source: str, conn: Connection, frame: Frame, msg: Message) -> None:
        conn.exchange_started()
        self.most = max(self.most, conn.inflight)
        self.nursery.start_soon(self._answer, conn, frame, msg)

    async def _answer(self, conn: Connection, frame: Frame, msg: Message) -> None:
        await trio.sleep(self.delay)
        conn.send_frame(SCHEME.encode(SCHEME.make_response(msg, "00")), reply_to=frame)
        conn.exchange_done()

    def on_format_error(self, *_args: Any) -> None:
        raise AssertionError("no malformed frame is sent here")


async def test_a_peer_waiting_for_its_own_slow_exchanges_is_slowed_never_shed() -> None:
    async with trio.open_nursery() as nursery:
        node = AsyncNode(nursery, delay=0.15)
        cfg = ListenerConfig(name="acq", host="127.0.0.1", port=0, scheme="generic",
                             options=SCHEME.link_options(None, None), max_wait_ms=100, max_inflight_per_connection=4)
        listener = Listener(cfg, SCHEME, LinkHooks(node.on_request, node.on_format_error))
        await nursery.start(listener.run)
        async with acquirer(listener) as acq:
            # 40 requests in one write, 4 at a time: the last waits about 1.5 s, all of it behind its own
            # connection's requests at a 150 ms destination, none of it for the (idle) node.
            await acq.send(burst(40, 60_000))
            await acq.read_until(40)
        nursery.cancel_scope.cancel()
    assert acq.codes() == {"00": 40} and node.most == 4
    assert sum(listener.backlog.shed.values()) == 0


async def test_requests_queued_by_a_connection_that_closes_are_dropped_and_its_reversal_still_goes_through() -> None:
    node = SlowNode()
    async with serving(node, max_wait_ms=10_000) as listener:
        async with acquirer(listener) as first:  # keeps the node busy so that the next connection's frames queue
            await first.send(burst(100, 70_000))
            async with acquirer(listener, "GONE0001") as gone:
                await gone.send([*burst(50, 80_000, terminal="GONE0001"),
                                 purchase(stan=80_999, mti="0420", terminal="GONE0001")])
            await first.read_until(100)
        with trio.fail_after(10):
            while ("GONE0001", "0420", "080999") not in node.taken:
                await trio.sleep(0.01)
        assert len(listener.backlog) == 0
    taken_gone = [t for t in node.taken if t[0] == "GONE0001"]
    # What the closed connection had queued was dropped (nobody to answer), except its reversal.
    assert taken_gone[-1] == ("GONE0001", "0420", "080999")
    assert listener.backlog.dropped + len(taken_gone) == 51
