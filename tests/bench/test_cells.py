"""The benchmark's processor-cell scenarios: how requests are spread over cards, listeners and connections,
and a short end-to-end ``fin-cells`` run through a node supervising two cell processes, checked afterwards on
the cells' own databases (ledger invariants, and an approved Txn row for every approval received)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from bench import report as bench_report
from bench.harness import Options, run_scenario, split_connections, templates_for
from bench.scenarios import ATM, SCENARIOS, BenchCard
from processors.security import parse_track2
from processors.storage import ledger_check, make_engine
from schemes.atm import SCHEME as ATM_SCHEME
from schemes.generic import SCHEME

# Shapes only (these cards are never seeded nor sent): 16-digit PANs in BIN 476173, cells 00/01.
CARDS = [BenchCard(k % 2, "debit", f"4761730{k % 2}0000{k:03d}0", f"4761730{k % 2}0000{k:03d}0=3012201100001230000",
                   bytes([k]) * 8) for k in range(6)]


def test_mixed_cells_connections_follow_the_weights_per_listener() -> None:
    scenario = SCENARIOS["mixed-cells"]
    listeners = split_connections(scenario, 8)
    assert Counter(listeners) == {"acquirer": 6, ATM: 2}  # weights 8:2 (purchases, balances, echo : ATM)
    assert Counter(split_connections(scenario, 2)) == {"acquirer": 1, ATM: 1}
    atm = templates_for(scenario, "BN000001", time.gmtime(0), listener=ATM, cards=CARDS, offset=1)
    assert len(atm) == len(CARDS)
    for j, template in enumerate(atm):
        msg = ATM_SCHEME.decode(template.frame[2:])
        card = CARDS[(1 + j) % len(CARDS)]
        assert (msg.mti, msg[3], msg[18], msg[22], msg[52]) == ("0200", "010000", "6011", "021", card.pin_block)
        track = parse_track2(msg.text(35) or "")
        assert track is not None and track.pan == card.pan
        assert scenario.mix[template.kind].listener == ATM
    acquirer = templates_for(scenario, "BN000002", time.gmtime(0), listener="acquirer", cards=CARDS)
    assert len(acquirer) == 8  # 6 cards rounded up to a whole cycle of purchase x5, balance x2, echo x1
    kinds = Counter(scenario.mix[t.kind].label for t in acquirer)
    assert kinds == {"purchase 0200": 5, "balance 0200/30": 2, "echo 0800": 1}
    for template in acquirer:
        msg = SCHEME.decode(template.frame[2:])
        assert msg.mti == "0800" or msg[2] in {c.pan for c in CARDS}


@pytest.mark.parametrize("processes", [1, 2])
def test_short_fin_cells_run_posts_every_approval(tmp_path: Path, processes: int) -> None:
    scenario = SCENARIOS["fin-cells"]
    options = Options(duration=2.0, warmup=0.5, connections=4, inflight=8, drain=5.0, cells=2, cards=20,
                      folder=str(tmp_path / "run"), processes=processes)
    result = run_scenario(scenario, options)

    document = json.loads(bench_report.save([result], folder=tmp_path).read_text())
    (entry,) = document["scenarios"]
    assert set(entry) >= {"scenario", "tps", "codes", "latency_ms", "cpu_percent", "cells", "cell_approvals"}
    assert entry["tps"] > 0
    assert set(entry["codes"]) == {"00"}, entry["codes"]
    assert entry["timeouts"] == entry["errors"] == entry["unmatched"] == 0
    # CPU per process: the node (and its second process) and each of its cells by name, and the generator.
    assert {"node", "cell-00", "cell-01", "generator-0"} <= set(entry["cpu_percent"])
    assert ("node-1" in entry["cpu_percent"]) == (processes == 2)
    assert bench_report.problems(result) == []

    # Durable postings, checked on the cells' databases themselves after the node (and its cells) stopped.
    approvals = entry["cell_approvals"]
    assert approvals >= entry["codes"]["00"] > 0
    rows = 0
    for cell in range(2):
        engine = make_engine(f"sqlite:///{tmp_path / 'run' / 'var' / 'cells' / f'cell-{cell:02d}.db'}")
        try:
            ledger = ledger_check(engine)
            assert ledger.ok, ledger.problems
            with engine.connect() as connection:
                approved = connection.execute(text(
                    "SELECT count(*) FROM cell_txns WHERE status = 'approved' AND mti = '0200'")).scalar_one()
        finally:
            engine.dispose()
        assert approved > 0  # both cells took load
        rows += approved
    assert rows >= approvals
    assert rows == sum(cell["approved_txns"] for cell in entry["cells"].values())
