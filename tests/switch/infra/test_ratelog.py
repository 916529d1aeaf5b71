"""The summarising log: one line per key per interval, every event counted in a later line."""

from __future__ import annotations

import logging

import pytest

from switch.infra.ratelog import SummaryLog


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _log(caplog: pytest.LogCaptureFixture, clock: _Clock, **kw: object) -> SummaryLog:
    caplog.set_level(logging.INFO, logger="t.ratelog")
    return SummaryLog(logging.getLogger("t.ratelog"), interval=10.0, clock=clock, **kw)  # type: ignore[arg-type]


def test_a_flood_from_one_key_is_one_line_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    summary = _log(caplog, clock)
    for i in range(500):
        summary.note(("acq", "10.0.0.9"), "peer %s: bad frame %d", "10.0.0.9", i)
    assert [r.getMessage() for r in caplog.records] == ["peer 10.0.0.9: bad frame 0"]
    clock.now += 10
    summary.flush()
    assert caplog.records[-1].getMessage() == "peer 10.0.0.9: bad frame 499 (and 498 more in the last 10s)"
    assert summary.events == 500 and summary.lines == 2
    summary.flush()  # nothing new: nothing written, the key is forgotten once quiet
    clock.now += 10
    summary.flush()
    assert summary.lines == 2


def test_keys_are_told_apart_and_a_late_event_carries_the_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    summary = _log(caplog, clock)
    for _ in range(3):
        summary.note("a", "from a")
        summary.note("b", "from b")
    clock.now += 11
    summary.note("a", "from a again")
    assert [r.getMessage() for r in caplog.records] == ["from a", "from b", "from a again (and 2 more in the last 11s)"]


def test_many_keys_fold_into_one_overflow_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    summary = _log(caplog, clock, max_keys=4)
    for i in range(1000):
        summary.note(f"10.0.{i // 256}.{i % 256}", "refused %d", i)
    assert len(caplog.records) == 5  # four keys, then one overflow line for the other 996
    clock.now += 10
    summary.flush()
    assert caplog.records[-1].getMessage() == "refused 999 (and 994 more in the last 10s)"


def test_disabled_level_costs_nothing_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="t.quiet")
    summary = SummaryLog(logging.getLogger("t.quiet"), interval=1.0)
    summary.note("k", "x")
    assert not caplog.records and summary.events == 1
