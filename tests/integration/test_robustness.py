"""Failure paths found in review: the node stays up, every request is answered once, and an approval the
acquirer cannot get is reversed (or, if even that is impossible, counted and logged as critical)."""

from __future__ import annotations

from pathlib import Path

import trio

from switch.config import parse_config
from switch.infra.db.engine import make_engine
from switch.runtime.node import Node
from switch.storage.saf import SafStore
from tests.integration.harness import (
    ROUTES_ONE,
    client,
    issuer,
    port_of,
    purchase,
    running_node,
    write_config,
)

SLOW_PAN = "4761739001010044"


async def _start_node(nursery: trio.Nursery, conf: Path) -> Node:
    """A node run in ``nursery`` (which the test may cancel: a hard stop), once its link "up" is up."""
    node = Node(parse_config(conf.read_text(), conf))
    await nursery.start(node.run)
    with trio.fail_after(10):
        while not node.outbound["up"].is_up():
            await trio.sleep(0.01)
    return node


def _connector(port: int, **settings: object) -> str:
    lines = [f"{k} = {v}" for k, v in settings.items()]
    head = ["", "[[connectors]]", 'name = "up"', f'hosts = ["127.0.0.1:{port}"]', "backoff_initial_ms = 50",
            "backoff_max_ms = 200"]
    return "\n".join(head + lines) + "\n"


async def test_echo_due_on_a_full_link_does_not_take_the_node_down(tmp_path: Path, db_url: str) -> None:
    rules = {"rules": [{"action": "delay", "bin": SLOW_PAN, "ms": 900}]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {}, ROUTES_ONE.format(link="up"),
                            extra=_connector(iss.port, max_inflight=2, echo_interval_s=0.2, timeout_ms=3000))
        async with running_node(conf) as node, client(port_of(node)) as c:
            slow = [purchase(pan=SLOW_PAN) for _ in range(2)]
            for msg in slow:
                await c.send(msg)
            await trio.sleep(0.6)  # the link is full (max_inflight 2) and idle long enough for an echo
            answers = [await c.wait(msg) for msg in slow]
            after = await c.call(purchase())
            assert node.outbound["up"].is_up()
    assert [a[39] for a in answers] == ["00", "00"]
    assert after[39] == "00"
    assert iss.stats.received["0800"] >= 2  # sign-on and at least one echo sent while the link was full


async def test_database_outage_answers_96_counts_the_lost_reversal_and_keeps_serving(
    tmp_path: Path, db_url: str
) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:

            def failing_submit(record: object, done: object) -> None:
                done(RuntimeError("database gone"))  # type: ignore[operator]

            def failing_enqueue(entries: object) -> list[int]:
                raise RuntimeError("database gone")

            node.journal_writer.submit = failing_submit  # type: ignore[method-assign]
            node.saf.enqueue_many = failing_enqueue  # type: ignore[method-assign]
            first = await c.call(purchase())
            second = await c.call(purchase())
            assert node.lost_reversals == 2
    # The issuer approved both; the acquirer must not be told so when nothing could be recorded.
    assert (first[39], second[39]) == ("96", "96")
    assert iss.stats.received["0200"] == 2


async def test_journal_that_hangs_answers_96_after_its_timeout_and_reverses_the_approval(
    tmp_path: Path, db_url: str
) -> None:
    """A database that hangs rather than fails: the journal commit never comes back. The exchange must not
    wait forever: after JOURNAL_TIMEOUT_S the acquirer gets 96, and the issuer's approval, which nothing can
    prove to the acquirer, is reversed through the store-and-forward queue."""
    async with issuer() as iss:
        # The reversals are named by the acquirer's STANs: the link keeps them (switch.exchange.identity).
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"), saf_delay_ms=60_000,
                            own_stan=False)
        async with running_node(conf) as node, client(port_of(node)) as c:
            node.journal_port.timeout = 0.5
            held: list[object] = []

            def hanging_submit(record: object, done: object) -> None:
                held.append(done)  # accepted, never committed

            node.journal_writer.submit = hanging_submit  # type: ignore[method-assign]
            t0 = trio.current_time()
            answer = await c.call(purchase(), timeout=5)
            waited = trio.current_time() - t0
            items = await trio.to_thread.run_sync(lambda: node.saf.list_items())
    assert answer[39] == "96"
    assert 0.5 <= waited < 3
    assert len(held) == 1 and iss.stats.received["0200"] == 1
    assert [(i.mti, i.status, i.pan_masked) for i in items] == [("0400", "pending", "476173******0010")]


