"""``python -m bench saf``: a short drain of stand-in advices into a real cell process, checked on the cell's
own database (each advice posted once), and the report's judgement of runs that are not clean."""

from __future__ import annotations

import pytest

from bench.safdrain import SafDrainReport, run

pytestmark = pytest.mark.slow


def test_a_short_drain_posts_every_advice_once(db_url: str) -> None:
    report = run(advices=60, cards=3, window=8, url=db_url)
    assert (report.advices, report.window, report.acked, report.approved_txns) == (60, 8, 60, 60)
    assert report.ledger_ok and report.problems() == []
    assert report.drain_s > 0 and report.per_second > 0


@pytest.mark.parametrize(("figures", "problem"), [
    ({}, None),
    ({"acked": 59}, "59 of 60 entries acknowledged with 00"),
    ({"approved_txns": 61}, "the cell holds 61 approved Txn rows for 60 advices"),
    ({"ledger_ok": False}, "the cell's ledger check failed"),
])
def test_the_report_names_what_makes_a_run_suspect(figures: dict[str, object], problem: str | None) -> None:
    report = SafDrainReport(60, 8, "sqlite", 1.0, 60.0, 60, 60, True, "")
    for name, value in figures.items():
        setattr(report, name, value)
    assert report.problems() == ([problem] if problem else [])
