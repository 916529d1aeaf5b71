"""What `bulkhead status` shows beyond the links' own status: the node's version and configuration digest, the
last minute's answers by response code, the journal's lag, the health of the node's child processes (the
cells) and the store-and-forward queue per destination.

Built on the node's event loop from counters it keeps anyway (switch.ops.metrics.RateWindow, the journal writer's
statistics); nothing here is on the hot path. Times are ISO 8601 in UTC, ages and durations in seconds: the CLI
turns them into what an operator reads (switch.cli.status).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

from switch.ops.metrics import RateWindow, TerminalStats
from switch.storage.saf import DestinationSummary

# Link states in which a child's link carries requests (see switch.runtime.links.state).
_UP = frozenset({"connected", "signed_on"})


class JournalStats(Protocol):
    @property
    def rows(self) -> int: ...

    @property
    def batches(self) -> int: ...

    @property
    def queue_depth(self) -> int: ...

    @property
    def last_commit(self) -> tuple[datetime, float] | None: ...


def bulkhead_version() -> str:
    try:
        return version("bulkhead")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def config_digest(file: Path) -> str:
    """sha256 of the configuration file, read when the node starts (right after it was loaded): which
    configuration a running node runs, to compare with the file on disk or another node's; "unreadable" if it
    cannot be read any more."""
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def overview(*, config_file: Path, config_digest: str, window: RateWindow, uptime_s: float,
             journal: JournalStats, children: list[tuple[str, list[dict[str, Any]]]],
             link_states: Mapping[str, str]) -> dict[str, Any]:
    """The node-wide part of the status (the caller adds links, processes and routes)."""
    answered, codes = window.last_minute(time.perf_counter())
    seconds = max(1.0, min(float(RateWindow.SECONDS), uptime_s))  # a node up for 10 s has 10 s of history
    last = journal.last_commit
    status: dict[str, Any] = {
        "version": bulkhead_version(),
        "config": {"file": str(config_file), "digest": config_digest},
        "last_minute": {
            "seconds": round(seconds, 1), "exchanges": answered, "per_second": round(answered / seconds, 2),
            # "" is an exchange that ended without a response (its source was gone): shown as "none".
            "response_codes": {code or "none": count for code, count in sorted(codes.items())},
        },
        "journal": {
            "rows": journal.rows, "batches": journal.batches, "queued": journal.queue_depth,
            "last_commit_at": None if last is None else last[0].isoformat(timespec="milliseconds"),
            "lag_ms": None if last is None else round(last[1] * 1000, 1),
        },
    }
    for what, entries in children:
        status[f"{what}s"] = [_child(entry, link_states.get(str(entry["name"]))) for entry in entries]
    return status


def _child(entry: dict[str, Any], link_state: str | None) -> dict[str, Any]:
    """A child process as its supervisor sees it, with its health: "ok" when it runs and its link carries
    requests, "degraded" when its link does not answer, "unreachable" when it runs and its link is not up,
    "down" when the process does not run."""
    if entry["process"] != "running":
        health = "down"
    elif link_state == "degraded":
        health = "degraded"
    elif link_state is None or link_state in _UP:  # a child without a link of its name: its process is all
        health = "ok"
    else:
        health = "unreachable"
    return {"name": entry["name"], "health": health, "process": entry["process"], "pid": entry["pid"],
            "restarts": entry["restarts"], "last_exit": entry["last_exit"], "link": link_state}


def saf_status(summary: list[DestinationSummary], now: float | None = None) -> list[dict[str, Any]]:
    """Per destination with undelivered entries: how many are retried, how many wait for an operator, and the
    age of the oldest (as the ``bulkhead_saf_oldest_age_seconds`` metric computes it)."""
    at = time.time() if now is None else now
    return [{"destination": s.destination, "pending": s.pending, "exceptions": s.exceptions,
             "oldest_age_s": round(max(0.0, at - s.oldest_created_at.timestamp()), 1)}
            for s in sorted(summary, key=lambda s: s.destination)]


def atm_overview(terminals: list[TerminalStats]) -> dict[str, Any]:
    """The ATM fleet in `bulkhead status`: how many terminals, how many in service, and those needing a visit."""
    return {
        "terminals": len(terminals),
        "in_service": sum(1 for t in terminals if t.in_service),
        "low_cash": sorted(t.terminal for t in terminals if t.low_cash),
        "faults": {t.terminal: list(t.faults) for t in sorted(terminals) if t.faults},
    }
