"""``[node] processes = 2``: a second node process shares the listener ports (SO_REUSEPORT), answers and
journals like the first, follows routing table reloads, is restarted when it dies and stops with the node."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import trio

from switch.admin import call
from switch.node import Node
from switch.storage.db import make_engine
from switch.storage.journal import find_exchanges
from tests.integration.harness import ROUTES_ONE, client, issuer, port_of, purchase, running_node, write_config

# The same table with every card refused by the switch (92): a route without BINs matches them all.
REJECT_ALL = ROUTES_ONE.format(link="up") + '[[routes]]\nname = "closed"\naction = "reject"\n'

CONNECTIONS = 16  # the kernel spreads connections by their addresses: all 16 on one process is a 2^-15 chance


def _two_processes(conf: Path) -> None:
    conf.write_text(conf.read_text().replace('name = "itest"', 'name = "itest"\nprocesses = 2', 1))


async def _ready(node: Node) -> None:
    with trio.fail_after(30):
        while node.workers is None or not node.workers.ready():
            await trio.sleep(0.05)


async def _one_purchase_per_connection(node: Node, stan: int) -> list[str]:
    codes = []
    for n in range(CONNECTIONS):
        async with client(port_of(node)) as c:
            codes.append((await c.call(purchase(stan=stan + n), timeout=10))[39])
    return codes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_second_process_shares_the_port_answers_journals_and_follows_reloads(
        tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        _two_processes(conf)
        (tmp_path / "closed.toml").write_text(REJECT_ALL)
        async with running_node(conf) as node:
            await _ready(node)
            assert node.workers is not None
            worker_pid = node.workers.pid(1)
            assert worker_pid is not None and _alive(worker_pid)
            assert await _one_purchase_per_connection(node, 100) == ["00"] * CONNECTIONS

            reply = await trio.to_thread.run_sync(
                lambda: call(node.config.admin_socket, "routes.reload", {"path": str(tmp_path / "closed.toml")}))
            assert reply["ok"], reply
            (process,) = reply["result"]["processes"]
            assert process["process"] == 1 and process["ok"]
            assert process["digest"] == node.table.digest
            assert await _one_purchase_per_connection(node, 200) == ["92"] * CONNECTIONS
        # The node stopped: so did its second process.
        with trio.fail_after(10):
            while _alive(worker_pid):
                await trio.sleep(0.05)
    engine = make_engine(db_url)
    try:
        rows = find_exchanges(engine, limit=1000)
    finally:
        engine.dispose()
    served_by = {(r.node, r.response_code) for r in rows}
    # Both processes answered both before and after the reload, and journaled under their own names.
    assert served_by == {("itest", "00"), ("itest/1", "00"), ("itest", "92"), ("itest/1", "92")}
    assert iss.stats.received["0200"] == CONNECTIONS


async def test_a_second_process_that_dies_is_restarted_and_serves_again(tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        _two_processes(conf)
        async with running_node(conf) as node:
            await _ready(node)
            assert node.workers is not None
            first = node.workers.pid(1)
            assert first is not None
            os.kill(first, signal.SIGKILL)
            with trio.fail_after(30):
                while node.workers.pid(1) in (None, first) or not node.workers.ready():
                    await trio.sleep(0.05)
            status = node.status()["processes"]
            assert [p["restarts"] for p in status[1:]] == [1]
            assert await _one_purchase_per_connection(node, 300) == ["00"] * CONNECTIONS
    assert iss.stats.received["0200"] == CONNECTIONS
