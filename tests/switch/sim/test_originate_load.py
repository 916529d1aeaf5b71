"""The network simulator as a load generator (sans-I/O, a hand-driven clock): a closed loop keeps ``inflight``
requests outstanding, each answer sending the next; a timed run's window is shared by the connections, counts only
what was sent (codes, latencies, timeouts) or answered (TPS) inside it, and ends the originating; the CLI's JSON
report carries those figures with nearest-rank percentiles."""

from __future__ import annotations

import pytest

from switch.contracts.registry import network
from switch.model.message import Message
from switch.sim.issuer import IssuerStats
from switch.sim.netcli import load_report
from switch.sim.originate import LoadWindow, OriginateConfig, OriginateStats, Originator

CARDS = ("4761730010000019", "4761730010000027")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def originator(stats: OriginateStats, clock: Clock, sent: list[Message], **config: object) -> Originator:
    adapter = network("generic")
    cfg = OriginateConfig(cards=CARDS, **config)  # type: ignore[arg-type]
    return Originator("generic", cfg, stats, adapter.matcher(None), sent.append, clock=clock)


def answer(o: Originator, request: Message, code: str = "00") -> None:
    o.on_answer(network("generic").make_response(request, code))


def test_a_closed_loop_keeps_its_window_full_and_measures_only_inside_the_window() -> None:
    clock, sent = Clock(), []
    stats = OriginateStats(window=LoadWindow(warmup=1.0, duration=10.0))
    o = originator(stats, clock, sent, inflight=3, duration_s=10.0, warmup_s=1.0)
    assert o.start_clock() and not o.start_clock()  # the first connection starts the shared clock, once
    o.fill()
    assert len(sent) == len(o.pending) == 3 and [m.pan for m in sent] == [*CARDS, CARDS[0]]

    clock.now = 100.5  # warm-up: answered, the slot refilled, nothing measured
    answer(o, sent[0])
    assert len(sent) == 4 and len(o.pending) == 3
    assert stats.measured.answered == stats.measured.sent == 0

    clock.now = 102.0  # in the window: an answer to a warm-up request counts for TPS, not for codes or latency
    answer(o, sent[1])
    assert stats.measured.answered == 1 and stats.measured.sent == 1 and not stats.measured.codes
    clock.now = 102.25  # the request sent at 102.0, declined: its code and latency are the window's
    answer(o, sent[4], "51")
    assert stats.measured.codes == {"51": 1} and stats.measured.latencies == [0.25]
    assert stats.answered == {"00": 2, "51": 1} and len(o.pending) == 3

    clock.now = 111.0  # the window is over: nothing more is sent, and what is owed times out
    assert o.exhausted
    answer(o, sent[2])
    assert len(sent) == 6 and len(o.pending) == 2
    assert stats.measured.answered == 2  # answered after the window: not in TPS
    o.expire(everything=True)
    assert stats.timeouts == 2 and stats.measured.timeouts == 1  # one was sent in the warm-up, one in the window
    assert not o.pending


def test_a_closed_loop_refills_what_timed_out() -> None:
    clock, sent = Clock(), []
    o = originator(OriginateStats(), clock, sent, inflight=2, timeout_s=5.0)
    o.fill()
    clock.now += 6
    o.expire()
    o.fill()
    assert len(sent) == 4 and len(o.pending) == 2 and o.stats.timeouts == 2


def test_inflight_excludes_a_rate_and_a_duration_is_positive() -> None:
    with pytest.raises(ValueError, match="excludes a rate"):
        OriginateConfig(cards=CARDS, inflight=4, rate=10)
    with pytest.raises(ValueError, match="duration must be positive"):
        OriginateConfig(cards=CARDS, duration_s=0)


def test_the_json_report_has_the_windows_figures_and_no_card() -> None:
    clock, sent = Clock(), []
    stats = IssuerStats()
    stats.originated.window = LoadWindow(warmup=0.0, duration=2.0)
    o = originator(stats.originated, clock, sent, inflight=4, duration_s=2.0)
    o.start_clock()
    o.fill()
    for i, request in enumerate(list(sent)):
        clock.now += 0.001 * (i + 1)  # latencies 1, 3, 6, 10 ms
        answer(o, request)
    document = load_report("visa", stats)
    measured = document["measured"]
    assert measured["answered"] == 4 and measured["tps"] == 2.0 and measured["codes"] == {"00": 4}
    assert measured["latency_ms"]["p50"] == pytest.approx(3.0) and measured["latency_ms"]["p99"] == pytest.approx(10.0)
    assert document["sent"] == {"0200": 8} and document["answered"] == {"00": 4}  # the closed loop refilled
    assert not any(card in repr(document) for card in CARDS)
    assert load_report("visa", IssuerStats())["measured"] is None
