"""Prometheus metrics, built at scrape time from counters the node keeps anyway.

The hot path only increments plain dict counters and one histogram bucket (well under a microsecond); the
collector turns them into Prometheus families when Prometheus scrapes, on prometheus_client's HTTP thread.
Per link, scheme-independent: exchanges by source, destination, MTI, outcome and response code; latency
histogram per source; in-flight requests; link state (up, degraded), in-flight and timeouts per connector; late
responses; SAF depth; journal rows and batches. Beside them, a one-minute rolling window of answers by response
code (:class:`RateWindow`) for `bulkhead status`.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

# Seconds. A switch's answers live between a millisecond (stand-in, format errors) and the issuer timeout.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ListenerEvents(NamedTuple):
    """What a listener counted since the node started."""

    listener: str
    refusals: dict[str, int]  # connections refused, by reason
    closes: dict[str, int]  # connections closed for a timeout or the format-error budget, by reason
    format_errors: int  # frames that did not decode
    shed: dict[str, int]  # requests answered 91 at once (switch.runtime.links.admission), by reason
    backlog: int  # frames waiting in its backlog now


class TerminalStats(NamedTuple):
    """One of the bank's ATMs as the ATMP's copy of the registry has it (switch.runtime.atmhost)."""

    terminal: str
    in_service: bool
    cassettes: list[tuple[int, int, str, int]]  # (position, denomination, currency, notes left)
    low_cash: bool
    faults: tuple[str, ...]  # devices reporting a fault (card_reader, dispenser, depository, printer)
    last_contact: float | None  # epoch seconds
    outcomes: dict[str, int]  # what this process recorded: dispense outcomes, duplicates, captures


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class RateWindow:
    """Exchanges finished in the last minute, by response code: 60 one-second buckets used as a ring.

    Recording is an index, one comparison and two increments; a bucket is reset when its second comes round
    again, and its code counts are a dict cleared in place, so the hot path allocates nothing once a code has
    been seen. Times are monotonic seconds (``time.perf_counter``), from the caller, which has read the clock
    anyway.
    """

    SECONDS = 60
    __slots__ = ("_codes", "_counts", "_second")

    def __init__(self) -> None:
        self._second = [-1] * self.SECONDS
        self._counts = [0] * self.SECONDS
        self._codes: list[dict[str, int]] = [{} for _ in range(self.SECONDS)]

    def add(self, now: float, code: str) -> None:
        second = int(now)
        i = second % self.SECONDS
        if self._second[i] != second:
            self._second[i] = second
            self._counts[i] = 0
            self._codes[i].clear()
        self._counts[i] += 1
        codes = self._codes[i]
        codes[code] = codes.get(code, 0) + 1

    def last_minute(self, now: float) -> tuple[int, dict[str, int]]:
        """(exchanges, count per response code) over the last 60 seconds up to ``now``, current second
        included."""
        second = int(now)
        total, codes = 0, dict[str, int]()
        for i in range(self.SECONDS):
            if second - self.SECONDS < self._second[i] <= second:
                total += self._counts[i]
                for code, count in self._codes[i].items():
                    codes[code] = codes.get(code, 0) + count
        return total, codes


class Metrics:
    """Counters owned by the node's event loop; read (copied) by the collector on scrape."""

    def __init__(self) -> None:
        self.exchanges: dict[tuple[str, str, str, str, str], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.window = RateWindow()
        self.saf_pending = 0
        # Per destination: (pending, exceptions, the oldest unfinished one's creation in epoch seconds or None when
        # there is none); after each forwarder sweep.
        self.saf_destinations: dict[str, tuple[int, int, float | None]] = {}

    def saf_state(self, unfinished: dict[str, tuple[int, int, float]], known: Iterable[str] = ()) -> None:
        """The queue's state after a sweep: ``unfinished`` per destination with entries left, ``known`` every
        other destination to report. A destination once reported stays, at 0, when its queue drains: a series
        that vanished would leave an alert on it (bulkhead_saf_exceptions > 0) stuck at its last value."""
        state: dict[str, tuple[int, int, float | None]] = dict.fromkeys(
            (*self.saf_destinations, *known), (0, 0, None))
        state.update(unfinished)
        self.saf_destinations = state
        self.saf_pending = sum(pending for pending, _, _ in unfinished.values())

    def record(self, source: str, destination: str, mti: str, outcome: str, code: str, seconds: float | None,
               now: float) -> None:
        """One finished exchange, ``seconds`` long (None: not an exchange's latency, e.g. a request shed by
        admission control, which stays out of the histogram), finished at ``now`` (``time.perf_counter``)."""
        key = (source, destination, mti, outcome, code)
        self.exchanges[key] = self.exchanges.get(key, 0) + 1
        self.window.add(now, code)
        if seconds is None:
            return
        hist = self.latency.get(source)
        if hist is None:
            hist = self.latency[source] = _Histogram()
        hist.observe(seconds)


class NodeStats(Protocol):
    """What the collector reads of a node at scrape time (on prometheus_client's HTTP thread: reads only)."""

    @property
    def metrics(self) -> Metrics: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def late_responses(self) -> int: ...

    def journal_counts(self) -> tuple[int, int]:
        """(rows committed, batches)."""
        ...

    def link_counts(self) -> list[tuple[str, bool, bool, int, int]]:
        """(name, up, degraded, requests in flight, timeouts) per connector."""
        ...

    def listener_connections(self) -> list[tuple[str, int]]: ...

    def listener_events(self) -> list[ListenerEvents]: ...

    def children(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """(what, status entries) of each service with child processes (the cells)."""
        ...

    def unknown_codes(self) -> list[tuple[str, str, int]]:
        """(network, code, count) of response codes a network's table did not know."""
        ...

    def malformed_frames(self) -> list[tuple[str, str, int]]:
        """(link, answer, count) of frames that did not decode, by how they were answered (reject, format_error,
        none)."""
        ...

    def mac_failure_counts(self) -> list[tuple[str, int]]:
        """(link, count) of messages whose MAC did not verify, on the links that MAC."""
        ...

    def atm_terminals(self) -> list[TerminalStats]:
        """The bank's ATMs (empty without an ATMP)."""
        ...


class NodeCollector(Collector):
    def __init__(self, node: NodeStats) -> None:
        self.node = node

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        node, metrics = self.node, self.node.metrics
        exchanges = CounterMetricFamily(
            "bulkhead_exchanges", "Requests answered, by source link, destination, MTI, outcome and field 39",
            labels=["source", "destination", "mti", "outcome", "response_code"])
        for labels, value in dict(metrics.exchanges).items():
            exchanges.add_metric(list(labels), value)
        yield exchanges
        latency = HistogramMetricFamily("bulkhead_exchange_latency_seconds",
                                        "Time from request received to response sent", labels=["source"])
        for source, hist in dict(metrics.latency).items():
            latency.add_metric([source], hist.cumulative(), hist.total)
        yield latency
        yield GaugeMetricFamily("bulkhead_in_flight", "Exchanges in progress", value=node.in_flight)
        yield CounterMetricFamily("bulkhead_late_responses", "Responses that matched no waiting request",
                                  value=node.late_responses)
        yield GaugeMetricFamily("bulkhead_saf_pending", "Store-and-forward entries waiting for delivery",
                                value=metrics.saf_pending)
        yield from _saf_metrics(metrics.saf_destinations, time.time())
        rows, batches = node.journal_counts()
        yield CounterMetricFamily("bulkhead_journal_rows", "Journal rows committed", value=rows)
        yield CounterMetricFamily("bulkhead_journal_batches", "Journal group commits", value=batches)
        up = GaugeMetricFamily("bulkhead_link_up", "1 when the connector can carry requests", labels=["link"])
        degraded = GaugeMetricFamily("bulkhead_link_degraded",
                                     "1 while the connector does not answer (requests in a row or an echo "
                                     "unanswered)", labels=["link"])
        pending = GaugeMetricFamily("bulkhead_link_in_flight", "Requests waiting for an answer", labels=["link"])
        timeouts = CounterMetricFamily("bulkhead_link_timeouts", "Requests unanswered in time", labels=["link"])
        for name, is_up, is_degraded, in_flight, timed_out in node.link_counts():
            up.add_metric([name], 1.0 if is_up else 0.0)
            degraded.add_metric([name], 1.0 if is_degraded else 0.0)
            pending.add_metric([name], in_flight)
            timeouts.add_metric([name], timed_out)
        yield from (up, degraded, pending, timeouts)
        conns = GaugeMetricFamily("bulkhead_listener_connections", "Open connections", labels=["listener"])
        for name, count in node.listener_connections():
            conns.add_metric([name], count)
        yield conns
        refused = CounterMetricFamily("bulkhead_listener_refused", "Connections refused (allow-list, limit, "
                                      "per-peer cap)", labels=["listener", "reason"])
        closed = CounterMetricFamily("bulkhead_listener_closed", "Connections closed for a timeout or too many "
                                     "format errors", labels=["listener", "reason"])
        errors = CounterMetricFamily("bulkhead_listener_format_errors", "Frames that did not decode",
                                     labels=["listener"])
        shed = CounterMetricFamily("bulkhead_listener_shed", "Requests answered 91 at once because they could "
                                   "not be answered in time (admission)", labels=["listener", "reason"])
        backlog = GaugeMetricFamily("bulkhead_listener_backlog", "Frames read and not yet taken by an exchange",
                                    labels=["listener"])
        for events in node.listener_events():
            name = events.listener
            for reason, count in sorted(events.refusals.items()):
                refused.add_metric([name, reason], count)
            for reason, count in sorted(events.closes.items()):
                closed.add_metric([name, reason], count)
            errors.add_metric([name], events.format_errors)
            for reason, count in sorted(events.shed.items()):
                shed.add_metric([name, reason], count)
            backlog.add_metric([name], events.backlog)
        yield from (refused, closed, errors, shed, backlog)
        unknown = CounterMetricFamily("bulkhead_unknown_response_codes",
                                      "Response codes a network's table did not know (mapped to its default)",
                                      labels=["network", "code"])
        for network, code, count in node.unknown_codes():
            unknown.add_metric([network, code], count)
        yield unknown
        malformed = CounterMetricFamily("bulkhead_malformed_frames",
                                        "Frames that did not decode, by link and how they were answered (the "
                                        "network's reject form, a format-error response, or nothing)",
                                        labels=["link", "answer"])
        for link, form, count in node.malformed_frames():
            malformed.add_metric([link, form], count)
        yield malformed
        macs = CounterMetricFamily("bulkhead_mac_failures",
                                   "Messages whose MAC did not verify, per MAC link (requests answered the link's "
                                   "MAC-failure code, answers taken as none)", labels=["link"])
        for link, count in node.mac_failure_counts():
            macs.add_metric([link], count)
        yield macs
        for what, children in node.children():
            if children:
                yield from _child_metrics(what, children)
        terminals = node.atm_terminals()
        if terminals:
            yield from _atm_metrics(terminals, time.time())


_DEVICES = ("card_reader", "dispenser", "depository", "printer")


def _atm_metrics(terminals: list[TerminalStats], now: float) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """Per terminal: cash left per cassette, low cash, device faults, in service, last contact, outcomes."""
    notes = GaugeMetricFamily("bulkhead_atm_cash_notes", "Notes left in an ATM cassette (the host's count)",
                              labels=["terminal", "cassette", "denomination", "currency"])
    low = GaugeMetricFamily("bulkhead_atm_low_cash", "1 when a cassette of the ATM is under its low-cash threshold",
                            labels=["terminal"])
    fault = GaugeMetricFamily("bulkhead_atm_device_fault", "1 while the ATM reports the device faulty",
                              labels=["terminal", "device"])
    serving = GaugeMetricFamily("bulkhead_atm_in_service", "1 when the ATM is in service", labels=["terminal"])
    contact = GaugeMetricFamily("bulkhead_atm_last_contact_age_seconds", "Seconds since the ATM's last message",
                                labels=["terminal"])
    outcomes = CounterMetricFamily("bulkhead_atm_outcomes", "Withdrawal outcomes the host recorded for the ATM "
                                   "(dispensed, partial, none, retracted, assumed; duplicate, ignored; captured)",
                                   labels=["terminal", "outcome"])
    for t in terminals:
        for position, denomination, currency, left in t.cassettes:
            notes.add_metric([t.terminal, str(position), str(denomination), currency], left)
        low.add_metric([t.terminal], 1.0 if t.low_cash else 0.0)
        for device in _DEVICES:
            fault.add_metric([t.terminal, device], 1.0 if device in t.faults else 0.0)
        serving.add_metric([t.terminal], 1.0 if t.in_service else 0.0)
        if t.last_contact is not None:
            contact.add_metric([t.terminal], max(0.0, now - t.last_contact))
        for outcome, count in sorted(t.outcomes.items()):
            outcomes.add_metric([t.terminal, outcome], count)
    yield from (notes, low, fault, serving, contact, outcomes)


def _saf_metrics(destinations: dict[str, tuple[int, int, float | None]], now: float
                 ) -> Iterator[GaugeMetricFamily]:
    """Per destination: entries retried automatically, exceptions waiting for an operator, and the age of the
    oldest undelivered one (either kind; 0 when there is none): the alert's input (README, "Alerts")."""
    pending = GaugeMetricFamily("bulkhead_saf_destination_pending", "Store-and-forward entries being retried",
                                labels=["destination"])
    exceptions = GaugeMetricFamily("bulkhead_saf_exceptions",
                                   "Store-and-forward entries given up on automatically, waiting for an operator",
                                   labels=["destination"])
    oldest = GaugeMetricFamily("bulkhead_saf_oldest_age_seconds",
                               "Age of the oldest undelivered store-and-forward entry", labels=["destination"])
    for destination, (n_pending, n_exceptions, created) in sorted(destinations.items()):
        pending.add_metric([destination], n_pending)
        exceptions.add_metric([destination], n_exceptions)
        oldest.add_metric([destination], 0.0 if created is None else max(0.0, now - created))
    yield from (pending, exceptions, oldest)


def _child_metrics(what: str, children: list[dict[str, Any]]) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """The health of a service's child processes as its supervisor sees it: for the cells,
    ``bulkhead_cell_running`` and ``bulkhead_cell_restarts`` (their approval rates are in bulkhead_exchanges, by
    destination ``cell-NN``)."""
    running = GaugeMetricFamily(f"bulkhead_{what}_running", f"1 while the {what}'s process runs", labels=[what])
    restarts = CounterMetricFamily(f"bulkhead_{what}_restarts", f"Times the {what}'s process was restarted",
                                   labels=[what])
    for child in children:
        running.add_metric([child["name"]], 1.0 if child["process"] == "running" else 0.0)
        restarts.add_metric([child["name"]], child["restarts"])
    yield running
    yield restarts


def registry_for(node: NodeStats) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry
