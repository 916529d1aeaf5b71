"""Routing reloads on a running node under continuous traffic (the issue's acceptance test).

Two issuers, two tables that send the demo BIN to different hosts, 20 reloads alternating between them while
four connections keep requests in flight. Every request must get exactly one response, every response must
be an approval, and every exchange that started after a swap finished and before the next one began must
have gone to the host of the table in force (checked in the journal, which records each exchange's
destination and arrival time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import trio

from switch.ops.admin import call
from switch.storage.audit import list_route_reloads
from switch.storage.journal import find_exchanges
from tests.integration.harness import Client, client, issuer, port_of, purchase, running_node, write_config

TABLE = """
[destinations.to-a]
links = ["a"]
[destinations.to-b]
links = ["b"]

[[routes]]
name = "demo-bin"
bins = ["476173"]
destination = "{dest}"
"""

RELOADS = 20


async def _traffic(c: Client, terminal: str, stop: trio.Event, sent: list[tuple[str, str]]) -> None:
    while not stop.is_set():
        batch = [purchase(terminal=terminal) for _ in range(8)]
        for msg in batch:
            sent.append(Client.key(msg))
            await c.send(msg)
        for msg in batch:
            await c.wait(msg, timeout=10)


async def test_twenty_reloads_under_traffic_lose_nothing_and_traffic_follows_each_table(
    tmp_path: Path, db_url: str
) -> None:
    (tmp_path / "to_a.toml").write_text(TABLE.format(dest="to-a"))
    (tmp_path / "to_b.toml").write_text(TABLE.format(dest="to-b"))
    async with issuer() as a, issuer() as b:
        conf = write_config(tmp_path, db_url, {"a": a.port, "b": b.port}, TABLE.format(dest="to-a"))
        async with running_node(conf) as node:
            clients = []
            sent: list[tuple[str, str]] = []
            windows: list[tuple[datetime, datetime, str]] = []  # (swap done, next swap starts, link)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    clients.append(await nursery.start(_client_task, port_of(node)))
                link, done = "a", datetime.now(UTC)
                async with trio.open_nursery() as senders:
                    for i, c in enumerate(clients):
                        senders.start_soon(_traffic, c, f"TERM000{i}", stop, sent)
                    await _reload_many(node.config.admin_socket, tmp_path, windows, link, done)
                    stop.set()  # senders finish their batch, every response awaited, and return
                nursery.cancel_scope.cancel()

            responses = {k: v for c in clients for k, v in c.responses.items()}
            unmatched = [m for c in clients for m in c.unmatched]
            engine = node.engine
            rows = await trio.to_thread.run_sync(lambda: find_exchanges(engine, limit=10_000_000))
            audits = await trio.to_thread.run_sync(lambda: list_route_reloads(engine, limit=100))

    assert len(sent) > 200
    assert len(set(sent)) == len(sent)
    assert not unmatched
    assert set(responses) == set(sent), "a request went unanswered"
    assert all(len(v) == 1 for v in responses.values()), "a request was answered twice"
    assert {v[0][39] for v in responses.values()} == {"00"}

    assert len(rows) == len(sent)
    checked = 0
    for begin, end, expected in windows:
        inside = [r for r in rows if begin < r.received_at < end]
        assert inside, f"no traffic between {begin} and {end}"
        wrong = [r.destination for r in inside if r.destination != expected]
        assert not wrong, f"{len(wrong)} exchanges went to {set(wrong)} while table -> {expected} was in force"
        checked += len(inside)
    assert checked > len(rows) // 2
    assert a.stats.received["0200"] + b.stats.received["0200"] == len(sent)

    applied = [x for x in audits if x.outcome == "applied"]
    assert len(applied) == RELOADS
    assert all(x.diff and "demo-bin" in x.diff for x in applied)


async def _reload_many(socket: Path, tmp_path: Path, windows: list[tuple[datetime, datetime, str]], link: str,
                       done: datetime) -> None:
    await trio.sleep(0.15)
    for i in range(RELOADS):
        target = "b" if i % 2 == 0 else "a"
        start = datetime.now(UTC)
        windows.append((done, start, link))
        answer = await trio.to_thread.run_sync(
            call, socket, "routes.reload", {"path": str(tmp_path / f"to_{target}.toml")}
        )
        assert answer["ok"], answer
        link, done = target, datetime.now(UTC)
        await trio.sleep(0.15)
    windows.append((done, datetime.now(UTC), link))


async def _client_task(port: int, task_status: trio.TaskStatus[Client] = trio.TASK_STATUS_IGNORED) -> None:
    async with client(port) as c:
        task_status.started(c)
        await trio.sleep_forever()


async def test_broken_table_is_refused_and_the_old_one_stays(tmp_path: Path, db_url: str) -> None:
    async with issuer() as a, issuer() as b:
        conf = write_config(tmp_path, db_url, {"a": a.port, "b": b.port}, TABLE.format(dest="to-a"))
        broken = tmp_path / "broken.toml"
        broken.write_text(TABLE.format(dest="to-a").replace('bins = ["476173"]', 'bins = ["47617X"]'))
        unknown_link = tmp_path / "unknown.toml"
        unknown_link.write_text(TABLE.format(dest="to-a").replace('links = ["b"]', 'links = ["nowhere"]'))
        async with running_node(conf) as node, client(port_of(node)) as c:
            digest = node.table.digest
            for path in (broken, unknown_link):
                answer = await trio.to_thread.run_sync(
                    call, node.config.admin_socket, "routes.reload", {"path": str(path)})
                assert not answer["ok"]
                assert path.name in answer["error"]
                assert node.table.digest == digest
            assert "bins[0]" in (await trio.to_thread.run_sync(
                call, node.config.admin_socket, "routes.reload", {"path": str(broken)}))["error"]
            resp = await c.call(purchase())
            assert resp[39] == "00"
            assert a.stats.received["0200"] == 1
            engine = node.engine
            audits = await trio.to_thread.run_sync(lambda: list_route_reloads(engine))
    assert [x.outcome for x in audits] == ["rejected"] * 3
    assert all(x.reason for x in audits)
