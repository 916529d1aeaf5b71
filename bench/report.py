"""Printing and saving benchmark reports: a table for the terminal, JSON under ``bench/results/`` (git-ignored).

Figures only; nothing is judged here except that a run whose answers include codes outside the scenario's
expected set, timeouts or lost requests is flagged, because its TPS would not mean what it says -- and, for
the processor cells, a cell whose ledger check fails or whose approved Txn rows do not cover the approvals the
generators received (an approval without its durable posting).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from bench.harness import Report

RESULTS = Path(__file__).resolve().parent / "results"


def problems(report: Report) -> list[str]:
    """What makes a run's figures suspect (empty when the run is clean)."""
    out = []
    if report.unexpected_codes:
        out.append("unexpected codes " + ", ".join(f"{c}: {n}" for c, n in report.unexpected_codes.items()))
    if report.timeouts or report.errors or report.unmatched:
        out.append(f"timeouts {report.timeouts}, errors {report.errors}, unmatched {report.unmatched}")
    if report.answered == 0:
        out.append("nothing answered in the measured window")
    for name, cell in report.cells.items():
        if not cell["ledger_ok"]:
            out.append(f"{name}: ledger check failed: {'; '.join(cell['ledger_problems'])}")
    if report.cell_approvals is not None:
        rows = sum(cell["approved_txns"] for cell in report.cells.values())
        if rows < report.cell_approvals:
            out.append(f"cells hold {rows} approved Txn rows for {report.cell_approvals} approvals received")
    return out + fleet_problems(report.fleet)


def fleet_problems(fleet: dict[str, Any]) -> list[str]:
    """What an ATM fleet run leaves wrong: the host's cassette counts against the terminals', advices still owed or
    not recorded, answers whose MAC failed, terminals the host would not let in."""
    if not fleet:
        return []
    out = []
    check = fleet.get("host_check")
    if check is None:
        out.append("no host check (the fleet did not finish its run)")
    elif not check["agree"]:
        out.append(f"host check: {check['summary']}: " + "; ".join(check["mismatches"][:5]))
    advices = fleet["advices"]
    if advices["left"]:
        out.append(f"{advices['left']} advice(s) still owed to the host after the drain")
    refused = {answer: n for answer, n in advices["answers"].items() if not answer.endswith(" 00")}
    if refused:
        out.append("advices not recorded: " + ", ".join(f"{a}: {n}" for a, n in refused.items()))
    if fleet["mac"].get("bad") or fleet["mac"].get("missing"):
        out.append(f"answers with a bad or missing MAC: {fleet['mac']}")
    if fleet["refused_terminals"]:
        out.append(f"{fleet['refused_terminals']} terminal(s) refused by the host")
    return out


def format_table(reports: list[Report]) -> str:
    """One line per scenario: TPS, latency percentiles, codes and CPU per process (% of one core)."""
    w = max([15, *(len(r.scenario) for r in reports)])  # net-unionpay-issuer is 19 characters
    head = (f"{'scenario':<{w}} {'TPS':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'answered':>9}  codes / CPU % of one core per process")
    lines = [head, "-" * len(head)]
    for r in reports:
        lat = r.latency_ms
        codes = " ".join(f"{c}:{n}" for c, n in r.codes.items()) or "-"
        cpu = " ".join(f"{label}={value:.0f}" for label, value in r.cpu_percent.items())
        lines.append(f"{r.scenario:<{w}} {r.tps:>9,.0f} {lat['p50']:>8.2f} {lat['p95']:>8.2f} {lat['p99']:>8.2f} "
                     f"{lat['max']:>8.2f} {r.answered:>9}  {codes} | {cpu}")
        rate = r.parameters["rate"]
        load = (f"rate {'open' if not rate else f'{rate:g}/s'}, {r.parameters['generators']}x"
                f"{r.parameters['connections']} connections x {r.parameters['inflight']} in flight")
        if r.network:  # the issuer direction: the network simulator is the load, over the node's connections
            load = (f"{r.network['network']} originates over {r.network['connections']} connection(s) x "
                    f"{r.parameters['network_inflight']} in flight")
        if r.fleet:  # the ATM fleet: one customer at a time per terminal, each its own connection
            load = f"{r.fleet['terminals']} ATMs, rate {'open' if not rate else f'{rate:g}/s'}"
        lines.append(f"{'':<{w}} {'':>9} {load}, {r.parameters['duration']:g} s"
                     + (f", journal rows {r.journal_rows}" if r.journal_rows is not None else ""))
        if r.flood:
            lines.append(f"{'':<{w}} flood: {r.flood['frames']} malformed frames ({r.flood['per_second']}/s) over "
                         f"{r.flood['connects']} connections; node log {r.node_log_bytes or 0:,} bytes")
        for label, counts in r.codes_by_mix.items():
            lines.append(f"{'':<{w}} {label}: " + " ".join(f"{c}:{n}" for c, n in counts.items()))
        if r.cells:
            rows = sum(cell["approved_txns"] for cell in r.cells.values())
            ledgers = "ok" if all(cell["ledger_ok"] for cell in r.cells.values()) else "FAILED"
            lines.append(f"{'':<{w}} {len(r.cells)} cells, {r.parameters['cards']} cards: approved Txn rows {rows} "
                         f"for {r.cell_approvals} approvals received, ledger check {ledgers}")
        if r.fleet:
            dispense = " ".join(f"{k}:{n}" for k, n in sorted(r.fleet["dispense"].items())) or "-"
            advices = " ".join(f"{k}:{n}" for k, n in sorted(r.fleet["advices"]["sent"].items())) or "-"
            check = r.fleet.get("host_check")
            lost = r.fleet["advices"]["lost_first"]
            lines.append(f"{'':<{w}} dispense {dispense}; advices {advices} (lost first {lost}); key exchanges "
                         f"{r.fleet['key_exchanges']}; host check "
                         f"{'-' if check is None else 'agrees' if check['agree'] else 'MISMATCH'}")
        for problem in problems(r):
            lines.append(f"{'':<{w}} !! {problem}")
    return "\n".join(lines)


class Saved(Protocol):
    """A report :func:`save` can write: a scenario's :class:`~bench.harness.Report` or the cell benchmark's
    :class:`~bench.cell.CellReport`."""

    @property
    def scenario(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


def save(reports: Sequence[Saved], extra: dict[str, Any] | None = None, folder: Path = RESULTS) -> Path:
    """Write ``<UTC time>-<scenarios>.json`` and ``latest.json`` into ``folder``; return the first path."""
    folder.mkdir(parents=True, exist_ok=True)
    names = reports[0].scenario if len(reports) == 1 else "all"
    path = folder / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{names}.json"
    document: dict[str, Any] = {"scenarios": [r.to_json() for r in reports]}
    if extra:
        document.update(extra)
    text = json.dumps(document, indent=2) + "\n"
    path.write_text(text)
    (folder / "latest.json").write_text(text)
    return path
