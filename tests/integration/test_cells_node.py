"""A node with [cells] and supervise = false: the cells' connectors are generated from the table, sign on to
the cells, and the routing table sends BIN + cell digits to the right one. The cells here are in-process
hosts with a stand-in engine (the process side is tested in test_cells_supervisor / test_cells_isolation)."""

from __future__ import annotations

from pathlib import Path

import trio

from processors.cell.host import CellHost
from processors.cell.section import cells_of
from processors.state import CellState
from processors.storage import make_engine, upgrade
from tests.integration.cells_harness import cell_supervisor, write_cells_config
from tests.integration.harness import client, port_of, purchase, running_node
from tests.processors.cell.test_cells_host import CountingEngine


async def test_node_routes_each_cells_cards_to_its_cell(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=2)
    conf = tmp_path / "node.toml"
    conf.write_text(conf.read_text() + "supervise = false\n")
    assert cells_of(cfg.sections) is not None
    cells = cells_of(cfg.sections)
    hosts = []
    async with trio.open_nursery() as nursery:
        for k in range(2):
            url = cells.url(k)
            (tmp_path / "var" / "cells").mkdir(parents=True, exist_ok=True)
            await trio.to_thread.run_sync(upgrade, url)
            engine = make_engine(url)
            host = CellHost(k, CountingEngine(CellState(k)), engine, port=cells.port(k))
            await nursery.start(host.serve)
            hosts.append((host, engine))
        async with running_node(conf) as node, client(port_of(node)) as c:
            assert cell_supervisor(node) is None  # supervise = false: the cells are run by someone else
            assert {"cell-00", "cell-01"} <= set(node.outbound)
            for k, pan in ((0, "4761730000000018"), (1, "4761730100000017"), (1, "4761730100000025")):
                resp = await c.call(purchase(pan=pan))
                assert resp[39] == "00", k
            links = {entry["name"]: entry for entry in node.status()["links"]}
            assert links["cell-01"]["state"] == "signed_on"
        assert hosts[0][0].received["0200"] == 1
        assert hosts[1][0].received["0200"] == 2
        assert hosts[0][0].received["0800"] >= 1  # the node signed on
        for host, _ in hosts:
            host.stop()
    for _, engine in hosts:
        engine.dispose()
