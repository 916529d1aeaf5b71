"""The cell host on a real socket: answers leave only after their batch committed, batches group many
decisions, a failed commit stops the cell without answering (fail-stop), the admin socket runs commands
through the same writer. A small stand-in engine keeps these tests about the host, not the decisions."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from sqlalchemy import Connection, Engine
from sqlalchemy.pool import QueuePool

from processors.cell.host import CellFailedError, CellHost
from processors.model import Effects
from processors.model import Sequence as SeqRow
from processors.state import CellState
from processors.storage import load_rows, make_engine, upgrade, write_batch
from processors.storage.writer import CommitFailedError, EffectsWriter
from schemes.generic import SCHEME
from switch.model.message import Message
from tests.integration.harness import client, purchase


@dataclass
class Decision:
    response: Message | None
    effects: Effects
    finish: Callable[[], Awaitable[None]] | None = None


class CountingEngine:
    """Approves every request and counts approvals in a Sequence row (one effect per decision)."""

    def __init__(self, state: CellState) -> None:
        self.state = state

    async def handle(self, request: Message) -> Decision:
        if request.mti == "0800":
            return Decision(request.make_response("00"), Effects())
        effects = Effects()
        effects.add(self.state.next_value("approvals"))
        response = request.make_response("00")
        response[38] = "A00001"
        return Decision(response, effects)


class Commands:
    def __init__(self, state: CellState) -> None:
        self.state = state

    async def run(self, name: str, args: dict[str, Any]) -> tuple[Any, Effects]:
        if name != "bump":
            from switch.model.errors import BulkheadError

            raise BulkheadError(f"unknown command {name!r}")
        effects = Effects()
        seq = self.state.next_value(str(args["counter"]))
        effects.add(seq)
        return {"value": seq.value}, effects


def counter(engine: Engine, name: str) -> int:
    for row in load_rows(engine, 0, datetime.now(UTC), 35):
        if isinstance(row, SeqRow) and row.name == name:
            return row.value
    return 0


@asynccontextmanager
async def running_host(db_url: str, tmp_path: Path, *, write: Any = write_batch, admin: bool = False,
                       cell_engine: Callable[[CellState], Any] = CountingEngine,
                       ) -> AsyncIterator[tuple[CellHost, Engine, list[BaseException]]]:
    await trio.to_thread.run_sync(upgrade, db_url)
    engine = make_engine(db_url)
    state = CellState(0)
    host = CellHost(0, cell_engine(state), engine, commands=Commands(state), max_batch=500, max_wait=0.001,
                    write=write, admin_socket=tmp_path / "cell.sock" if admin else None)
    errors: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            async def serve(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await host.serve(task_status=task_status)
                except CellFailedError as exc:
                    errors.append(exc)

            await nursery.start(serve)
            yield host, engine, errors
            host.stop()
    finally:
        engine.dispose()


async def test_answers_after_commit_and_batches_group_decisions(tmp_path: Path, db_url: str) -> None:
    async with running_host(db_url, tmp_path) as (host, engine, _), client(host.port) as c:
        requests = [purchase(stan=n) for n in range(1, 401)]
        for req in requests:
            await c.send(req)
        answers = [await c.wait(req) for req in requests]
        assert {a[39] for a in answers} == {"00"}
        assert all(a.mti == "0210" and a[38] == "A00001" for a in answers)
        # every approval that reached the client is in the database
        assert await trio.to_thread.run_sync(counter, engine, "approvals") == 400
        assert host.writer.items == 400
        assert host.writer.batches < 400  # group commit: many decisions per transaction
        echo = await c.call(Message("0800", {7: "1122101010", 11: "000777", 70: "301"}))
        assert (echo.mti, echo[39]) == ("0810", "00")
        stats = host.stats()
        assert stats["received"]["0200"] == 400 and stats["answered"]["00"] == 401
        assert stats["in_flight"] == 0


async def test_no_answer_before_the_commit(tmp_path: Path, db_url: str) -> None:
    gate = threading.Event()

    def slow_write(connection: Connection, batches: Sequence[Effects]) -> object:
        gate.wait(10)
        return write_batch(connection, batches)

    async with running_host(db_url, tmp_path, write=slow_write) as (host, engine, _), client(host.port) as c:
        req = purchase()
        await c.send(req)
        with trio.move_on_after(0.3):
            await c.wait(req)
            pytest.fail("answered before the commit")
        assert host.in_flight == 1
        gate.set()
        assert (await c.wait(req))[39] == "00"
        assert await trio.to_thread.run_sync(counter, engine, "approvals") == 1


async def test_failed_commit_stops_the_cell_without_answering(tmp_path: Path, db_url: str) -> None:
    calls = 0

    def failing_write(connection: Connection, batches: Sequence[Effects]) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        return write_batch(connection, batches)

    async with running_host(db_url, tmp_path, write=failing_write) as (host, engine, errors), \
            client(host.port) as c:
        first = await c.call(purchase())
        assert first[39] == "00"
        doomed = purchase()
        await c.send(doomed)
        with trio.fail_after(5):
            while not errors:
                await trio.sleep(0.01)
        # the request decided after the failure is never answered: the cell went down instead
        assert c.key(doomed) not in c.responses
        assert isinstance(errors[0], CellFailedError) and "disk full" in str(errors[0])
        assert await trio.to_thread.run_sync(counter, engine, "approvals") == 1
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", host.port)


def admin_call(path: Path, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        answers = []
        for request in requests:
            sock.sendall(json.dumps(request).encode() + b"\n")
            answers.append(json.loads(reader.readline()))
        return answers


async def test_admin_socket_commands_commit_through_the_writer(tmp_path: Path, db_url: str) -> None:
    async with running_host(db_url, tmp_path, admin=True) as (_host, engine, _):
        path = tmp_path / "cell.sock"
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        answers = await trio.to_thread.run_sync(lambda: admin_call(
            path, {"cmd": "ping"}, {"cmd": "bump", "args": {"counter": "c"}}, {"cmd": "bump", "args": {"counter": "c"}},
            {"cmd": "nope"}, {"cmd": "stats"}))
        ping, one, two, bad, stats = answers
        assert ping == {"ok": True, "result": {"cell": 0, "pid": os.getpid()}}
        assert (one["result"], two["result"]) == ({"value": 1}, {"value": 2})
        assert bad == {"ok": False, "error": "unknown command 'nope'"}
        assert stats["ok"] and stats["result"]["writer"]["decisions"] == 2
        assert await trio.to_thread.run_sync(counter, engine, "c") == 2
        garbage = await trio.to_thread.run_sync(lambda: admin_call(path, {"args": {}}))
        assert garbage[0]["ok"] is False
    assert not path.exists()


class FinishingEngine(CountingEngine):
    """Like the engine's chip answers: the decision returns at once, ``finish`` adds DE 55 when the gate opens."""

    def __init__(self, state: CellState) -> None:
        super().__init__(state)
        self.gate = trio.Event()

    async def handle(self, request: Message) -> Decision:
        decision = await super().handle(request)
        response = decision.response
        assert response is not None

        async def finish() -> None:
            await self.gate.wait()
            response[55] = b"\x91\x02\x00\x00"

        decision.finish = finish
        return decision


