"""The acquirer simulator: sends N requests over C connections with up to K in flight on each, matches the
responses by the scheme's key and reports codes, timeouts, throughput and latency percentiles.

Every request is built, numbered and framed before the clock starts, so the measurement covers the wire and
the far side only. Each connection has one reader, one batching writer and one task that expires requests
older than the timeout (a timed-out request frees its slot; its late answer is counted, not matched).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from switch.contracts.network import LinkOptions, Network
from switch.contracts.registry import network
from switch.infra.outbox import Outbox
from switch.model.errors import BulkheadError, FramingError, RemoteProtocolError
from switch.model.message import Message
from switch.sim.requests import Numbering, RequestTemplate, load_requests
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
    timeout_s: float = 5.0
    requests_file: Path | None = None
    template: RequestTemplate = field(default_factory=RequestTemplate)
    seed: int | None = None  # STAN start offset (tests); None = random


@dataclass
class AcquirerReport:
    sent: int = 0
    received: int = 0  # matched responses
    timeouts: int = 0
    late: int = 0  # responses that matched nothing in flight (after their timeout, or unknown)
    errors: int = 0  # undecodable responses, and requests lost with a broken connection
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, one per matched response
    elapsed: float = 0.0  # seconds from the first send to the last answer or timeout

    @property
    def tps(self) -> float:
        return self.received / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies in seconds (0.0 when nothing was answered)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]

    def summary(self) -> str:
        ms = 1000.0
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.codes.items())) or "-"
        return "\n".join((
            f"sent {self.sent}, answered {self.received}, timeouts {self.timeouts}, late {self.late}, "
            f"errors {self.errors}",
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


def prepare(config: AcquirerConfig, adapter: Network) -> list[_Prepared]:
    """All requests of the run, numbered, encoded and framed."""
    if config.requests_file is not None:
        templates = load_requests(config.requests_file, adapter.binary_fields)
    else:
        templates = [config.template.build()]
    count = config.count if config.count is not None else len(templates)
    numbering = Numbering(config.seed)
    framer = _link(config, adapter).framer()
    match_key = adapter.matcher(None)
    out = []
    for index in range(count):
        msg = numbering.stamp(templates[index % len(templates)], index, config.template.terminal_id)
        out.append(_Prepared(index, match_key(msg), framer.encode(adapter.encode(msg))))
    return out


async def run_acquirer(config: AcquirerConfig, on_response: ResponseHook | None = None) -> AcquirerReport:
    if config.connections < 1 or config.inflight < 1 or config.timeout_s <= 0:
        raise SimulatorError("connections, inflight and timeout must be positive")
    adapter = network(config.scheme)
    prepared = prepare(config, adapter)
    report = AcquirerReport()
    streams: list[trio.SocketStream] = []
    try:
        for _ in range(min(config.connections, max(1, len(prepared)))):
            streams.append(await _connect(config))
        links = [
            _Link(stream, _link(config, adapter).framer(), adapter, prepared[i::len(streams)], config, report,
                  on_response)
            for i, stream in enumerate(streams)
        ]
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for link in links:
                nursery.start_soon(link.run)
        report.elapsed = time.perf_counter() - start
    finally:
        for stream in streams:
            await stream.aclose()
    return report


async def _connect(config: AcquirerConfig) -> trio.SocketStream:
    try:
        return await trio.open_tcp_stream(config.host, config.port)
    except OSError as exc:
        raise SimulatorError(f"cannot connect to {config.host}:{config.port}: {exc.strerror or exc}") from None


class _Link:
    """One connection of the run: sender, reader and reaper around a pending table."""

    def __init__(self, stream: trio.SocketStream, framer: Framer, adapter: Network,
                 items: list[_Prepared], config: AcquirerConfig, report: AcquirerReport,
                 on_response: ResponseHook | None) -> None:
        self.stream = stream
        self.framer = framer
        self.adapter = adapter
        self.match_key = adapter.matcher(None)
        self.items = items
        self.limit = config.inflight
        self.timeout = config.timeout_s
        self.report = report
        self.on_response = on_response
        self.outbox = Outbox()
        self.pending: dict[MatchKey, tuple[int, float]] = {}
        self.order: deque[tuple[float, MatchKey, int]] = deque()  # send order, for the reaper
        self.next_item = 0
        self.space = trio.Event()
        self.done = trio.Event()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.outbox.run, self.stream, nursery.cancel_scope)
            nursery.start_soon(self._reader)
            nursery.start_soon(self._reaper)
            nursery.start_soon(self._sender)
            await self.done.wait()
            nursery.cancel_scope.cancel()
        self._abandon()

    async def _sender(self) -> None:
        items = self.items
        while self.next_item < len(items):
            room = self.limit - len(self.pending)
            if room <= 0:
                self.space = trio.Event()
                await self.space.wait()
                continue
            batch = items[self.next_item:self.next_item + room]
            self.next_item += len(batch)
            now = time.perf_counter()
            for item in batch:
                self.pending[item.key] = (item.index, now)
                self.order.append((now, item.key, item.index))
            self.report.sent += len(batch)
            self.outbox.put_many([item.wire for item in batch])
        self._check_done()

    def _check_done(self) -> None:
        if self.next_item >= len(self.items) and not self.pending:
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
        self.done.set()

    def _on_response(self, body: bytes) -> None:
        now = time.perf_counter()
        try:
            msg = self.adapter.decode(body)
        except RemoteProtocolError as exc:
            self.report.errors += 1
            log.warning("acquirer simulator: undecodable response: %s", exc)
            return
        entry = self.pending.pop(self.match_key(msg), None)
        if entry is None:
            self.report.late += 1
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
                    expired += 1
            if expired:
                self.report.timeouts += expired
                self._freed()

    def _abandon(self) -> None:
        """Count what a dead connection left unanswered or unsent."""
        lost = len(self.pending) + len(self.items) - self.next_item
        self.report.errors += lost
        self.pending.clear()
        self.next_item = len(self.items)
