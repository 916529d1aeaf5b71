"""``[node] processes = 2``: a second node process shares the listener ports (SO_REUSEPORT), answers and
journals like the first, follows routing table reloads, is restarted when it dies and stops with the node."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from switch.infra.db.engine import make_engine
from switch.ops.admin import call
from switch.runtime.node import Node
from switch.runtime.workers import WorkerSupervisor
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


@asynccontextmanager
async def _two_process_node(tmp_path: Path, db_url: str, issuer_port: int) -> AsyncIterator[
        tuple[Node, WorkerSupervisor]]:
    """A node of two processes forwarding to the issuer at ``issuer_port``, once both listen."""
    conf = write_config(tmp_path, db_url, {"up": issuer_port}, ROUTES_ONE.format(link="up"))
    _two_processes(conf)
    async with running_node(conf) as node:
        await _ready(node)
        assert node.workers is not None
        yield node, node.workers


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
    async with issuer() as iss, _two_process_node(tmp_path, db_url, iss.port) as (node, workers):
        first = workers.pid(1)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        with trio.fail_after(30):
            while workers.pid(1) in (None, first) or not workers.ready():
                await trio.sleep(0.05)
        status = node.status()["processes"]
        assert [p["restarts"] for p in status[1:]] == [1]
        assert await _one_purchase_per_connection(node, 300) == ["00"] * CONNECTIONS
    assert iss.stats.received["0200"] == CONNECTIONS


async def test_stopping_the_node_lets_its_second_process_finish_what_it_has_in_flight(
        tmp_path: Path, db_url: str) -> None:
    """Found in review: the second process used to be killed 5 s after the primary's drain, whatever it still
    had in flight. Now it drains beside the primary (SIGTERM at the start of the drain) and may take its own
    drain time: slow approvals in flight on it are answered and journaled."""
    slow_pan = "4761739001010044"
    rules = {"rules": [{"action": "delay", "bin": slow_pan, "ms": 5500}]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"), timeout_ms=8000)
        _two_processes(conf)
        engine = make_engine(db_url)
        try:
            async with AsyncExitStack() as stack:
                node = await stack.enter_async_context(running_node(conf))
                await _ready(node)
                clients = [await stack.enter_async_context(client(port_of(node))) for _ in range(CONNECTIONS)]
                for n, c in enumerate(clients):
                    assert (await c.call(purchase(stan=500 + n), timeout=10))[39] == "00"
                rows = await trio.to_thread.run_sync(lambda: find_exchanges(engine, limit=100))
                on_second = {r.stan for r in rows if r.node == "itest/1"}
                mine = [c for n, c in enumerate(clients) if f"{500 + n:06d}" in on_second]
                assert mine, "no connection on the second process: the test would prove nothing"
                slow = [purchase(pan=slow_pan, stan=700 + n) for n in range(len(mine))]
                for c, msg in zip(mine, slow, strict=True):
                    await c.send(msg)
                with trio.fail_after(5):
                    while iss.stats.received["0200"] < CONNECTIONS + len(mine):
                        await trio.sleep(0.01)
                node.stop()
                answers = [(await c.wait(msg, timeout=15))[39] for c, msg in zip(mine, slow, strict=True)]
                assert answers == ["00"] * len(mine)
            rows = await trio.to_thread.run_sync(lambda: find_exchanges(engine, limit=200))
        finally:
            engine.dispose()
    assert sorted(r.stan for r in rows if r.node == "itest/1" and int(r.stan or 0) >= 700) == [
        f"{700 + n:06d}" for n in range(len(mine))]


async def test_a_reload_reaches_every_live_process_even_when_one_ends_meanwhile(tmp_path: Path) -> None:
    """Found in review: a process ending during a reload used to abort it for the processes after it."""
    config = SimpleNamespace(name="n", processes=4, file=tmp_path / "node.toml")
    table = SimpleNamespace(source="routes.toml", digest="d1")
    supervisor = WorkerSupervisor(config, {}, lambda: table, 1.0)  # type: ignore[arg-type, return-value]
    asked: list[tuple[int, dict[str, object]]] = []
    async with trio.open_nursery() as nursery:
        for index in (1, 2, 3):
            to_process, process_reads = trio.testing.memory_stream_one_way_pair()
            process_writes, from_process = trio.testing.memory_stream_one_way_pair()
            supervisor._control[index] = (to_process, from_process)
            supervisor._buffers[index] = bytearray()
            supervisor.processes[index].state = "running"

            async def process(index: int = index, reads: trio.abc.ReceiveStream = process_reads,
                              writes: trio.abc.SendStream = process_writes) -> None:
                while data := await reads.receive_some(65536):
                    command = json.loads(data)
                    asked.append((index, command))
                    if index == 1:
                        await trio.sleep(0.2)  # process 1 takes a moment; process 2 ends meanwhile
                        await writes.send_all(b'{"id": 0, "ok": true}\n')  # a stale reply first: skipped
                    await writes.send_all(json.dumps({"id": command["id"], "ok": True}).encode() + b"\n")

            nursery.start_soon(process)

        async def process_2_ends() -> None:
            await trio.sleep(0.1)
            supervisor._control.pop(2, None)  # what attached() does when its process ends
            supervisor._buffers.pop(2, None)

        nursery.start_soon(process_2_ends)
        results = await supervisor.reload(tmp_path / "routes.toml")
        nursery.cancel_scope.cancel()
    assert [(r["process"], r["ok"]) for r in results] == [(1, True), (2, False), (3, True)]
    assert [(i, c["digest"]) for i, c in asked] == [(1, "d1"), (3, "d1")]  # with the primary's digest


async def test_a_listening_process_is_left_alone_after_the_ready_timeout(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the benchmark: the wait for a process's hello also timed its whole life, so a healthy process
    was restarted READY_TIMEOUT_S after it started."""
    import switch.runtime.workers

    monkeypatch.setattr(switch.runtime.workers, "READY_TIMEOUT_S", 3.0)
    async with issuer() as iss, _two_process_node(tmp_path, db_url, iss.port) as (node, workers):
        pid = workers.pid(1)
        await trio.sleep(4.0)
        assert workers.pid(1) == pid and workers.ready()
        assert [p["restarts"] for p in node.status()["processes"][1:]] == [0]