async def test_effects_are_submitted_before_finish_and_the_answer_waits_for_both(tmp_path: Path,
                                                                                  db_url: str) -> None:
    engines: list[FinishingEngine] = []

    def make(state: CellState) -> FinishingEngine:
        engines.append(FinishingEngine(state))
        return engines[0]

    async with running_host(db_url, tmp_path, cell_engine=make) as (host, engine, _), client(host.port) as c:
        req = purchase()
        await c.send(req)
        with trio.fail_after(5):  # committed while finish() still waits for the HSM
            while await trio.to_thread.run_sync(counter, engine, "approvals") != 1:
                await trio.sleep(0.01)
        with trio.move_on_after(0.2):
            await c.wait(req)
            pytest.fail("answered before finish() completed the response")
        engines[0].gate.set()
        answer = await c.wait(req)
        assert answer[39] == "00" and answer[55] == b"\x91\x02\x00\x00"
        assert host.in_flight == 0


class ExplodingEngine(CountingEngine):
    """Raises in the middle of a decision after changing memory (an engine bug)."""

    async def handle(self, request: Message) -> Decision:
        if request.stan == "000666":
            self.state.next_value("approvals")  # changed, never recorded
            raise RuntimeError("bug")
        return await super().handle(request)


async def test_engine_failure_answers_96_and_stops_the_cell(tmp_path: Path, db_url: str) -> None:
    async with running_host(db_url, tmp_path, cell_engine=ExplodingEngine) as (host, engine, errors), \
            client(host.port) as c:
        assert (await c.call(purchase(stan=1)))[39] == "00"
        bad = purchase(stan=666)
        await c.send(bad)
        answer = await c.wait(bad)
        assert answer[39] == "96"
        with trio.fail_after(5):
            while not errors:
                await trio.sleep(0.01)
        assert isinstance(errors[0], CellFailedError) and "engine failed" in str(errors[0])
        with pytest.raises(CommitFailedError):
            await host.commit(Effects())
        assert await trio.to_thread.run_sync(counter, engine, "approvals") == 1  # the half change is not stored
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", host.port)


