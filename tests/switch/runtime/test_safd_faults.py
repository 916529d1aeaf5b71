"""The store-and-forward forwarder when something goes wrong for one entry or one destination, on the real queue
(SQLite and PostgreSQL): prompt 91/96 answers are each entry's own business and hold back nothing behind them;
a database error in one destination's drain costs no other destination anything, and answers already received
are recorded, also when the forwarder is stopped; an advice cancelled or expired while on the wire is still
overtaken by nothing for its original; a send the link refused before anything left uses no attempt."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
import trio
from sqlalchemy import Engine

from switch.exchange.journal import now_utc
from switch.infra.db.errors import StorageError
from switch.storage.saf import SafItem

from .safrig import Destination, advice, reversal, rig, tag, until


@pytest.mark.parametrize("window", [1, 8])
async def test_advices_answered_96_at_once_hold_back_none_of_the_entries_behind_them(
        db_engine: Engine, window: int) -> None:
    # A cell answers 96 at once to each advice it cannot price: that says the entry is not taken now, not that
    # the destination is gone.
    r = rig(db_engine, window=window)
    dest = r.links["cell-01"] = Destination(codes={f"A{n}": "96" for n in range(1, 13)})
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 17)])
    await r.forwarder.sweep()
    entries = await r.by_tag()
    assert sorted(dest.tags()) == sorted(f"A{n}" for n in range(1, 17))  # everything went in one sweep, once
    assert {t: (e.status, e.attempts, e.last_response_code) for t, e in entries.items()} == {
        **{f"A{n}": ("pending", 1, None) for n in range(1, 13)},  # each waits for its own next attempt
        **{f"A{n}": ("acked", 1, "00") for n in range(13, 17)},
    }


async def test_a_run_of_96_answers_leaves_the_window_open(db_engine: Engine) -> None:
    r = rig(db_engine, window=4)
    dest = r.links["cell-01"] = Destination(codes={f"A{n}": "96" for n in range(1, 9)})
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 13)])
    dest.hold("A9", "A10", "A11", "A12")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        # After eight 96s the four good advices still go out together.
        await until(lambda: dest.in_flight == 4 and sorted(dest.tags()[8:]) == ["A10", "A11", "A12", "A9"])
        dest.release_all()
    assert [e.status for e in await r.items()] == ["pending"] * 8 + ["acked"] * 4


async def test_entries_never_sent_go_before_retries(db_engine: Engine) -> None:
    r = rig(db_engine, window=4)
    dest = r.links["cell-01"] = Destination(codes={f"A{n}": "96" for n in range(1, 5)})
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 5)])
    await r.forwarder.sweep()  # four refusals: each waits for its next attempt
    await r.enqueue(*[("cell-01", advice(n)) for n in range(5, 9)])
    assert await r.forwarder.retry_now(None) == 4  # the older ones are due again too
    dest.codes.clear()
    dest.hold_all = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        await until(lambda: len(dest.received) == 8)
        # The new entries leave first (as queued), so a few entries the destination keeps refusing cannot
        # take the window from the rest; the retries follow, as repeats.
        assert sorted((tag(m), m.mti) for m in dest.received[4:]) == [(f"A{n}", "0220") for n in range(5, 9)]
        dest.release_all()
    assert sorted((tag(m), m.mti) for m in dest.received[8:]) == [(f"A{n}", "0221") for n in range(1, 5)]
    assert {e.status for e in await r.items()} == {"acked"}


@pytest.mark.parametrize("failing", ["settle", "take_due"])
async def test_a_database_error_in_one_destinations_drain_costs_the_others_nothing(
        db_engine: Engine, failing: str, caplog: pytest.LogCaptureFixture) -> None:
    r = rig(db_engine, retry_interval_ms=300, max_interval_ms=300)
    x = r.links["x"] = Destination(latency=0.01)
    y = r.links["y"] = Destination(latency=0.2)  # its window is on the wire when x's database write fails
    await r.enqueue(("x", advice(1)), *[("y", advice(n)) for n in range(2, 10)])
    store = r.store
    real_settle, real_take = store.settle, store.take_due
    broke: list[str] = []

    def break_once() -> None:
        if not broke:
            broke.append(failing)
            raise StorageError(f"SAF {failing}: OperationalError: database is locked")

    def settle(now: datetime, acked: Sequence[tuple[int, str]] = (), *args: Any, **kwargs: Any) -> None:
        if failing == "settle" and any(item_id == x_id for item_id, _ in acked):
            break_once()
        real_settle(now, acked, *args, **kwargs)

    def take_due(destination: str, *args: Any, **kwargs: Any) -> list[SafItem]:
        if failing == "take_due" and destination == "x":
            break_once()
        return real_take(destination, *args, **kwargs)

    (x_id,) = [i.id for i in await r.items() if i.destination == "x"]
    store.settle, store.take_due = settle, take_due  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="bulkhead.saf"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(r.forwarder.run)
            await until(lambda: all(i.status == "acked" for i in store.list_items(limit=100)))
            nursery.cancel_scope.cancel()
    assert broke == [failing]
    # y's window went once, as queued: nothing was sent again as a repeat.
    assert sorted((tag(m), m.mti) for m in y.received) == sorted((f"A{n}", "0220") for n in range(2, 10))
    # x's answer was recorded once the database was back: not sent again either.
    assert [(tag(m), m.mti) for m in x.received] == [("A1", "0220")]
    assert {(i.destination, i.attempts) for i in await r.items()} == {("x", 1), ("y", 1)}
    errors = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(errors) == 1 and " x:" in errors[0] and "database is locked" in errors[0], errors


async def test_answers_received_when_the_forwarder_stops_are_recorded(db_engine: Engine) -> None:
    r = rig(db_engine)
    dest = r.links["cell-01"] = Destination()
    dest.hold("A2", "A3")
    first, second, third = await r.enqueue(*[("cell-01", advice(n)) for n in (1, 2, 3)])
    real_settle = r.store.settle
    writing, go_on = threading.Event(), threading.Event()

    def slow_settle(now: datetime, acked: Sequence[tuple[int, str]] = (), *args: Any, **kwargs: Any) -> None:
        if any(item_id == first for item_id, _ in acked):
            writing.set()
            go_on.wait(10)  # the database is slow to write A1's answer
        real_settle(now, acked, *args, **kwargs)

    r.store.settle = slow_settle  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        await until(writing.is_set)
        dest.release("A2")  # answered while A1's answer is being written
        await until(lambda: "answered A2" in dest.log)
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()  # the node stops
        go_on.set()
    items = {i.id: (i.status, i.attempts) for i in await r.items()}
    # A2's answer came in: recorded, it will not go again as a repeat. A3 was on the wire, unanswered: next
    # life sends it again as a repeat (its attempt was recorded before it left).
    assert items == {first: ("acked", 1), second: ("acked", 1), third: ("pending", 1)}


@pytest.mark.parametrize("action", ["cancel", "expire"])
async def test_the_reversal_of_an_advice_settled_by_hand_on_the_wire_waits_for_its_answer(
        db_engine: Engine, action: str) -> None:
    r = rig(db_engine)
    dest = r.links["cell-01"] = Destination()
    dest.hold("A1", "A2")
    first, _, _ = await r.enqueue(("cell-01", advice(1)), ("cell-01", advice(2)), ("cell-01", reversal(1)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.run)
        await until(lambda: sorted(dest.tags()) == ["A1", "A2"])
        await trio.to_thread.run_sync(lambda: r.store.act(first, action, actor="ops", reason="stuck?",
                                                          now=now_utc()))
        dest.release("A2")  # an answer: the drain claims again, and the queue no longer holds R1 back
        await trio.sleep(0.3)
        assert "R1" not in dest.tags()  # A1 is still on the wire
        dest.release("A1")
        await until(lambda: "R1" in dest.tags())
        await until(lambda: all(i.status == "acked" for i in r.store.list_items()))
        nursery.cancel_scope.cancel()
    assert dest.log.index("answered A1") < dest.log.index("sent R1")
    assert [i.status for i in await r.items()] == ["acked"] * 3  # A1's answer after all: the issuer has it


async def test_an_advice_settled_by_hand_on_one_link_of_a_pool_holds_its_reversal_on_the_other(
        db_engine: Engine) -> None:
    r = rig(db_engine)
    wire: list[str] = []  # both links' requests and answers, in order
    a, b = r.links["a"], r.links["b"] = Destination(log=wire), Destination(log=wire)
    b.hold("A1")
    a.hold("A2", "A3")
    first, *_ = await r.enqueue(("b", advice(1)), ("a", advice(2)), ("a", advice(3)), ("a", reversal(1)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.run)
        await until(lambda: b.tags() == ["A1"] and sorted(a.tags()) == ["A2", "A3"])
        await trio.to_thread.run_sync(lambda: r.store.act(first, "cancel", actor="ops", reason="stuck?",
                                                          now=now_utc()))
        a.release("A2")  # link a's drain claims again while A1 is on the wire on link b
        await trio.sleep(0.3)
        assert sorted(a.tags()) == ["A2", "A3"]
        b.release("A1")
        a.release("A3")
        await until(lambda: "R1" in a.tags())
        nursery.cancel_scope.cancel()
    assert wire.index("answered A1") < wire.index("sent R1")


async def test_a_send_refused_for_back_pressure_uses_no_attempt(db_engine: Engine) -> None:
    # One attempt each: an entry whose refusals were counted as attempts would become an exception.
    r = rig(db_engine, window=8, max_attempts=1)
    dest = r.links["cell-01"] = Destination(capacity=2)  # the connector's max_inflight, shared with live traffic
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 7)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.run)
        await until(lambda: all(i.status != "pending" for i in r.store.list_items()))
        nursery.cancel_scope.cancel()
    assert dest.refused > 0
    # Each went once, as queued (never a repeat of something that never left), and was acknowledged.
    assert sorted((tag(m), m.mti) for m in dest.received) == sorted((f"A{n}", "0220") for n in range(1, 7))
    assert [(i.status, i.attempts) for i in await r.items()] == [("acked", 1)] * 6


async def test_a_link_that_drops_between_claim_and_send_leaves_the_entries_as_they_were(db_engine: Engine) -> None:
    r = rig(db_engine, window=4)
    dest = r.links["cell-01"] = Destination(capacity=0)  # up when the drain looked, gone when it sends
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 5)])
    before = await r.items()
    await r.forwarder.sweep()
    assert dest.refused > 0 and dest.received == []
    assert await r.items() == before  # no attempt, no backoff: due as before
    dest.capacity = None
    await r.forwarder.sweep()  # the link is back: all four at once, each as queued
    assert dest.most_in_flight == 4
    assert sorted((tag(m), m.mti) for m in dest.received) == [(f"A{n}", "0220") for n in range(1, 5)]
    assert [(i.status, i.attempts) for i in await r.items()] == [("acked", 1)] * 4
