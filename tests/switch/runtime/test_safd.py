"""The store-and-forward forwarder against a destination the test drives, on the real queue (SQLite and
PostgreSQL): up to ``[saf] window`` entries of a destination in flight at once, while entries for the same
original (an advice, its reversal, their repeats) still go strictly one after the other, each only once the one
before it is answered and recorded; a destination answering 91 to some entries while the others go on; a silent
destination probed one entry at a time; ``saf retry`` during a window sends nothing twice. What goes wrong for one
entry or one destination: test_safd_faults.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from sqlalchemy import Engine

from switch.exchange.journal import now_utc
from switch.exchange.reversal import original_key
from switch.model.message import Message
from switch.runtime.safd import Outcome, SendWindow
from switch.storage.saf import SafItem

from .safrig import Destination, advice, reversal, rig, tag, until


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    yield db_engine


async def test_entries_for_different_originals_go_out_together_in_one_round_trip(engine: Engine) -> None:
    r = rig(engine)  # the default window: 32
    dest = r.links["cell-01"] = Destination(hold_all=True)
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 21)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        # Every entry reaches the destination before it has answered any: one round trip for all twenty.
        await until(lambda: len(dest.received) == 20)
        assert dest.in_flight == 20 and not any(line.startswith("answered") for line in dest.log)
        dest.release_all()
    items = await r.items()
    assert [(i.status, i.attempts, i.last_response_code) for i in items] == [("acked", 1, "00")] * 20
    assert sorted(dest.tags()) == sorted(f"A{n}" for n in range(1, 21))  # each once, as queued (0220)
    assert {m.mti for m in dest.received} == {"0220"}


async def test_no_more_than_the_window_is_in_flight(engine: Engine) -> None:
    r = rig(engine, window=8)
    dest = r.links["cell-01"] = Destination(hold_all=True)
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 21)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        await until(lambda: len(dest.received) == 8)
        await trio.sleep(0.2)  # the forwarder waits for an answer: nothing more leaves meanwhile
        assert sorted(dest.tags()) == sorted(f"A{n}" for n in range(1, 9))  # the oldest first
        dest.release("A1")
        await until(lambda: len(dest.received) == 9)  # one answered, one more goes
        dest.release_all()
    assert dest.most_in_flight == 8
    assert [i.status for i in await r.items()] == ["acked"] * 20


async def test_an_advice_and_its_reversal_never_overtake_under_the_window(engine: Engine) -> None:
    r = rig(engine)
    a, b = r.links["a"], r.links["b"] = Destination(), Destination()
    a.hold("A1")
    b.hold("A3")
    # The reversal of 3 waits on link a while its advice is held on link b (a pool's two links): the order holds
    # across links too.
    await r.enqueue(("a", advice(1)), ("a", advice(2)), ("a", reversal(1)), ("b", advice(3)), ("a", reversal(3)),
                    ("a", advice(4)), ("a", reversal(2)))
    seen_at_arrival: dict[str, str] = {}

    def check_predecessor(msg: Message) -> None:
        # When a reversal arrives, its advice must already be answered and that answer recorded in the queue.
        if tag(msg).startswith("R"):
            (earlier,) = [i for i in r.store.list_items(limit=100)
                          if i.original_key == original_key(msg) and i.mti.startswith("02")]
            seen_at_arrival[tag(msg)] = earlier.status

    a.on_request = check_predecessor
    async with trio.open_nursery() as nursery:
        # The forwarder's own loop: a reversal whose advice waited on another link goes at the next sweep.
        nursery.start_soon(r.forwarder.run)
        await until(lambda: sorted(a.tags()) == ["A1", "A2", "A4", "R2"] and b.tags() == ["A3"])
        await trio.sleep(0.2)
        # Advices 1 and 3 are unanswered: their reversals have not left; everything else went meanwhile.
        assert sorted(a.tags()) == ["A1", "A2", "A4", "R2"] and b.tags() == ["A3"]
        assert a.log.index("answered A2") < a.log.index("sent R2")
        a.release("A1")
        await until(lambda: "R1" in a.tags())
        assert "R3" not in a.tags()
        b.release("A3")
        await until(lambda: "R3" in a.tags())
        await until(lambda: all(i.status == "acked" for i in r.store.list_items()))
        nursery.cancel_scope.cancel()
    assert seen_at_arrival == {"R1": "acked", "R2": "acked", "R3": "acked"}
    assert a.log.index("answered A1") < a.log.index("sent R1")
    assert {i.original_trace_id: (i.status, i.attempts) for i in await r.items()} == {
        t: ("acked", 1) for t in ("A1", "A2", "R1", "A3", "R3", "A4", "R2")}


async def test_a_destination_answering_91_to_some_entries_while_the_others_proceed(engine: Engine) -> None:
    r = rig(engine)
    dest = r.links["cell-01"] = Destination(hold_all=True, codes={"A3": "91", "A7": "96"})
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 13)])
    await r.enqueue(("cell-01", reversal(3)), ("cell-01", reversal(5)), ("cell-01", reversal(7)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        await until(lambda: len(dest.received) == 12)  # all twelve advices in flight together
        dest.release_all()
    entries = await r.by_tag()
    assert {t: (e.status, e.attempts) for t, e in entries.items()} == {
        **{f"A{n}": ("acked", 1) for n in range(1, 13) if n not in (3, 7)},
        "A3": ("pending", 1), "A7": ("pending", 1),  # not delivered: each waits for its own next attempt
        "R5": ("acked", 1),
        "R3": ("pending", 0), "R7": ("pending", 0),  # behind their advices, not sent
    }
    assert dest.tags().count("R5") == 1 and "R3" not in dest.tags() and "R7" not in dest.tags()

    # The destination recovers; the operator retries: the advices go as repeats, then their reversals.
    first_round, first_log = len(dest.received), len(dest.log)
    dest.codes.clear()
    assert await r.forwarder.retry_now(None) == 2
    await r.forwarder.sweep()
    entries = await r.by_tag()
    assert {e.status for e in entries.values()} == {"acked"}
    assert sorted((tag(m), m.mti) for m in dest.received[first_round:]) == [
        ("A3", "0221"), ("A7", "0221"), ("R3", "0400"), ("R7", "0400")]
    assert dest.log.index("answered A3", dest.log.index("sent A3", first_log)) < dest.log.index("sent R3")
    assert dest.log.index("answered A7", dest.log.index("sent A7", first_log)) < dest.log.index("sent R7")


async def test_a_silent_destination_is_probed_one_entry_at_a_time_and_the_window_reopens(engine: Engine) -> None:
    r = rig(engine, window=8, send_timeout_ms=100)
    dest = r.links["cell-01"] = Destination(silent=True)
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 21)])
    await r.forwarder.sweep()
    # The first window goes out whole and times out; the drain then stops (several unanswered in a row).
    assert dest.most_in_flight == 8 and len(dest.received) == 8
    dest.most_in_flight = 0
    await r.forwarder.sweep()
    # The next sweep probes one entry at a time, three in a row, as before the window existed.
    assert dest.most_in_flight == 1 and len(dest.received) == 11
    # The destination answers again: a single entry first, then the window opens again.
    dest.silent = False
    dest.most_in_flight = 0
    first_log = len(dest.log)
    await r.forwarder.sweep()
    assert dest.log[first_log:first_log + 2] == ["sent A12", "answered A12"]  # alone
    assert dest.log[first_log + 2] in ("sent A13", "sent A14")  # then two at once
    assert dest.most_in_flight > 1
    entries = await r.items()
    assert sum(1 for e in entries if e.status == "acked") == 9  # the untried ones; the tried wait their backoff
    assert {e.attempts for e in entries} == {1}
    assert len(dest.received) == 20


async def test_saf_retry_during_a_window_sends_no_entry_twice(engine: Engine) -> None:
    r = rig(engine, retry_interval_ms=50, max_interval_ms=50)
    dest = r.links["cell-01"] = Destination(hold_all=True)
    await r.enqueue(*[("cell-01", advice(n)) for n in range(1, 6)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        await until(lambda: len(dest.received) == 5)
        # Their next attempts fall due while they are still in flight, and the operator makes them due anyway.
        await trio.sleep(0.1)
        await r.forwarder.retry_now(None)
        await r.enqueue(("cell-01", advice(6)))
        dest.hold_all = False
        dest.release("A1")  # one answer: the forwarder looks for more to send
        await until(lambda: "A6" in dest.tags())
        await trio.sleep(0.1)
        dest.release_all()
    assert sorted(dest.tags()) == [f"A{n}" for n in range(1, 7)]  # each once
    assert [(i.status, i.attempts) for i in await r.items()] == [("acked", 1)] * 6


async def test_an_entry_cancelled_in_flight_is_recorded_as_delivered_when_its_answer_comes(engine: Engine) -> None:
    r = rig(engine)
    dest = r.links["cell-01"] = Destination(hold_all=True)
    (first, second) = await r.enqueue(("cell-01", advice(1)), ("cell-01", advice(2)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.sweep)
        await until(lambda: len(dest.received) == 2)
        cancelled = await trio.to_thread.run_sync(lambda: r.store.act(first, "cancel", actor="ops",
                                                                      reason="by hand", now=now_utc()))
        assert cancelled.status == "cancelled"
        dest.release_all()
    items = {i.id: i for i in await r.items()}
    # As before the window: an answer that comes after all says the destination has it.
    assert (items[first].status, items[second].status) == ("acked", "acked")


def test_the_window_opens_on_any_answer_and_closes_on_silence() -> None:
    item = SafItem(1, "cell-01", "0220", "000001", None, None, 100, "840", b"", "pending", 0, now_utc(), now_utc(),
                   None, None, None, None)
    window = SendWindow(32)
    sizes = []
    for status, code, answered in [("undelivered", None, False), ("acked", "00", True), ("acked", "05", True),
                                   ("undelivered", "91", True), ("failed", None, True), ("unsent", None, None),
                                   ("failed", None, None), ("acked", "00", True), ("acked", "00", True),
                                   ("undelivered", None, False), ("undelivered", "96", True)]:
        window.after(Outcome(item, "0220", status, code, answered))  # type: ignore[arg-type]
        sizes.append(window.size)
    # Silence closes it; any answer doubles it up to the limit, whatever the code (a 91/96 refuses that entry,
    # not the destination; a network reject is an answer too); a send that never left, or an entry that could
    # not be opened (answered None), leaves it as it was.
    assert sizes == [1, 2, 4, 8, 16, 16, 16, 32, 32, 1, 2]


async def test_an_entry_the_destination_can_never_encode_is_marked_failed_once_and_blocks_nothing(
        engine: Engine) -> None:
    # A reversal carrying a field the destination's format cannot carry (say UnionPay's GBK DE 43 towards a cell):
    # it never will, so it is marked failed for the operator after one attempt instead of being sent again and
    # again, and the entries behind it (its original's and others') go on.
    r = rig(engine, retry_interval_ms=20, max_interval_ms=20)
    dest = r.links["cell-01"] = Destination()
    dest.unencodable.add("R1")
    await r.enqueue(("cell-01", advice(1)), ("cell-01", reversal(1)), ("cell-01", advice(2)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.forwarder.run)
        await until(lambda: {i.status for i in r.store.list_items()} == {"acked", "failed"})
        await trio.sleep(0.3)  # many retry intervals: it is not tried again
        nursery.cancel_scope.cancel()
    items = {i.original_trace_id: (i.status, i.attempts) for i in await r.items()}
    assert items == {"A1": ("acked", 1), "R1": ("failed", 1), "A2": ("acked", 1)}
    assert sorted(dest.tags()) == ["A1", "A2"]
