"""Advices and reversals for one original reach the destination in the order they arrived, whatever order their
tasks run in and their queue reads come back in (issue 11: a reversal must never overtake an advice or repeat for
the same original), and an exchange stranded by a hard stop lets go of what waited behind it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from schemes.generic import SCHEME
from switch.exchange.cardstatus import CardStatusCache
from switch.exchange.context import Exchange
from switch.exchange.lifecycle import Phase
from switch.exchange.pipeline import Pipeline
from switch.exchange.reversal import original_data_elements, original_key
from switch.exchange.services import Job
from switch.model.message import Message
from switch.runtime.tasks import ExchangeTasks
from tests.switch.exchange.test_pipeline import (
    STAND_IN,
    FakeNode,
    FakeSource,
    _acquirer_advice,
    _acquirer_reversal,
    _answer,
    _exchange,
    _purchase,
)


@dataclass
class ConcurrentNode(FakeNode):
    """Exchange tasks that really run side by side, and store-and-forward reads that come back when the test lets
    them, in the order it chooses."""

    reads: list[trio.Event] = field(default_factory=list)
    nursery: trio.Nursery | None = None

    async def saf_holder(self, links: tuple[str, ...], original_key: str) -> str | None:
        gate = trio.Event()
        self.reads.append(gate)
        await gate.wait()
        return await super().saf_holder(links, original_key)

    def spawn(self, x: Exchange, job: Job) -> None:
        if self.nursery is None:
            self.jobs.append(job)  # started by the test, in the order it chooses
        else:
            self.nursery.start_soon(job)

    async def start_tasks(self, nursery: trio.Nursery, reverse: bool) -> None:
        jobs, self.jobs = self.jobs[::-1] if reverse else self.jobs, []
        for job in jobs:
            nursery.start_soon(job)
            await trio.testing.wait_all_tasks_blocked()
        self.nursery = nursery

    async def settle(self, newest_first: bool) -> None:
        """Let every read waiting come back, the newest or the oldest first, until nothing moves any more."""
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if not self.reads:
                return
            self.reads.pop(-1 if newest_first else 0).set()


def _reversal_advice(original: Message) -> Message:
    reversal = _acquirer_reversal(original)
    reversal.mti = "0420"
    return reversal


INTERLEAVINGS = [pytest.param(reverse, newest, id=f"{'reversal' if reverse else 'advice'}-task-first-"
                              f"{'newest' if newest else 'oldest'}-read-first")
                 for reverse in (False, True) for newest in (False, True)]


@pytest.mark.parametrize(("tasks_reversed", "newest_read_first"), INTERLEAVINGS)
@pytest.mark.parametrize("advice_answered", [False, True], ids=["advice-times-out", "advice-answered"])
async def test_an_advice_and_its_reversal_arriving_together_reach_the_destination_in_arrival_order(
        tasks_reversed: bool, newest_read_first: bool, advice_answered: bool) -> None:
    node, acquirer = ConcurrentNode(), FakeSource()
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    advice = _acquirer_advice()
    a, r = _exchange(advice, acquirer), _exchange(_reversal_advice(advice), acquirer)
    pipeline.start(a)  # both frames came in one read: both are routed before either task runs
    pipeline.start(r)
    async with trio.open_nursery() as nursery:
        await node.start_tasks(nursery, tasks_reversed)
        await node.settle(newest_read_first)
        assert [m.mti for m in node.link.sent] == ["0220"] and r.phase is Phase.ROUTED  # the 0420 waits
        if advice_answered:
            node.link.waiting[0](_answer(node.link.sent[0], "00"))
        else:
            node.link.waiting[0](None)  # held as its repeat: the reversal must queue behind it
        await node.settle(newest_read_first)
        if advice_answered:
            assert [m.mti for m in node.link.sent] == ["0220", "0420"] and not node.queued
            node.link.waiting[1](_answer(node.link.sent[1], "00"))
            await node.settle(newest_read_first)
    if not advice_answered:
        assert [m.mti for m in node.link.sent] == ["0220"]
        assert [(d, m.mti) for d, m, _ in node.queued] == [("up", "0221"), ("up", "0420")]
    assert a.closed and r.closed and len(node.upstream_originals) == 0
    assert [SCHEME.decode(body)[39] for body in acquirer.sent] == ["00", "00"]


@pytest.mark.parametrize("newest_read_first", [False, True], ids=["oldest-read-first", "newest-read-first"])
async def test_what_waited_behind_an_original_goes_on_oldest_first_one_at_a_time(newest_read_first: bool) -> None:
    node = ConcurrentNode()
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    original = _purchase()
    # An advice the acquirer sends for the same original (field 90 names it, as a completion's does), then the
    # acquirer's reversal: both arrive while the purchase is upstream at a destination that may be stood in for.
    completion = Message("0220", {**_acquirer_advice().fields, 90: original_data_elements(original)})
    p, c, r = (_exchange(m, table=STAND_IN) for m in (original, completion, _reversal_advice(original)))
    assert original_key(completion) == original_key(r.request) == original_key(original)
    async with trio.open_nursery() as nursery:
        pipeline.start(p)
        pipeline.start(c)
        pipeline.start(r)
        await node.start_tasks(nursery, reverse=True)
        await node.settle(newest_read_first)
        assert [m.mti for m in node.link.sent] == ["0200"]
        node.link.waiting[0](_answer(node.link.sent[0], "00"))  # the purchase settles: its followers go on
        await node.settle(newest_read_first)
        assert [m.mti for m in node.link.sent] == ["0200", "0220"]  # the reversal waits for the advice's outcome
        node.link.waiting[1](_answer(node.link.sent[1], "00"))
        await node.settle(newest_read_first)
        assert [m.mti for m in node.link.sent] == ["0200", "0220", "0420"]
        node.link.waiting[2](_answer(node.link.sent[2], "00"))
        await node.settle(newest_read_first)
    assert all(x.closed for x in (p, c, r)) and not node.queued and len(node.upstream_originals) == 0


async def test_an_exchange_stranded_by_a_hard_stop_lets_go_of_what_waited_behind_its_original() -> None:
    node = FakeNode()
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    advice = _acquirer_advice()
    a = _exchange(advice)
    pipeline.start(a)
    await node.run_jobs()
    r = _exchange(_reversal_advice(advice))
    pipeline.start(r)
    await node.run_jobs()
    assert a.phase is Phase.SENT and r.phase is Phase.ROUTED  # the reversal waits behind the advice upstream
    key = original_key(advice)
    assert key is not None and node.upstream_originals.parked(key) == 1
    # The node stops hard: its work nursery is closed, so nothing may start any more (the node's own wiring).
    tasks = ExchangeTasks(pipeline.strand)
    async with trio.open_nursery() as nursery:
        tasks.nursery = nursery
    node.spawn = tasks.spawn  # type: ignore[method-assign]
    node.link.waiting[0](None)  # the advice's deadline: its fallback cannot run, the exchange is stranded
    assert not node.upstream_originals.holds(key)  # it let go; the reversal behind it was stranded in turn
    assert r.closed and r in node.finished_exchanges and r.response is None
    assert not r.conn.sent  # type: ignore[attr-defined]  # no answer: the acquirer sends it again
    # An advice has nothing to reverse (its acquirer repeats it until answered): dropped, not left for the stop.
    assert a.closed and id(a) not in node.awaiting_upstream
