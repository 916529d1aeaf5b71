"""A fleet of simulated ATMs (``bulkhead sim atm``): N terminals, each its own connection and keys, serving customers
at a rate over the whole fleet, then draining what they owe the host and reporting (:mod:`switch.sim.atmreport`).

The run: every terminal connects, exchanges keys and signs on (:mod:`switch.sim.atmterminal`); once all are in service
(or refused, or ``start_timeout_s`` passed) the customers start: at ``rate`` a second over the fleet (customer i walks
up at start + i / rate, to whichever terminal is free), or, with no rate, each terminal serving the next customer as
soon as the last one is done. ``warmup_s`` of them are not measured; the run ends after ``duration_s`` more seconds or
``count`` customers (or when :meth:`Fleet.stop` is called: the first Ctrl-C), and each terminal then forwards its
store-and-forward queue for up to ``drain_s`` seconds and signs off.

Demo and tests only: the terminals' keys live in the software HSM under the public Thales test LMK.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import trio

from hsm.testing import TestPinPad
from switch.contracts.network import LinkOptions
from switch.contracts.registry import network
from switch.model.errors import BulkheadError
from switch.sim.atmcash import DEFAULT_CASSETTES, Cassettes
from switch.sim.atmkeys import TerminalKeys, sim_hsm, tmk_problem
from switch.sim.atmreport import FleetReport
from switch.sim.atmshared import CardPool, SimCard, TerminalSettings, Window
from switch.sim.atmterminal import Connect, Terminal

log = logging.getLogger("bulkhead.sim.atm")
MEASURING = "measuring for"  # the log line a benchmark waits for (bench.origin does the same for the networks)
TERMINAL_ID_LENGTH = 8


class FleetError(BulkheadError):
    """The fleet cannot run (no keys for a terminal, no terminal let in by the host, nothing to connect to)."""


def terminal_ids(prefix: str, first: int, count: int) -> list[str]:
    """``prefix`` + the terminal's number zero-padded to 8 characters: ATM00001, ATM00002, ..."""
    digits = TERMINAL_ID_LENGTH - len(prefix)
    if digits < 1 or not prefix.isalnum():
        raise ValueError("terminal prefix: 1 to 7 letters or digits")
    if first < 0 or count < 1 or first + count - 1 >= 10**digits:
        raise ValueError(f"{count} terminal(s) from {first} do not fit in {digits} digit(s) after {prefix!r}")
    return [f"{prefix}{n:0{digits}d}" for n in range(first, first + count)]


@dataclass(frozen=True)
class FleetConfig:
    port: int
    cards: tuple[SimCard, ...]
    host: str = "127.0.0.1"
    terminals: int = 1
    prefix: str = "ATM"
    first: int = 1
    rate: float = 0.0  # customers a second over the fleet; 0: every terminal serves back to back
    duration_s: float | None = None
    count: int | None = None
    warmup_s: float = 0.0
    drain_s: float = 30.0
    start_timeout_s: float = 30.0
    tmk: str | None = field(default=None, repr=False)  # every terminal's TMK (test LMK), unless in ``tmks``
    tmks: Mapping[str, str] = field(default_factory=dict, repr=False)
    mac: bool = False  # every terminal MACs; or those in ``mac_terminals``
    mac_terminals: frozenset[str] = frozenset()
    cassettes: str = DEFAULT_CASSETTES  # every terminal's, unless in ``cassettes_by_terminal``
    cassettes_by_terminal: Mapping[str, str] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()  # terminal ids of the range not simulated
    settings: TerminalSettings = field(default_factory=TerminalSettings)
    seed: int | None = None
    scheme: str = "atm"
    framing: LinkOptions | None = None  # None: the network's default framing (binary2)

    def __post_init__(self) -> None:
        if not self.cards:
            raise ValueError("at least one card")
        if self.rate < 0 or self.warmup_s < 0 or self.drain_s < 0:
            raise ValueError("rate, warm-up and drain are not negative")
        if (self.duration_s is not None and self.duration_s <= 0) or (self.count is not None and self.count < 0):
            raise ValueError("duration is positive and count not negative")
        for spec in (self.cassettes, *self.cassettes_by_terminal.values()):
            Cassettes.parse(spec)


