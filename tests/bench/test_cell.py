"""``python -m bench cell``: a short run of a real cell (CellHost, its writer, the engine) under the load client,
checked on the cell's own database, and the report's judgement of runs that are not clean."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from bench import report as bench_report
from bench.cell import CellBenchError, CellOptions, CellReport, format_row, run_cell_bench


def test_short_cell_run_commits_every_approval(db_url: str, tmp_path: Path) -> None:
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    report = run_cell_bench(CellOptions(decisions=2_000, connections=2, inflight=8, cards=20, url=db_url))

    assert report.codes == {"00": 2_000}
    assert report.answered == 2_000 and report.lost == 0
    # Durable postings: an approved 0200 Txn row committed for every approval the client received.
    assert report.approved_txns == report.approvals == 2_000
    assert report.ledger_ok, report.ledger_problems
    assert report.problems() == []
    assert report.tps > 0
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p99"] <= report.latency_ms["max"]
    assert report.batches >= 1 and 1 <= report.largest_batch <= 2 * 8  # never more than is in flight
    assert report.rows >= 2_000 * 5  # txn, posting, two entries, sequence... per decision
    cpu = report.cpu_us_per_decision
    assert cpu["cell"] > 0 and cpu["writer"] >= 0
    assert cpu["loop"] == pytest.approx(cpu["cell"] - cpu["writer"])
    # The cell's GC tuning applied for the run only.
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)

    (entry,) = json.loads(bench_report.save([report], folder=tmp_path).read_text())["scenarios"]
    assert entry["scenario"] == "cell" and entry["codes"] == {"00": 2_000}
    assert set(entry) >= {"tps", "latency_ms", "cpu_us_per_decision", "batches", "largest_batch",
                          "approved_txns", "ledger_ok", "interpreter", "parameters"}
    row = format_row(report)
    assert "cell" in row and "ledger ok" in row and "!!" not in row


def _report(**figures: object) -> CellReport:
    base = CellReport("cell", "", "", {}, {"decisions": 10, "connections": 1, "inflight": 1, "cards": 1}, "",
                      answered=10, codes={"00": 10}, approved_txns=10, ledger_ok=True)
    for name, value in figures.items():
        setattr(base, name, value)
    return base


@pytest.mark.parametrize(("figures", "problem"), [
    ({}, None),
    ({"codes": {"00": 9, "96": 1}, "approved_txns": 9}, "codes other than 00: 96: 1"),
    ({"answered": 9, "codes": {"00": 9}, "approved_txns": 9, "lost": 1}, "9 answered of 10, 1 lost"),
    ({"approved_txns": 9}, "9 approved Txn rows committed for 10 approvals"),
    ({"approved_txns": 11}, "11 approved Txn rows committed for 10 approvals"),
    ({"ledger_ok": False, "ledger_problems": ["posting P1 does not balance"]},
     "ledger check failed: posting P1 does not balance"),
])
def test_problems_flag_runs_that_are_not_clean(figures: dict[str, object], problem: str | None) -> None:
    report = _report(**figures)
    assert report.problems() == ([problem] if problem else [])
    assert ("!!" in format_row(report)) == (problem is not None)


def test_an_existing_sqlite_file_is_refused(tmp_path: Path) -> None:
    existing = tmp_path / "cell.db"
    existing.write_bytes(b"")
    with pytest.raises(CellBenchError, match="does not exist yet"):
        run_cell_bench(CellOptions(decisions=1, url=f"sqlite:///{existing}"))