async def test_hard_stop_with_an_exchange_in_flight_queues_its_reversal(tmp_path: Path, db_url: str) -> None:
    rules = {"rules": [{"action": "delay", "bin": SLOW_PAN, "ms": 3000}]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"), timeout_ms=5000,
                            saf_delay_ms=60_000)
        async with trio.open_nursery() as nursery:
            node = await _start_node(nursery, conf)
            async with client(port_of(node)) as c:
                await c.send(purchase(pan=SLOW_PAN))
                with trio.fail_after(5):
                    while not iss.stats.received["0200"]:
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()  # a second Ctrl-C: no drain
    engine = make_engine(db_url)
    try:
        items = SafStore(engine).list_items()
    finally:
        engine.dispose()
    assert [(i.mti, i.status, i.pan_masked) for i in items] == [("0400", "pending", "476173******0044")]


async def test_hard_stop_while_the_journal_hangs_reverses_the_approvals_waiting_for_their_rows(
        tmp_path: Path, db_url: str) -> None:
    """Found in review: approvals whose journal rows never commit (a database that hangs) wait on the journal,
    not on the issuer or in a task. A hard stop before their journal timeout must still reverse them: the
    acquirer got nothing."""
    async with issuer() as iss:
        # The reversals are named by the acquirer's STANs: the link keeps them (switch.exchange.identity).
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"), saf_delay_ms=60_000,
                            own_stan=False)
        async with trio.open_nursery() as nursery:
            node = await _start_node(nursery, conf)
            node.journal_port.timeout = 60  # the stop comes first
            held: list[object] = []
            node.journal_writer.submit = lambda record, done: held.append(done)  # type: ignore[method-assign]
            async with client(port_of(node)) as c:
                await c.send(purchase(stan=8300))
                with trio.fail_after(5):
                    while not held:
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
    engine = make_engine(db_url)
    try:
        items = SafStore(engine).list_items()
    finally:
        engine.dispose()
    assert iss.stats.received["0200"] == 1
    assert [(i.mti, i.status, i.stan) for i in items] == [("0400", "pending", "008300")]
    assert node.in_flight == 0 and node.lost_reversals == 0


QUICK_PAN = "5555550000000001"
ROUTES_QUICK = ROUTES_ONE.format(link="up") + """
[destinations.quick]
links = ["up"]
timeout_ms = 100
[[routes]]
name = "quick"
bins = ["555555"]
destination = "quick"
"""


async def test_hard_stop_while_a_task_is_busy_reverses_every_exchange_sent_upstream_once(
        tmp_path: Path, db_url: str) -> None:
    """Found in review: a hard stop while a task sits in a slow database write. The exchanges still waiting
    for the issuer are each reversed once, and so is the one that had timed out (its reversal write finishes;
    it is not queued twice), whatever the order the stopping node lets go of them in."""
    import time as clock

    rules = {"rules": [{"action": "delay", "bin": b, "ms": 3000} for b in ("476173", "555555")]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_QUICK, timeout_ms=5000, saf_delay_ms=60_000,
                            own_stan=False)  # the reversals are named by the acquirer's STANs
        async with trio.open_nursery() as nursery:
            node = await _start_node(nursery, conf)
            real = node.saf.enqueue_many
            slow = [True]

            def slow_first_write(entries: list[dict[str, object]]) -> list[int]:
                if slow.pop() if slow else False:
                    clock.sleep(1.0)  # a slow database: the task's thread cannot be abandoned
                return real(entries)

            node.saf.enqueue_many = slow_first_write  # type: ignore[method-assign]
            async with client(port_of(node)) as c:
                for n in range(3):
                    await c.send(purchase(pan=SLOW_PAN, stan=8100 + n))
                await c.send(purchase(pan=QUICK_PAN, stan=8200))
                with trio.fail_after(5):
                    while iss.stats.received["0200"] < 4:
                        await trio.sleep(0.01)
                await trio.sleep(0.3)  # the quick one timed out; its task is in the slow reversal write
                nursery.cancel_scope.cancel()
    engine = make_engine(db_url)
    try:
        items = SafStore(engine).list_items()
    finally:
        engine.dispose()
    assert sorted((i.mti, i.pan_masked, i.stan) for i in items) == sorted(
        [("0400", "476173******0044", f"{8100 + n:06d}") for n in range(3)] + [("0400", "555555******0001", "008200")])
    assert node.lost_reversals == 0


async def test_one_connection_cannot_hold_more_than_its_share_in_flight(tmp_path: Path, db_url: str) -> None:
    rules = {"rules": [{"action": "delay", "bin": SLOW_PAN, "ms": 150}]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        text = conf.read_text().replace('name = "acquirer"', 'name = "acquirer"\nmax_inflight_per_connection = 4')
        conf.write_text(text)
        async with running_node(conf) as node, client(port_of(node)) as c:
            batch = [purchase(pan=SLOW_PAN) for _ in range(20)]
            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, node.in_flight)
                    await trio.sleep(0.005)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                for msg in batch:
                    await c.send(msg)
                answers = [await c.wait(msg, timeout=10) for msg in batch]
                nursery.cancel_scope.cancel()
    assert [a[39] for a in answers] == ["00"] * 20
    assert 1 <= peak <= 4
