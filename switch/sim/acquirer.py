"""The acquirer simulator: sends N requests (or requests for a duration) over C connections with up to K in
flight on each, optionally paced to a rate, matches the responses by the scheme's key and reports codes,
timeouts, late answers, throughput and latency percentiles.

Every request of a counted run is built, numbered and framed before the clock starts, so the measurement covers
the wire and the far side only; a run for a duration builds its requests as it goes (its figures then include
the simulator's own cost). Each connection has one reader, one batching writer and one task that expires
requests older than the timeout (a timed-out request frees its slot). An answer to a timed-out request is
counted as late, not matched; once everything is answered or timed out, the run waits up to ``late_wait_s`` for
the late answers still owed.

The default timeout (30 s) is well above a switch's own upstream timeouts (the demo's is 5 s): the switch is
expected to answer (91 when its issuer is slow), and that answer is what the simulator should show.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from switch.contracts.network import LinkOptions, Network
from switch.contracts.registry import network
from switch.infra.outbox import Outbox
from switch.model.errors import BulkheadError, FramingError, RemoteProtocolError
from switch.model.message import Message
from switch.sim.requests import FileRequest, Numbering, RequestTemplate, load_request_file
from switch.wire.framing import Framer

log = logging.getLogger("bulkhead.sim.acquirer")
READ_SIZE = 65536

# Called for every matched response: (request index, response, latency in seconds).
ResponseHook = Callable[[int, Message, float], None]
MatchKey = Hashable


class SimulatorError(BulkheadError):
    """The simulator cannot run (peer unreachable, nothing to send)."""


@dataclass(frozen=True)
class AcquirerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    scheme: str = "generic"
    framing: LinkOptions | None = None  # None: the network's default framing
    count: int | None = None  # None: each request of the file once, or 1 generated request
    connections: int = 1
    inflight: int = 1  # per connection
    timeout_s: float = 30.0
    requests_file: Path | None = None
    template: RequestTemplate = field(default_factory=RequestTemplate)
    seed: int | None = None  # STAN start offset (tests); None = random
    duration_s: float | None = None  # send for this long instead of a count
    rate: float | None = None  # requests per second over all connections; None: as fast as in-flight allows
    late_wait_s: float = 5.0  # after the last answer or timeout, how long to wait for answers owed late


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (0.0 when there are none); also the network simulator's
    (switch.sim.netcli). bench.phases.percentile is the same rule for the benchmark, which must not import switch
    into its generator processes."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class AcquirerReport:
    sent: int = 0
    received: int = 0  # matched responses
    timeouts: int = 0
    late: int = 0  # answers to requests that had timed out
    unmatched: int = 0  # responses that match nothing this run sent
    errors: int = 0  # undecodable responses, and requests lost with a broken connection
    interrupted: bool = False  # stopped by a signal (Ctrl-C): the figures cover the run so far
    unanswered: int = 0  # in flight when the run was interrupted
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, one per matched response
    elapsed: float = 0.0  # seconds from the first send to the last answer or timeout

    @property
    def tps(self) -> float:
        return self.received / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies in seconds (0.0 when nothing was answered)."""
        return percentile(sorted(self.latencies), p)

    def summary(self) -> str:
        ms = 1000.0
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.codes.items())) or "-"
        head = (f"interrupted after {self.elapsed:.3f} s: {self.unanswered} request(s) in flight not answered; "
                "the run so far:\n" if self.interrupted else "")
        return head + "\n".join((
            f"sent {self.sent}, answered {self.received}, timeouts {self.timeouts}, late {self.late}, "
            f"unmatched {self.unmatched}, errors {self.errors}",
            f"response codes: {codes}",
            f"elapsed {self.elapsed:.3f} s, {self.tps:.0f} TPS",
            f"latency ms: p50 {self.percentile(50) * ms:.2f}  p95 {self.percentile(95) * ms:.2f}  "
            f"p99 {self.percentile(99) * ms:.2f}  max {max(self.latencies, default=0.0) * ms:.2f}",
        ))


@dataclass(frozen=True, slots=True)
class _Prepared:
    index: int
    key: MatchKey
    wire: bytes


def _link(config: AcquirerConfig, adapter: Network) -> LinkOptions:
    return config.framing if config.framing is not None else adapter.link_options(None, None)


