"""Issue 13: kill -9 the node between approval and the terminal's confirmation. A fleet of simulated ATMs works
through the node's ATMP to the cells; the node is killed under it and restarted. The terminals keep their
confirmations and reversals in their own store-and-forward queues and send them again once the node is back.
Afterwards every approved withdrawal has exactly one outcome, each customer is charged exactly for the notes that
went out, and the host's cassette counts agree with the terminals'."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
from sqlalchemy import create_engine, select

from atmp.storage import AtmStore
from bench.atmfleet import register, start_fleet
from bench.cells import cells_config, generate_keys, seed_cards, write_config
from bench.faults import FaultReport, _Node
from bench.ports import free_port
from bench.scenarios import FleetLoad
from processors.cell.config import CellsConfig
from processors.model import Txn
from processors.storage.tables import TABLES
from switch.config import load_config
from switch.storage.atmjournal import approved_withdrawals
from switch.storage.db import make_engine

pytestmark = pytest.mark.slow

TERMINALS = 4


def test_a_node_killed_under_a_fleet_loses_no_confirmation_and_charges_exactly_the_notes_dispensed(
        tmp_path: Path) -> None:
    keys = generate_keys()
    port, atm_port = free_port(), free_port()
    conf = write_config(tmp_path, keys, count=2, port=port, atm_port=atm_port, max_batch=64, max_wait_ms=1.0)
    cells = cells_config(conf)
    cards = seed_cards(cells, keys, cards=8, credit_share=0.0)
    load = FleetLoad(mix="withdrawal=100", partial_rate=0.1, no_take_rate=0.05, lost_confirm_rate=0.05,
                     advice_timeout_s=1.0, mac_every=2)
    register(tmp_path, conf, TERMINALS, load)
    node = _Node(conf, tmp_path, FaultReport())
    node.start()
    fleet = None
    try:
        assert trio.run(node.wait_up, atm_port)
        fleet = start_fleet(tmp_path, conf, atm_port, cards, load, terminals=TERMINALS, rate=0, warmup=0,
                            duration=9)
        time.sleep(4)  # the fleet has keys and has been withdrawing a while: some withdrawals are mid-way
        node.kill()
        time.sleep(1.5)  # down: the terminals time out, queue their advices and reconnect with backoff
        node.start()
        assert trio.run(node.wait_up, atm_port)
        fleet.popen.wait(120)
        report = json.loads((tmp_path / "fleet-report.json").read_text())
    finally:
        if fleet is not None and fleet.popen.poll() is None:
            fleet.popen.kill()
        node.stop()
    assert report["advices"]["left"] == 0, "advices still owed to the host"
    assert report["drops"] > 0, "the fleet never saw the node go"
    assert report["host_check"]["agree"], report["host_check"]["mismatches"]
    assert sum(report["dispense"].values()) > 0
    _every_withdrawal_has_one_outcome_and_the_cells_charged_what_went_out(conf, cells)


def _every_withdrawal_has_one_outcome_and_the_cells_charged_what_went_out(conf: Path, cells: CellsConfig) -> None:
    cfg = load_config(conf)
    engine = make_engine(cfg.database_url)
    try:
        store = AtmStore(engine)
        now = datetime.now(UTC)
        approved, _ = approved_withdrawals(engine, ["atm"], now - timedelta(hours=1), now + timedelta(minutes=1),
                                           limit=100_000)
        assert approved, "the fleet withdrew nothing"
        dispensed: dict[tuple[str, str], int] = {}
        by_terminal: dict[str, list[str]] = {}
        for w in approved:
            by_terminal.setdefault(w.terminal_id, []).append(w.key)
        for terminal_id, keys in by_terminal.items():
            outcomes = store.outcomes_for(terminal_id, keys)
            missing = set(keys) - set(outcomes)
            assert not missing, f"{terminal_id}: approved withdrawals without an outcome: {sorted(missing)}"
            for key, stored in outcomes.items():
                _, stan, _ = key.split(":")
                dispensed[(terminal_id, stan)] = stored.outcome.dispensed_amount
    finally:
        engine.dispose()
    charged: dict[tuple[str, str], int] = {}
    txns = TABLES[Txn]
    for cell in range(2):
        cell_engine = create_engine(cells.url(cell))
        try:
            with cell_engine.connect() as connection:
                rows = connection.execute(select(txns.c.terminal, txns.c.stan, txns.c.amount, txns.c.reversed_amount)
                                          .where(txns.c.mti == "0200", txns.c.txn_type == "withdrawal",
                                                 txns.c.response_code == "00")).all()
        finally:
            cell_engine.dispose()
        for terminal, stan, amount, reversed_amount in rows:
            charged[(terminal, stan)] = amount - reversed_amount
    # A withdrawal the cell approved but the node never answered (killed before its journal row committed): the
    # terminal got no 0210, paid nothing out, and its reversal (0420, reason 68) took the whole amount back.
    unanswered = {key: amount for key, amount in charged.items() if key not in dispensed}
    assert all(amount == 0 for amount in unanswered.values()), unanswered
    assert set(dispensed) <= set(charged)
    # each customer charged exactly the notes that went out
    assert {key: charged[key] for key in dispensed} == dispensed