async def test_commit_raises_after_a_failed_batch(tmp_path: Path, db_url: str) -> None:
    def failing_write(connection: Connection, batches: Sequence[Effects]) -> object:
        raise OSError("disk full")

    async with running_host(db_url, tmp_path, write=failing_write) as (host, _engine, errors):
        effects = Effects()
        effects.add(SeqRow("c", 1))
        with trio.fail_after(5), pytest.raises(CommitFailedError, match="disk full"):
            await host.commit(effects)
        with trio.fail_after(5):
            while not errors:
                await trio.sleep(0.01)


def test_the_writer_keeps_one_connection_for_every_batch_and_closes_it(db_url: str) -> None:
    """Every batch commits through the writer thread's one connection (no pool checkout per batch); close()
    returns it to the pool once the thread has ended, with each batch committed."""
    upgrade(db_url)
    engine = make_engine(db_url)
    used: list[int] = []
    done = threading.Event()

    def write(connection: Connection, batches: Sequence[Effects]) -> object:
        used.append(id(connection.connection.driver_connection))
        return write_batch(connection, batches)

    def on_done(tickets: list[Any], exc: BaseException | None) -> None:
        assert exc is None
        done.set()

    writer = EffectsWriter(engine, on_done, max_batch=1, max_wait=0.0, write=write)
    state = CellState(0)
    pool = engine.pool
    assert isinstance(pool, QueuePool)  # what make_engine gives a file database and PostgreSQL
    try:
        writer.start()
        for _ in range(3):
            done.clear()
            effects = Effects()
            effects.add(state.next_value("approvals"))
            writer.submit(effects, None)
            assert done.wait(10)
        assert pool.checkedout() == 1  # held by the writer between batches
        writer.close()
        assert pool.checkedout() == 0
        assert len(used) == 3 and len(set(used)) == 1
        assert counter(engine, "approvals") == 3
    finally:
        engine.dispose()


class DecidingEngine(CountingEngine):
    """Decides in the host's reader loop (like :meth:`processors.engine.CellEngine.decide`); every fourth request
    has a follow-up that completes at once (a chip answer whose ARPC came back before the commit)."""

    def decide(self, request: Message) -> Decision:
        effects = Effects()
        effects.add(self.state.next_value("approvals"))
        response = request.make_response("00")
        decision = Decision(response, effects)
        if int(request.stan or 0) % 4 == 0:
            async def finish() -> None:
                await trio.lowlevel.checkpoint()
                response[55] = b"\x91\x02\x00\x00"

            decision.finish = finish
        return decision


async def test_answers_of_a_batch_leave_after_its_commit_in_order_on_each_connection(tmp_path: Path,
                                                                                    db_url: str) -> None:
    """Decisions of several reads on two connections wait for one gated commit; then each connection gets its
    answers in the order it sent the requests, the plain ones (released together per connection) and those
    with a follow-up (released one by one) interleaved as they were decided."""
    gate = threading.Event()

    def gated_write(connection: Connection, batches: Sequence[Effects]) -> object:
        gate.wait(10)
        return write_batch(connection, batches)

    async with running_host(db_url, tmp_path, write=gated_write, cell_engine=DecidingEngine) as (
            host, engine, _), client(host.port) as a, client(host.port) as b:
        sent: dict[str, list[Message]] = {}
        for c, name, first in ((a, "a", 1), (b, "b", 101)):
            sent[name] = [purchase(stan=n, terminal=f"TERM000{name}") for n in range(first, first + 40)]
            for half in (sent[name][:20], sent[name][20:]):  # two writes: usually two reads
                for req in half:
                    c.waiting.setdefault(c.key(req), trio.Event())
                await c.send_raw(b"".join(c.framer.encode(SCHEME.encode(req)) for req in half))
        with trio.fail_after(5):
            while host.in_flight < 80:
                await trio.sleep(0.01)
        await trio.sleep(0.2)
        assert not a.responses and not b.responses  # nothing before the commit
        gate.set()
        for c, name in ((a, "a"), (b, "b")):
            answers = [await c.wait(req) for req in sent[name]]
            assert [x[39] for x in answers] == ["00"] * 40
            assert [55 in x for x in answers] == [int(req[11]) % 4 == 0 for req in sent[name]]
            assert list(c.responses) == [c.key(req) for req in sent[name]]  # arrival order = sending order
            assert not c.unmatched
        assert await trio.to_thread.run_sync(counter, engine, "approvals") == 80
        assert host.in_flight == 0 and host.stats()["answered"] == {"00": 80}