class _Customers:
    """When each customer walks up, over the whole fleet (module docstring)."""

    def __init__(self, rate: float, count: int | None) -> None:
        self.rate = rate
        self.count = count
        self.go = trio.Event()
        self.start = 0.0
        self.stop_at = math.inf
        self.taken = 0
        self.stopped = False

    def begin(self, start: float, stop_at: float) -> None:
        self.start, self.stop_at = start, stop_at
        self.go.set()

    async def next(self) -> bool:
        await self.go.wait()
        if self.stopped or (self.count is not None and self.taken >= self.count):
            return False
        if self.rate > 0:
            due = self.start + self.taken / self.rate
            if due >= self.stop_at:
                return False
            self.taken += 1
            await trio.sleep_until(due)
            return not self.stopped
        if trio.current_time() >= self.stop_at:
            return False
        self.taken += 1
        await trio.lowlevel.checkpoint()
        return True


class Fleet:
    def __init__(self, config: FleetConfig, report: FleetReport | None = None, connect: Connect | None = None) -> None:
        self.config = config
        self.report = report if report is not None else FleetReport()
        self.customers = _Customers(config.rate, config.count)
        self.window = Window()
        ids = [tid for tid in terminal_ids(config.prefix, config.first, config.terminals) if tid not in config.skip]
        if not ids:
            raise FleetError("no terminal left to simulate")
        self.report.terminals = len(ids)
        self.report.currency = config.settings.currency
        hsm = sim_hsm()
        tmks: dict[str, str] = {}
        for tid in ids:
            tmk = config.tmks.get(tid) or config.tmk
            if tmk is None:
                raise FleetError(f"no TMK for terminal {tid} (--tmk, or --tmk-file naming it)")
            problem = tmk_problem(hsm, tmk)
            if problem is not None:
                raise FleetError(f"terminal {tid}: {problem}")
            tmks[tid] = tmk
        adapter = network(config.scheme)
        link = config.framing if config.framing is not None else adapter.link_options(None, None)
        pad = TestPinPad()
        rng = random.Random(config.seed)
        self.cards = CardPool(list(config.cards), random.Random(rng.random()))
        dial = connect if connect is not None else self._tcp
        self.terminals = [
            Terminal(tid, int(tid[len(config.prefix):]),
                     TerminalKeys(tmks[tid], hsm, pad, mac=config.mac or tid in config.mac_terminals),
                     Cassettes.parse(config.cassettes_by_terminal.get(tid, config.cassettes)), config.settings,
                     adapter, link.framer, dial, self.report, self.cards, self.window, random.Random(rng.random()))
            for tid in ids
        ]

    async def _tcp(self) -> trio.abc.Stream:
        return await trio.open_tcp_stream(self.config.host, self.config.port)

    def stop(self) -> None:
        """No more customers: the terminals finish the one they serve, drain and sign off."""
        self.customers.stopped = True
        self.report.interrupted = True

    async def run(self) -> FleetReport:
        config = self.config
        report = self.report
        begun: float | None = None
        failure = ""
        try:
            async with trio.open_nursery() as nursery:
                for terminal in self.terminals:
                    nursery.start_soon(partial(terminal.run, self.customers, drain_s=config.drain_s))
                if not await self._started():
                    reasons = sorted({t.refusal or "not in service in time" for t in self.terminals})
                    failure = "no terminal is in service: " + "; ".join(reasons[:3])
                    nursery.cancel_scope.cancel()
                else:
                    begun = trio.current_time()
                    self.window.start = begun + config.warmup_s
                    stop_at = self.window.start + config.duration_s if config.duration_s is not None else math.inf
                    self.window.end = stop_at
                    self.customers.begin(begun, stop_at)
                    nursery.start_soon(self._announce, config.warmup_s)
        finally:
            if begun is not None:
                now = trio.current_time()
                report.elapsed = now - begun
                report.window_s = max(0.0, min(now, self.window.end) - self.window.start)
        if failure:
            raise FleetError(failure)
        return report

    async def _started(self) -> int:
        """Wait until every terminal is in service or refused (up to the start timeout); how many are in service."""
        up: list[bool] = []
        with trio.move_on_after(self.config.start_timeout_s):
            async with trio.open_nursery() as nursery:
                async def one(terminal: Terminal) -> None:
                    up.append(await terminal.up())

                for terminal in self.terminals:
                    nursery.start_soon(one, terminal)
        return sum(up)

    async def _announce(self, warmup_s: float) -> None:
        await trio.sleep(warmup_s)
        duration = self.config.duration_s
        log.info("%s %s (%d terminal(s) in service)", MEASURING,
                 f"{duration:g} s" if duration is not None else "the rest of the run",
                 sum(t.state == "in_service" for t in self.terminals))
