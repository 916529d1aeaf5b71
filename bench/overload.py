"""``python -m bench overload``: the node offered twice its capacity, open loop, then the load falls (issue 11 item 10).

1. The capacity: ``--capacity`` requests per second, or measured first with a closed-loop fin-sim run of
   ``--measure`` seconds (the same node processes and connections).
2. An open-loop run in three phases (:mod:`bench.phases`): ``--before`` seconds at half the capacity, ``--seconds``
   at ``--factor`` times it, ``--recovery`` seconds at a third of it. Every request is sent when it is due,
   answered or not, over ``--connections`` connections, and judged against the acquirer's ``--deadline``.
3. Per phase: the share answered in time, shed (91 within the deadline), late and lost, the p50/p99 of the
   in-time and shed answers, and the share in time over the first second of the phase (how fast it recovers).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from bench.codec import interpreter
from bench.harness import Options, Report, run_scenario
from bench.procs import BenchError
from bench.report import save
from bench.scenarios import SCENARIOS

SCENARIO = "fin-sim"
OPEN_LOOP = 1_000_000_000  # an in-flight cap no connection reaches: the generator never waits for the node


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overload", description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=float, default=0.0,
                        help="the node's capacity in requests/s (default: measured first)")
    parser.add_argument("--measure", type=float, default=10.0, help="seconds of the capacity run (10)")
    parser.add_argument("--factor", type=float, default=2.0, help="overload as a multiple of capacity (2)")
    parser.add_argument("--before", type=float, default=5.0, help="seconds at half the capacity first (5)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of overload (20)")
    parser.add_argument("--recovery", type=float, default=10.0, help="seconds at a third of capacity after (10)")
    parser.add_argument("--deadline", type=float, default=2.0,
                        help="the acquirer's deadline in seconds from when a request was due (2)")
    parser.add_argument("--connections", type=int, default=64, help="connections per generator process (64)")
    parser.add_argument("--generators", type=int, default=1, help="generator processes (1)")
    parser.add_argument("--processes", type=int, default=1, help="node processes (1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (config, logs, db)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-save", action="store_true", help="do not write JSON under bench/results/")
    args = parser.parse_args(argv)
    if min(args.measure, args.factor, args.before, args.seconds, args.recovery, args.deadline) <= 0 \
            or args.capacity < 0 or min(args.connections, args.generators, args.processes) < 1:
        parser.error("every duration, the factor and the deadline must be positive; counts at least 1")
    base = Options(connections=args.connections, generators=args.generators, processes=args.processes,
                   inflight=16, keep=args.keep)
    try:
        capacity = args.capacity or measure_capacity(base, args.measure)
        phases = ((args.before, capacity / 2), (args.seconds, capacity * args.factor),
                  (args.recovery, capacity / 3))
        report = run_phases(base, phases, args.deadline)
    except BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    figures: dict[str, Any] = {"capacity": capacity, "factor": args.factor, "deadline_s": args.deadline,
                               "phases": report.phases, "cpu_percent": report.cpu_percent}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(interpreter())
        print(format_phases(report.phases, capacity))
    if not args.no_save:
        print(f"saved {save([report], {'overload': figures})}", file=sys.stderr)
    return 0


def measure_capacity(base: Options, seconds: float) -> float:
    """Purchases per second the node approves in a closed-loop fin-sim run of ``seconds``: 16 connections with 16
    requests each outstanding, enough to keep it busy and too few to make it shed (a 91 is not capacity)."""
    print(f"-- capacity: {SCENARIO} closed loop for {seconds:g} s", file=sys.stderr, flush=True)
    report = run_scenario(SCENARIOS[SCENARIO], replace(base, duration=seconds, connections=16, inflight=16))
    shed = report.codes.get("91", 0)
    if shed:
        print(f"   warning: {shed} requests answered 91 during the capacity run", file=sys.stderr)
    capacity = report.codes.get("00", 0) / seconds
    if capacity <= 0:
        raise BenchError("the capacity run approved nothing")
    return capacity


def check(report: Report) -> None:
    """A run whose generator lost connections or could not read answers measured something else."""
    if report.errors:
        raise BenchError(f"{report.errors} requests lost with their connection or unreadable: see the node's log")


def run_phases(base: Options, phases: tuple[tuple[float, float], ...], deadline: float) -> Report:
    """The open-loop run: ``phases`` of (seconds, requests per second), each request judged against ``deadline``."""
    plan = ", ".join(f"{s:g} s at {r:,.0f}/s" for s, r in phases)
    print(f"-- overload: open loop {plan}; deadline {deadline:g} s", file=sys.stderr, flush=True)
    options = replace(base, phases=phases, deadline=deadline, inflight=OPEN_LOOP, warmup=0.0,
                      duration=sum(s for s, _ in phases), drain=deadline + 3)
    report = run_scenario(SCENARIOS[SCENARIO], options)
    check(report)
    return report


def format_phases(phases: list[dict[str, Any]], capacity: float) -> str:
    head = (f"{'phase':<16} {'due':>7} {'in time':>8} {'shed':>7} {'late':>7} {'lost':>7} "
            f"{'in-time p50/p99 ms':>19} {'shed p99 ms':>11} {'1st s in time':>13}")
    lines = [head, "-" * len(head)]
    for p in phases:
        label = f"{p['rate'] / capacity:.2g}x {p['seconds']:g}s"
        lines.append(f"{label:<16} {p['due']:>7,} {p['in_time_pct']:>7.1f}% {p['shed_pct']:>6.1f}% "
                     f"{p['late_pct']:>6.1f}% {p['lost_pct']:>6.1f}% "
                     f"{p['in_time_p50_ms']:>9.0f}/{p['in_time_p99_ms']:<9.0f} {p['shed_p99_ms']:>11.0f} "
                     f"{p['first_second_in_time_pct']:>12.1f}%")
    return "\n".join(lines)
