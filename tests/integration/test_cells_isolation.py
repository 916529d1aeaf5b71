"""The bulkhead acceptance test (issue 4): four cells as real processes under a node, continuous approvable
load on cards of every cell, one cell killed with SIGKILL.

- the killed cell's cards get 91 within the connector timeout, never a hang;
- the other three cells keep approving every transaction;
- the supervisor restarts the killed cell, which approves again;
- every transaction the client saw approved before the kill is in the killed cell's database, and every
  cell's ledger balances.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
from prometheus_client import generate_latest

from processors.cell.config import CellsConfig
from processors.cell.section import cells_of
from processors.model import Txn
from processors.storage import ledger_check, load_rows, make_engine
from switch.config import NodeConfig
from switch.ops.metrics import registry_for
from switch.runtime.node import Node
from tests.integration.cells_harness import SeededCard, cell_supervisor, seed_cell, write_cells_config
from tests.integration.harness import Client, client, port_of, purchase

pytestmark = pytest.mark.slow

TIMEOUT_MS = 2000
KILLED = 2


@dataclass
class Outcome:
    cell: int
    stan: str
    terminal: str
    code: str
    sent_at: float  # time.monotonic()
    seconds: float


@asynccontextmanager
async def node_with_cells(cfg: NodeConfig) -> AsyncIterator[Node]:
    node = Node(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.fail_after(60):  # four interpreters starting on a shared machine
            while not all(link.is_up() for link in node.outbound.values()):
                await trio.sleep(0.05)
        yield node
        node.stop()


async def drive(c: Client, card: SeededCard, outcomes: list[Outcome], stop: trio.Event) -> None:
    """Purchases on one card, one at a time, until ``stop``; every answer within the timeout plus a margin."""
    terminal = f"TERMC{card.cell:03d}"
    stans = itertools.count(1)
    while not stop.is_set():
        req = purchase(pan=card.pan, amount=100, stan=next(stans), terminal=terminal)
        sent, start = time.monotonic(), trio.current_time()
        resp = await c.call(req, timeout=TIMEOUT_MS / 1000 + 2.0)  # fail_after inside: a hang fails the test
        outcomes.append(Outcome(card.cell, str(req[11]), terminal, str(resp[39]), sent, trio.current_time() - start))
        if resp[39] != "00":
            await trio.sleep(0.01)  # the cell is down: do not spin


def approved_txns(cells: CellsConfig, cell: int) -> set[tuple[str, str]]:
    engine = make_engine(cells.url(cell))
    try:
        rows = load_rows(engine, cell, datetime.now(UTC), 35)
        report = ledger_check(engine)
    finally:
        engine.dispose()
    assert report.ok, report.problems
    return {(r.stan, r.terminal) for r in rows if isinstance(r, Txn) and r.response_code == "00" and r.mti}


async def test_a_killed_cell_is_isolated_restarted_and_lost_nothing(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=4, timeout_ms=TIMEOUT_MS)
    cells = cells_of(cfg.sections)
    assert cells is not None
    cards = [await trio.to_thread.run_sync(seed_cell, cells, k) for k in range(4)]
    outcomes: list[Outcome] = []
    stop = trio.Event()
    async with node_with_cells(cfg) as node, AsyncExitStack() as clients:
        supervisor = cell_supervisor(node)
        assert supervisor is not None
        # one acquirer connection per card: the test client does not share its stream between senders
        conns = [await clients.enter_async_context(client(port_of(node))) for _ in cards]
        async with trio.open_nursery() as load:
            for c, card in zip(conns, cards, strict=True):
                load.start_soon(drive, c, card, outcomes, stop)
            await trio.sleep(1.5)
            victim = supervisor.pid(KILLED)
            assert victim is not None
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            # the killed cell's link goes down, the supervisor starts a new process, the link comes back
            with trio.fail_after(10):
                while node.outbound[cells.name(KILLED)].is_up():
                    await trio.sleep(0.01)
            with trio.fail_after(60):
                while supervisor.pid(KILLED) in (None, victim) or not node.outbound[cells.name(KILLED)].is_up():
                    await trio.sleep(0.05)
            back_at = time.monotonic()
            with trio.fail_after(30):  # and approves again
                while not any(o.cell == KILLED and o.code == "00" and o.sent_at > back_at for o in outcomes):
                    await trio.sleep(0.05)
            await trio.sleep(0.5)
            stop.set()
        status = {s["name"]: s for s in supervisor.status()}
        links = {entry["name"]: entry for entry in node.status()["links"]}  # what `bulkhead links status` shows
        assert links[cells.name(KILLED)]["restarts"] == 1 and links[cells.name(KILLED)]["process"] == "running"
        assert links[cells.name(KILLED)]["pid"] == supervisor.pid(KILLED) != victim
        shown = {c["name"]: c for c in node.status()["cells"]}  # what `bulkhead status` shows per cell
        assert {name: (c["health"], c["restarts"]) for name, c in shown.items()} == {
            cells.name(k): ("ok", 1 if k == KILLED else 0) for k in range(4)}
        assert shown[cells.name(KILLED)]["last_exit"] == -signal.SIGKILL
        scraped = generate_latest(registry_for(node)).decode()  # what Prometheus sees
        assert f'bulkhead_cell_restarts_total{{cell="{cells.name(KILLED)}"}} 1.0' in scraped
        assert f'bulkhead_cell_running{{cell="{cells.name(KILLED)}"}} 1.0' in scraped
    assert status[cells.name(KILLED)]["restarts"] == 1
    assert status[cells.name(KILLED)]["last_exit"] == -signal.SIGKILL
    assert all(status[cells.name(k)]["restarts"] == 0 for k in range(4) if k != KILLED)

    # the other three cells approved everything, before, during and after the outage
    for k in range(4):
        mine = [o for o in outcomes if o.cell == k]
        assert len(mine) > 20, f"cell {k}: only {len(mine)} transactions"
        if k != KILLED:
            assert {o.code for o in mine} == {"00"}, f"cell {k}: {sorted({o.code for o in mine})}"
    # the killed cell: approvals, then 91 (each within the timeout, none hanging), then approvals again
    victim_outcomes = [o for o in outcomes if o.cell == KILLED]
    assert {o.code for o in victim_outcomes} <= {"00", "91"}
    declined = [o for o in victim_outcomes if o.code == "91"]
    assert declined and all(o.seconds < TIMEOUT_MS / 1000 + 0.5 for o in declined)
    assert all(o.sent_at >= killed_at - TIMEOUT_MS / 1000 for o in declined)
    assert any(o.code == "00" and o.sent_at > back_at for o in victim_outcomes)

    # nothing approved before the kill is missing from the killed cell's database; every ledger balances
    for k in range(4):
        stored = await trio.to_thread.run_sync(approved_txns, cells, k)
        approved = {(o.stan, o.terminal) for o in outcomes if o.cell == k and o.code == "00"}
        if k == KILLED:
            before = {(o.stan, o.terminal) for o in victim_outcomes if o.code == "00" and o.sent_at < killed_at}
            assert before and before <= stored
        assert approved <= stored, f"cell {k}: {len(approved - stored)} approvals not in its database"
