"""The status pieces that need no node: the one-minute window, child health, SAF ages, and the CLI's units."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from switch.cli.status import duration, when
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
