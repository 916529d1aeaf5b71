"""The issuer-direction scenarios (``net-visa-issuer``, ``net-unionpay-issuer``): a short run in which the network's
simulator originates purchases on the cells' bench cards down the node's connector, checked on what the network got
back, on the node's journal (the exchanges came in over the network's link) and on the cells' own databases (every
approval posted, ledgers balanced)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from bench import report as bench_report
from bench.harness import Options, run_scenario
from bench.scenarios import DEFAULT_ORDER, SCENARIOS
from processors.storage import ledger_check, make_engine


def test_the_issuer_scenarios_run_in_make_bench_after_the_acquirer_direction() -> None:
    order = list(DEFAULT_ORDER)
    assert order.index("net-unionpay") < order.index("net-visa-issuer") < order.index("net-unionpay-issuer")
    assert order.index("net-mastercard") < order.index("net-visa-issuer") < order.index("net-mastercard-issuer")
    assert order.index("net-amex") < order.index("net-visa-issuer") < order.index("net-amex-issuer")


@pytest.mark.parametrize("network", ["visa", "unionpay", "mastercard", "amex"])
def test_a_short_network_originated_run_is_approved_and_posted_by_the_cells(tmp_path: Path, network: str) -> None:
    folder = tmp_path / "run"
    options = Options(duration=2.0, warmup=0.5, connections=2, inflight=4, cells=2, cards=20, folder=str(folder))
    result = run_scenario(SCENARIOS[f"net-{network}-issuer"], options)

    # What the network saw: answers in the measured window, all approved, nothing lost.
    assert result.tps > 0 and result.answered > 0
    assert result.codes == {"00": result.codes["00"]}, result.codes
    assert result.timeouts == result.unmatched == result.errors == 0
    assert 0 < result.latency_ms["p50"] <= result.latency_ms["p99"] <= result.latency_ms["max"]
    assert result.network["network"] == network and result.network["connections"] == 1
    assert result.parameters["network_inflight"] == 8  # the generators' 2 x 4, on the node's one connection
    assert {"node", "cell-00", "cell-01", "network"} <= set(result.cpu_percent)
    assert bench_report.problems(result) == []
    assert f"{network} originates over 1 connection(s) x 8 in flight" in bench_report.format_table([result])

    # The node journaled them as exchanges that came in over the network's link and went to the cells.
    with sqlite3.connect(folder / "var" / "bulkhead.db") as con:
        rows = dict(con.execute("SELECT destination, count(*) FROM journal WHERE source_link = ? AND mti_in = '0200' "
                                "AND response_code = '00' GROUP BY destination", (network,)).fetchall())
    assert set(rows) == {"cell-00", "cell-01"}
    assert sum(rows.values()) == result.cell_approvals >= result.answered

    # Real approvals: every one the network got is an approved 0200 posted in its cell; each ledger balances.
    approved = 0
    for cell in range(2):
        engine = make_engine(f"sqlite:///{folder / 'var' / 'cells' / f'cell-{cell:02d}.db'}")
        try:
            ledger = ledger_check(engine)
            assert ledger.ok, ledger.problems
            with engine.connect() as connection:
                approved += connection.execute(text(
                    "SELECT count(*) FROM cell_txns WHERE status = 'approved' AND mti = '0200'")).scalar_one()
        finally:
            engine.dispose()
    assert approved >= result.cell_approvals  # and the probes' one purchase per cell

    # The cards reached the simulator on its standard input: no clear PAN in anything the run wrote beside the
    # databases (configuration, logs, the simulator's report).
    written = "".join(path.read_text(errors="replace") for path in folder.iterdir() if path.is_file())
    assert "network-report.json" in {path.name for path in folder.iterdir()}
    assert not re.search(r"(476173|520000)\d{10}", written)  # a bench PAN: BIN, cell, sequence, check digit