class _Source:
    """The run's requests by index: numbered, encoded and framed."""

    def __init__(self, config: AcquirerConfig, adapter: Network) -> None:
        if config.requests_file is not None:
            self.templates = load_request_file(config.requests_file, adapter.binary_fields)
        else:
            self.templates = [FileRequest(config.template.build())]
        self.numbering = Numbering(config.seed)
        self.framer = _link(config, adapter).framer()
        self.match_key = adapter.matcher(None)
        self.adapter = adapter
        self.terminal_id = config.template.terminal_id

    def make(self, index: int) -> _Prepared:
        request = self.templates[index % len(self.templates)]
        msg = self.numbering.stamp(request.message, index, self.terminal_id, request.omit)
        return _Prepared(index, self.match_key(msg), self.framer.encode(self.adapter.encode(msg)))


def prepare(config: AcquirerConfig, adapter: Network, source: _Source | None = None) -> list[_Prepared]:
    """All requests of a counted run, numbered, encoded and framed."""
    source = source if source is not None else _Source(config, adapter)
    count = config.count if config.count is not None else len(source.templates)
    return [source.make(index) for index in range(count)]


async def run_acquirer(config: AcquirerConfig, on_response: ResponseHook | None = None,
                       report: AcquirerReport | None = None) -> AcquirerReport:
    """Run, filling ``report`` as it goes (so a caller that cancels the run still has the figures so far)."""
    if config.connections < 1 or config.inflight < 1 or config.timeout_s <= 0:
        raise SimulatorError("connections, inflight and timeout must be positive")
    if (config.duration_s is not None and config.duration_s <= 0) or (config.rate is not None and config.rate <= 0):
        raise SimulatorError("duration and rate must be positive")
    if config.duration_s is not None and config.count is not None:
        raise SimulatorError("give a count or a duration, not both")
    adapter = network(config.scheme)
    source = _Source(config, adapter)
    prepared = prepare(config, adapter, source) if config.duration_s is None else None
    report = report if report is not None else AcquirerReport()
    streams: list[trio.SocketStream] = []
    start: float | None = None
    try:
        wanted = config.connections if prepared is None else min(config.connections, max(1, len(prepared)))
        for _ in range(wanted):
            streams.append(await _connect(config))
        n = len(streams)
        links = [
            _Link(stream, _link(config, adapter).framer(), adapter,
                  _Plan(prepared[i::n] if prepared is not None else None, source, i, n,
                        config.rate, config.duration_s),
                  config, report, on_response)
            for i, stream in enumerate(streams)
        ]
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for link in links:
                nursery.start_soon(link.run, start)
    finally:
        if start is not None:
            report.elapsed = time.perf_counter() - start
        for stream in streams:
            with trio.CancelScope(shield=True):
                await stream.aclose()
    return report


@dataclass(frozen=True)
class _Plan:
    """What one connection sends: its share of a counted run's requests (``items``), or, for a duration, the
    indexes ``offset``, ``offset + stride``, ... built as it goes. With ``rate`` (per second, over all
    connections) request i leaves at start + i / rate, whichever connection carries it."""

    items: Sequence[_Prepared] | None
    source: _Source
    offset: int
    stride: int
    rate: float | None
    duration_s: float | None


async def _connect(config: AcquirerConfig) -> trio.SocketStream:
    try:
        return await trio.open_tcp_stream(config.host, config.port)
    except OSError as exc:
        raise SimulatorError(f"cannot connect to {config.host}:{config.port}: {exc.strerror or exc}") from None


