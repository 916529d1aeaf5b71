"""The fault test's short form (issue 11, item 4): the node and its cells killed at random moments under load,
then every card's money checked against what the acquirer saw (bench/faults.py; the long form is `make faults`).
"""

from __future__ import annotations

import pytest

from bench.faults import FaultOptions, run_faults

pytestmark = pytest.mark.slow


def test_kills_under_load_lose_or_double_no_money() -> None:
    # Each kind of round once, and the node alone again: the long form draws them at random.
    report = run_faults(FaultOptions(rounds=4, round_s=1.5, cells=2, cards=4, clients=4,
                                     kinds=("cell-node", "node", "cell", "node")))
    print(report.format())
    assert report.violations == []
    assert report.node_kills == 3 and report.cell_kills == 2
    assert report.node_starts == report.node_kills + 1  # every restart came up
    assert report.approved > 0 and report.requests == report.approved + report.declined + report.reversed
