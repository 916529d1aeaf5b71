"""The status pieces that need no node: the one-minute window, child health, SAF ages, and the CLI's units."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from switch.cli.status import duration, render, when
from switch.ops.metrics import Metrics, RateWindow
from switch.ops.status import _child, config_digest, saf_status
from switch.storage.saf import DestinationSummary


def test_the_window_counts_the_last_sixty_seconds_by_code() -> None:
    window = RateWindow()
    for t in (100.1, 100.5, 130.0):
        window.add(t, "00")
    window.add(150.9, "51")
    window.add(159.99, "")
    assert window.last_minute(159.999) == (5, {"00": 3, "51": 1, "": 1})
    assert window.last_minute(160.0) == (3, {"00": 1, "51": 1, "": 1})  # second 100 (two answers) has left
    assert window.last_minute(400.0) == (0, {})


def test_a_bucket_is_reused_when_its_second_comes_round_again() -> None:
    window = RateWindow()
    window.add(5.0, "00")
    window.add(65.0, "91")  # same bucket (5 % 60), a minute later: the old counts are gone
    assert window.last_minute(65.5) == (1, {"91": 1})


def test_metrics_record_feeds_the_window() -> None:
    metrics = Metrics()
    metrics.record("acquirer", "issuer", "0200", "answered", "00", 0.002, 1000.0)
    metrics.record("acquirer", "issuer", "0200", "answered", "05", 0.003, 1000.2)
    assert metrics.window.last_minute(1001.0) == (2, {"00": 1, "05": 1})


def test_child_health() -> None:
    entry = {"name": "cell-01", "process": "running", "pid": 42, "restarts": 2, "last_exit": -9}
    assert _child(entry, "signed_on")["health"] == "ok"
    assert _child(entry, "degraded")["health"] == "degraded"
    assert _child(entry, "connecting")["health"] == "unreachable"
    assert _child({**entry, "process": "restarting"}, "down")["health"] == "down"
    assert _child(entry, "signed_on")["restarts"] == 2


def test_saf_ages_per_destination() -> None:
    created = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    rows = saf_status([DestinationSummary("visa", 3, 1, created), DestinationSummary("amex", 1, 0, created)],
                      now=created.timestamp() + 125)
    assert rows == [{"destination": "amex", "pending": 1, "exceptions": 0, "oldest_age_s": 125.0},
                    {"destination": "visa", "pending": 3, "exceptions": 1, "oldest_age_s": 125.0}]


def test_units_an_operator_reads() -> None:
    assert [duration(s) for s in (0, 42, 192, 7380, 273600)] == ["0s", "42s", "3m12s", "2h03m", "3d04h"]
    now = datetime(2026, 12, 7, 16, 53, 14, tzinfo=UTC)
    assert when("2026-12-07T16:50:02.123+00:00", now) == "16:50:02 UTC (3m11s ago)"
    assert when("2026-12-06T16:50:02+00:00", now) == "2026-12-06 16:50:02 UTC (1d00h ago)"
    assert when(None, now) == "-"


def test_the_config_digest_is_the_files_sha256(tmp_path: Path) -> None:
    node_toml = tmp_path / "node.toml"
    node_toml.write_text("[node]\nname = 'x'\n")
    assert config_digest(node_toml) == hashlib.sha256(b"[node]\nname = 'x'\n").hexdigest()
    assert config_digest(tmp_path / "gone.toml") == "unreadable"


def test_the_screen_of_a_node_with_a_restarted_process_a_degraded_cell_and_saf_entries() -> None:
    now = datetime(2026, 12, 7, 16, 53, 14, tzinfo=UTC)
    status = {
        "node": "demo", "version": "1.2.3", "uptime_s": 7380.0, "started_at": "2026-12-07T14:50:14+00:00",
        "config": {"file": "conf/demo/node.toml", "digest": "ab" * 32},
        "routes": {"source": "conf/demo/routes.toml", "digest": "cd" * 32},
        "processes": [{"name": "demo", "state": "running", "pid": 10, "restarts": 0},
                      {"name": "demo/1", "state": "running", "pid": 11, "restarts": 1, "last_exit": -9}],
        "last_minute": {"seconds": 60.0, "exchanges": 120, "per_second": 2.0,
                        "response_codes": {"00": 90, "51": 24, "91": 6}},
        "journal": {"rows": 5000, "batches": 900, "queued": 0, "last_commit_at": "2026-12-07T16:53:13+00:00",
                    "lag_ms": 2.5},
        "in_flight": 1, "late_responses": 0, "lost_reversals": 0,
        "links": [{"name": "cell-01", "kind": "connector", "state": "degraded", "since": "2026-12-07T16:52:14+00:00",
                   "in_flight": 1, "latency_ms": 3.25, "last_echo": None,
                   "degraded": {"reason": "3 requests in a row unanswered", "since": "2026-12-07T16:52:14+00:00"},
                   "last_error": {"at": "2026-12-07T16:52:14+00:00",
                                  "error": "degraded: 3 requests in a row unanswered"}},
                  {"name": "acquirer", "kind": "listener", "state": "listening", "port": 8583, "connections": 2,
                       "backlog": 40, "shed": {"waited": 3, "behind overdue": 9, "backlog full": 0},
                       "shedding": True}],
        "cells": [{"name": "cell-01", "health": "degraded", "process": "running", "pid": 12, "restarts": 2,
                   "last_exit": -9, "link": "degraded"}],
        "saf": [{"destination": "cell-01", "pending": 4, "exceptions": 1, "oldest_age_s": 95.0}],
    }
    lines = render(status, now).splitlines()
    assert lines[0] == "node demo  bulkhead 1.2.3  up 2h03m (since 14:50:14 UTC)"
    assert "last minute  120 answered, 2.0/s   codes: 00 90 (75.0%)  51 24 (20.0%)  91 6 (5.0%)" in lines
    assert "journal   5000 rows in 900 batches, 0 queued, lag 2.5 ms (last commit 16:53:13 UTC (1s ago))" in lines
    assert [line.split() for line in lines if line.startswith("  demo")] == [
        ["demo", "running", "10", "0", "-"], ["demo/1", "running", "11", "1", "-9"]]
    rows = [line.split() for line in lines]
    connector = rows.index(["cell-01", "degraded", "16:52:14", "UTC", "(1m00s", "ago)", "1", "3.2", "ms", "-"])
    assert lines[connector + 1] == "      degraded since 16:52:14 UTC (1m00s ago): 3 requests in a row unanswered"
    assert lines[connector + 2].startswith("      last error 16:52:14 UTC (1m00s ago): degraded: 3 requests")
    assert ["cell-01", "degraded", "running", "12", "2", "-9", "degraded"] in rows  # the cells table
    assert next(line.split() for line in lines if line.startswith("  acquirer")) == [
        "acquirer", "listening", "8583", "2", "40", "12", "(shedding", "now)"]
    assert lines[-1].split() == ["cell-01", "4", "1", "1m35s"]