class _Link:
    """One connection of the run: sender, reader and reaper around a pending table."""

    def __init__(self, stream: trio.SocketStream, framer: Framer, adapter: Network, plan: _Plan,
                 config: AcquirerConfig, report: AcquirerReport, on_response: ResponseHook | None) -> None:
        self.stream = stream
        self.framer = framer
        self.adapter = adapter
        self.match_key = adapter.matcher(None)
        self.plan = plan
        self.limit = config.inflight
        self.timeout = config.timeout_s
        self.late_wait = config.late_wait_s
        self.report = report
        self.on_response = on_response
        self.outbox = Outbox()
        self.pending: dict[MatchKey, tuple[int, float]] = {}
        self.expired: dict[MatchKey, int] = {}  # timed out, answer still owed (counted late when it comes)
        self.order: deque[tuple[float, MatchKey, int]] = deque()  # send order, for the reaper
        self.next_item = 0  # requests this connection has sent
        self.sending = True
        self.peer_gone = False
        self.space = trio.Event()
        self.done = trio.Event()
        self.late_done = trio.Event()

    async def run(self, start: float) -> None:
        finished = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.outbox.run, self.stream, nursery.cancel_scope)
                nursery.start_soon(self._reader)
                nursery.start_soon(self._reaper)
                nursery.start_soon(self._sender, start)
                await self.done.wait()
                if self.expired and not self.peer_gone:
                    with trio.move_on_after(self.late_wait):  # answers owed for timed-out requests
                        await self.late_done.wait()
                nursery.cancel_scope.cancel()
            finished = True
        finally:
            if not finished:  # interrupted: what is in flight is reported as such, not as an error
                self.report.unanswered += len(self.pending)
                self.pending.clear()
        self._abandon()

    def _take(self, room: int) -> Sequence[_Prepared]:
        plan = self.plan
        if plan.items is not None:
            return plan.items[self.next_item:self.next_item + room]
        first = self.next_item
        return [plan.source.make(plan.offset + plan.stride * (first + k)) for k in range(room)]

    def _left(self) -> int | None:
        """Requests still to send (None: as many as the duration allows)."""
        return None if self.plan.items is None else len(self.plan.items) - self.next_item

    async def _sender(self, start: float) -> None:
        plan = self.plan
        stop_at = start + plan.duration_s if plan.duration_s is not None else math.inf
        rate = plan.rate or 0.0
        while self._left() != 0:
            now = time.perf_counter()
            if now >= stop_at:
                break
            room = self.limit - len(self.pending)
            if room <= 0:
                self.space = trio.Event()
                with trio.move_on_at(trio.current_time() + (stop_at - now)):
                    await self.space.wait()
                continue
            if rate:  # paced (requests behind their time catch up at once)
                due_by_now = self._due(min(now, stop_at) - start, rate) - self.next_item
                if due_by_now <= 0:
                    next_at = start + (plan.offset + self.next_item * plan.stride) / rate
                    await trio.sleep(min(next_at, stop_at) - now)
                    continue
                room = min(room, due_by_now)
            left = self._left()
            batch = self._take(room if left is None else min(room, left))
            self.next_item += len(batch)
            now = time.perf_counter()
            for item in batch:
                self.pending[item.key] = (item.index, now)
                self.order.append((now, item.key, item.index))
            self.report.sent += len(batch)
            self.outbox.put_many([item.wire for item in batch])
        self.sending = False
        self._check_done()

    def _due(self, elapsed: float, rate: float) -> int:
        """How many of this connection's requests are due ``elapsed`` seconds into a paced run: its n-th
        (from 0) is the run's request offset + n * stride, due at that index / rate."""
        reached = elapsed * rate - self.plan.offset
        return 0 if reached < 0 else math.floor(reached / self.plan.stride) + 1

    def _check_done(self) -> None:
        if not self.sending and not self.pending:
            self.done.set()

    def _freed(self) -> None:
        self.space.set()
        self._check_done()

    async def _reader(self) -> None:
        try:
            while True:
                data = await self.stream.receive_some(READ_SIZE)
                if not data:
                    break
                self.framer.receive_data(data)
                while (frame := self.framer.next_frame()) is not None:
                    if frame.keepalive:
                        reply = self.framer.keepalive_reply(frame)
                        if reply is not None:
                            self.outbox.put(reply)
                        continue
                    self._on_response(frame.body)
                self._freed()
        except FramingError as exc:
            log.warning("acquirer simulator: closing connection: %s", exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        # The peer is gone: whatever is still pending or unsent will never be answered.
        self.peer_gone = True
        self.done.set()

    def _on_response(self, body: bytes) -> None:
        now = time.perf_counter()
        try:
            msg = self.adapter.decode(body)
        except RemoteProtocolError as exc:
            self.report.errors += 1
            log.warning("acquirer simulator: undecodable response: %s", exc)
            return
        key = self.match_key(msg)
        entry = self.pending.pop(key, None)
        if entry is None:
            if self.expired.pop(key, None) is not None:
                self.report.late += 1
                if not self.expired:
                    self.late_done.set()
            else:
                self.report.unmatched += 1
            return
        index, sent_at = entry
        latency = now - sent_at
        self.report.received += 1
        self.report.codes[msg.response_code or "??"] += 1
        self.report.latencies.append(latency)
        if self.on_response is not None:
            self.on_response(index, msg, latency)

    async def _reaper(self) -> None:
        tick = min(max(self.timeout / 10, 0.005), 0.1)
        order = self.order
        while True:
            await trio.sleep(tick)
            deadline = time.perf_counter() - self.timeout
            expired = 0
            while order:
                sent_at, key, index = order[0]
                entry = self.pending.get(key)
                if entry is not None and entry[0] == index and sent_at > deadline:
                    break  # the oldest request still in flight is not due yet
                order.popleft()
                if entry is not None and entry[0] == index:
                    del self.pending[key]
                    self.expired[key] = index
                    expired += 1
            if expired:
                self.report.timeouts += expired
                self._freed()

    def _abandon(self) -> None:
        """Count what a dead connection left unanswered or unsent."""
        lost = len(self.pending) + (self._left() or 0)
        self.report.errors += lost
        self.pending.clear()
        self.sending = False
