"""Open-loop load in phases, and what each phase got back (the overload measurement, issue 11 item 10).

An open-loop generator sends every request when it is due, whether or not the earlier ones were answered, the
way a population of acquirers does: a switch that falls behind is not given a pause. A run is a list of phases
(seconds, requests per second), e.g. half the node's capacity, then twice it, then a third of it. Each request is
classified by what came back within the acquirer's deadline, measured from the moment it was due:

- in time: answered within the deadline with anything but 91;
- shed: answered 91 within the deadline (the node said at once that it could not take it);
- late: answered after the deadline (the acquirer has given up and reversed by then: worse than shed);
- lost: never answered before the generator stopped waiting.
"""

from __future__ import annotations

import bisect
import math
from array import array
from dataclasses import dataclass
from typing import Any

SHED_CODE = 91


@dataclass(frozen=True)
class Schedule:
    """When request k is due: phases of (seconds, requests per second) from the start; past the last phase
    nothing more is due."""

    phases: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.phases or any(seconds <= 0 or rate <= 0 for seconds, rate in self.phases):
            raise ValueError("phases: (seconds, rate) pairs, both positive")

    @property
    def duration(self) -> float:
        return sum(seconds for seconds, _ in self.phases)

    def starts(self) -> list[float]:
        out, at = [], 0.0
        for seconds, _ in self.phases:
            out.append(at)
            at += seconds
        return out

    def due_count(self, elapsed: float) -> int:
        """Requests due by ``elapsed`` seconds after the start (request 0 is due at 0)."""
        total = 0.0
        for start, (seconds, rate) in zip(self.starts(), self.phases, strict=True):
            if elapsed < start:
                break
            total += rate * min(seconds, elapsed - start)
        return min(int(total) + 1, self.total())

    def total(self) -> int:
        return int(sum(seconds * rate for seconds, rate in self.phases))

    def due_at(self, k: int) -> float:
        """Seconds after the start at which request ``k`` is due."""
        count = 0.0
        for start, (seconds, rate) in zip(self.starts(), self.phases, strict=True):
            if k < count + seconds * rate:
                return start + (k - count) / rate
            count += seconds * rate
        return math.inf


def record(samples: array[float], due: float, latency: float, code: bytes) -> None:
    """One answered request, as three numbers: due (seconds from the start), latency, response code (-1: none or
    not numeric)."""
    samples.extend((due, latency, float(int(code)) if code.isdigit() else -1.0))


def phase_stats(answered: array[float], unanswered: array[float], schedule: Schedule,
                deadline: float) -> list[dict[str, Any]]:
    """Per phase: requests due in it and how they ended (see the module docstring), with the p50/p99 latency in ms
    of the in-time and shed answers, and the share in time over the phase's first second."""
    starts = schedule.starts()
    bounds = [*starts[1:], math.inf]
    phases: list[dict[str, Any]] = [
        {"phase": i + 1, "seconds": seconds, "rate": rate, "due": 0, "in_time": 0, "shed": 0, "late": 0, "lost": 0,
         "_in_time_ms": [], "_shed_ms": [], "_first": [0, 0]}
        for i, (seconds, rate) in enumerate(schedule.phases)
    ]

    def phase_of(due: float) -> dict[str, Any]:
        return phases[min(bisect.bisect_right(bounds, due), len(phases) - 1)]

    for i in range(0, len(answered), 3):
        due, latency, code = answered[i], answered[i + 1], answered[i + 2]
        p = phase_of(due)
        p["due"] += 1
        first = due - starts[p["phase"] - 1] < 1.0
        if first:
            p["_first"][1] += 1
        if latency > deadline:
            p["late"] += 1
        elif code == SHED_CODE:
            p["shed"] += 1
            p["_shed_ms"].append(latency * 1000)
        else:
            p["in_time"] += 1
            p["_in_time_ms"].append(latency * 1000)
            if first:
                p["_first"][0] += 1
    for due in unanswered:
        p = phase_of(due)
        p["due"] += 1
        p["lost"] += 1
        if due - starts[p["phase"] - 1] < 1.0:
            p["_first"][1] += 1
    for p in phases:
        # Requests due that were never sent (every connection gone) are lost too: the schedule says how many.
        scheduled = int(p["seconds"] * p["rate"])
        if scheduled > p["due"]:
            p["lost"] += scheduled - p["due"]
            p["due"] = scheduled
        n = p["due"] or 1
        for what in ("in_time", "shed", "late", "lost"):
            p[f"{what}_pct"] = round(100 * p[what] / n, 1)
        for what in ("in_time", "shed"):
            ordered = sorted(p.pop(f"_{what}_ms"))
            p[f"{what}_p50_ms"] = round(percentile(ordered, 50), 1)
            p[f"{what}_p99_ms"] = round(percentile(ordered, 99), 1)
        in_time, total = p.pop("_first")
        p["first_second_in_time_pct"] = round(100 * in_time / total, 1) if total else 0.0
    return phases


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (0.0 when there are none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
