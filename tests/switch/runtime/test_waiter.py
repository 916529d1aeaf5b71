"""The contract of switch.runtime.links.waiter: a parked :class:`Slot` and the one :class:`Timer` serving every
deadline.

The node's upstream and journal waits rely on it: a slot woken with a value returns it; a slot whose deadline
passes returns False at the deadline (the timer has no tick: it sleeps until the earliest deadline); a value
that comes after the deadline is refused, so :meth:`Mux.deliver` sends it to the late handler (nothing
unmatched is dropped silently, STYLE §5); a cancelled waiter leaves cleanly. Timing runs on trio's autojump
MockClock (the ``autojump_clock`` fixture of pytest-trio), so deadlines are exact and no test really sleeps.
"""

from __future__ import annotations

import gc
import math
import random
import weakref
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from schemes.generic import SCHEME
from switch.config import ConnectorConfig
from switch.model.message import Message
from switch.runtime.links.connection import Connection
from switch.runtime.links.hooks import LinkHooks
from switch.runtime.links.mux import DuplicateKeyError, Mux
from switch.runtime.links.outbound import LinkDown, OutboundLink
from switch.runtime.links.state import LinkState
from switch.runtime.links.waiter import Continuation, Slot, Timer
from switch.wire.framing import LengthFraming

# Float slack only: with the MockClock the timer wakes exactly at the deadline, never a "tick" later.
EPS = 1e-9


@pytest.fixture
async def timer() -> AsyncIterator[Timer]:
    """A running timer, as the node keeps one for its lifetime (Node._serve)."""
    t = Timer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(t.run)
        yield t
        nursery.cancel_scope.cancel()


def req(stan: str) -> Message:
    return Message("0200", {11: stan, 41: "TERM0001"})


# -- a value, a deadline -----------------------------------------------------------------------------------
async def test_value_set_while_waiting_is_returned_at_once(autojump_clock: trio.testing.MockClock,
                                                           timer: Timer) -> None:
    slot: Slot[str] = Slot()
    woke: list[float] = []

    async def waiter() -> None:
        assert await slot.wait(timer, 10.0)
        woke.append(trio.current_time())

    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(2.5)
        assert slot.set("answer")
    assert slot.value == "answer" and slot.is_set() and not slot.is_open
    assert woke == [pytest.approx(t0 + 2.5, abs=EPS)]  # at the set, not at the deadline
    await trio.sleep(20)  # the stale timer entry passing its deadline changes nothing
    assert slot.is_set() and slot.value == "answer"
    assert len(timer) == 0


async def test_value_set_before_the_wait_is_returned() -> None:
    slot: Slot[int] = Slot()
    assert slot.set(7)
    with trio.fail_after(1):
        assert await slot.wait()
    assert slot.value == 7


async def test_none_is_a_value_not_a_timeout(autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    # Mux.fail_all and the journal callback wake waiters with None: that is "set", not "timed out".
    slot: Slot[BaseException] = Slot()
    async with trio.open_nursery() as nursery:
        async def wake() -> None:
            await trio.sleep(1)
            slot.set(None)
        nursery.start_soon(wake)
        assert await slot.wait(timer, 5.0)
    assert slot.is_set() and slot.value is None


async def test_deadline_returns_false_exactly_at_the_deadline(autojump_clock: trio.testing.MockClock,
                                                              timer: Timer) -> None:
    slot: Slot[str] = Slot()
    t0 = trio.current_time()
    assert not await slot.wait(timer, 1.5)
    assert trio.current_time() == pytest.approx(t0 + 1.5, abs=EPS)
    assert not slot.is_open and not slot.is_set() and slot.value is None
    assert len(timer) == 0


async def test_deadline_on_the_real_clock(timer: Timer) -> None:
    # The same on the wall clock: not before the deadline, and not much after it (2 shared cores: generous).
    slot: Slot[str] = Slot()
    t0 = trio.current_time()
    with trio.fail_after(5):
        assert not await slot.wait(timer, 0.05)
    elapsed = trio.current_time() - t0
    assert 0.05 <= elapsed < 0.05 + 0.5


async def test_without_timer_or_with_infinite_timeout_only_a_value_ends_the_wait(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    for use_timer in (False, True):
        slot: Slot[str] = Slot()
        with trio.move_on_after(3600) as scope:
            await (slot.wait(timer) if use_timer else slot.wait())
        assert scope.cancelled_caught  # still parked an hour later
        assert len(timer) == 0  # math.inf is never registered


async def test_zero_and_negative_timeouts_expire_on_the_next_pass_of_the_timer(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    for timeout in (0.0, -1.0):
        slot: Slot[str] = Slot()
        t0 = trio.current_time()
        with trio.fail_after(1):
            assert not await slot.wait(timer, timeout)
        assert trio.current_time() == pytest.approx(t0, abs=EPS)


async def test_slots_time_out_in_deadline_order_whatever_the_order_they_were_added(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    rng = random.Random(8583)
    timeouts = [round(rng.uniform(0.1, 30.0), 3) for _ in range(200)]
    woke: list[tuple[float, float]] = []
    t0 = trio.current_time()

    async def waiter(timeout: float) -> None:
        assert not await Slot[str]().wait(timer, timeout)
        woke.append((trio.current_time() - t0, timeout))

    async with trio.open_nursery() as nursery:
        for timeout in timeouts:  # random order: shorter deadlines arrive while the timer sleeps on longer ones
            nursery.start_soon(waiter, timeout)
    assert [timeout for _, timeout in woke] == sorted(timeouts)
    for at, timeout in woke:
        assert at == pytest.approx(timeout, abs=1e-6)
    assert len(timer) == 0


async def test_shorter_deadline_added_while_the_timer_sleeps_on_a_longer_one(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    # Timer.add must pull the sleeping timer's deadline in; otherwise the short wait would end at 100 s.
    woke: dict[str, float] = {}
    t0 = trio.current_time()

    async def waiter(name: str, timeout: float) -> None:
        assert not await Slot[str]().wait(timer, timeout)
        woke[name] = trio.current_time() - t0

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, "long", 100.0)
        await trio.sleep(10)  # the timer is now asleep until t0 + 100
        nursery.start_soon(waiter, "short", 5.0)
    assert woke["short"] == pytest.approx(15.0, abs=1e-6)
    assert woke["long"] == pytest.approx(100.0, abs=1e-6)


async def test_waits_registered_before_the_timer_runs_are_served_when_it_starts(
        autojump_clock: trio.testing.MockClock) -> None:
    t = Timer()
    t0 = trio.current_time()
    result: list[bool] = []

    async def waiter() -> None:
        result.append(await Slot[str]().wait(t, 2.0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1)
        assert len(t) == 1
        nursery.start_soon(t.run)
        await trio.sleep(1.5)
        assert result == [False]
        assert trio.current_time() == pytest.approx(t0 + 2.5, abs=EPS)
        nursery.cancel_scope.cancel()


# -- late values -------------------------------------------------------------------------------------------
async def test_value_after_the_deadline_is_refused_and_never_reaches_the_waiter(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    slot: Slot[str] = Slot()
    assert not await slot.wait(timer, 1.0)
    assert not slot.set("late")
    assert slot.value is None and not slot.is_set()
    assert not await slot.wait(timer, 1.0)  # settled for good: asking again does not park


async def test_mux_sends_a_response_after_the_deadline_to_the_late_handler(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[Message] = []
    mux = Mux("up", SCHEME.match_key, late.append)
    request = req("000001")
    pending = mux.register(request)
    assert not await pending.slot.wait(timer, 2.0)
    # The window OutboundLink.request leaves between its wait returning and its finally forgetting the entry:
    # the entry is still registered, but its slot is settled, so deliver must not count it as answered.
    assert len(mux) == 1
    assert not mux.deliver(SCHEME.make_response(request, "00"))
    assert [m.stan for m in late] == ["000001"] and pending.response is None
    # Once forgotten, a second copy also goes to the late handler.
    mux.forget(pending)
    assert not mux.deliver(SCHEME.make_response(request, "00"))
    assert len(late) == 2 and len(mux) == 0


async def test_response_in_the_same_tick_as_the_expiry_goes_to_the_late_handler(timer: Timer) -> None:
    # The timer has expired the slot and rescheduled the waiter, which has not run yet when the response is
    # read: the waiter sees a timeout (and the exchange is answered 91), so the response must count as late.
    late: list[Message] = []
    mux = Mux("up", SCHEME.match_key, late.append)
    request = req("000002")
    pending = mux.register(request)
    result: list[bool] = []

    async def waiter() -> None:
        result.append(await pending.slot.wait(timer, math.inf))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        pending.slot.expire()  # what Timer.run does at the deadline
        assert not mux.deliver(SCHEME.make_response(request, "00"))  # no checkpoint in between
    assert result == [False]
    assert [m.stan for m in late] == ["000002"] and pending.response is None


# -- cancellation ------------------------------------------------------------------------------------------
async def test_cancelled_waiter_gets_cancelled_and_its_slot_refuses_later_values(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    slot: Slot[str] = Slot()
    reached_end = False
    t0 = trio.current_time()
    with trio.move_on_after(1.0) as scope:  # an outer deadline, e.g. the node stopping
        await slot.wait(timer, 10.0)
        reached_end = True
    assert scope.cancelled_caught and not reached_end
    assert trio.current_time() == pytest.approx(t0 + 1.0, abs=EPS)
    assert not slot.is_open and not slot.is_set()
    assert not slot.set("late")  # so Mux.deliver reports it late
    assert slot.value is None


async def test_cancelled_waiter_entry_is_dropped_and_never_wakes_anything(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    slots: list[Slot[str]] = [Slot() for _ in range(300)]
    async with trio.open_nursery() as nursery:
        for i, slot in enumerate(slots):
            nursery.start_soon(slot.wait, timer, 50.0 + i)
        await trio.testing.wait_all_tasks_blocked()
        assert len(timer) == 300
        nursery.cancel_scope.cancel()
    assert all(not s.is_open and not s.is_set() for s in slots)
    # Entries are dropped lazily; the next registration clears every settled entry ahead of it.
    survivor: Slot[str] = Slot()
    t0 = trio.current_time()
    assert not await survivor.wait(timer, 1.0)
    assert trio.current_time() == pytest.approx(t0 + 1.0, abs=EPS)
    assert len(timer) == 0


async def test_cancelled_entries_leave_the_timer_by_their_deadline_at_the_latest(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    slot: Slot[str] = Slot()
    with trio.move_on_after(1.0):
        await slot.wait(timer, 10.0)
    assert len(timer) == 1  # dropped lazily, not at the cancellation
    await trio.sleep(9.5)  # past the deadline: the timer woke, dropped it, and expired nothing
    assert len(timer) == 0 and not slot.is_set()


# -- many at once ------------------------------------------------------------------------------------------
async def test_hundreds_of_slots_answered_timed_out_and_cancelled_at_once(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    rng = random.Random(1987)
    n = 600
    timeouts = [rng.uniform(1.0, 20.0) for _ in range(n)]
    # Per slot: answered at some time (before or after its deadline), cancelled at some time, or neither.
    answer_at: dict[int, float] = {}
    cancel_at: dict[int, float] = {}
    for i in range(n):
        fate = rng.randrange(4)
        if fate == 0:
            answer_at[i] = rng.uniform(0.0, timeouts[i] * 0.99)
        elif fate == 1:
            answer_at[i] = timeouts[i] + rng.uniform(0.01, 5.0)  # late
        elif fate == 2:
            cancel_at[i] = rng.uniform(0.0, timeouts[i] * 0.99)
    slots: list[Slot[int]] = [Slot() for _ in range(n)]
    outcome: dict[int, tuple[str, float]] = {}
    late: list[int] = []
    t0 = trio.current_time()

    async def waiter(i: int) -> None:
        with trio.CancelScope() as scope:
            if i in cancel_at:
                scope.deadline = t0 + cancel_at[i]
            got = await slots[i].wait(timer, timeouts[i])
            outcome[i] = ("value" if got else "timeout", trio.current_time() - t0)
            return
        outcome[i] = ("cancelled", trio.current_time() - t0)

    async def answer(i: int) -> None:
        await trio.sleep_until(t0 + answer_at[i])
        if not slots[i].set(i):
            late.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(waiter, i)
        for i in answer_at:
            nursery.start_soon(answer, i)
        await trio.sleep(1.0)
        assert 0 < len(timer) <= n
    for i in range(n):
        kind, at = outcome[i]
        if i in cancel_at:
            assert kind == "cancelled" and at == pytest.approx(cancel_at[i], abs=1e-6), i
        elif i in answer_at and answer_at[i] < timeouts[i]:
            assert kind == "value" and at == pytest.approx(answer_at[i], abs=1e-6), i
            assert slots[i].value == i
        else:
            assert kind == "timeout" and at == pytest.approx(timeouts[i], abs=1e-6), i
            assert slots[i].value is None
    assert sorted(late) == sorted(i for i in answer_at if answer_at[i] >= timeouts[i])
    assert len(timer) == 0  # every deadline has passed: nothing is left behind


async def test_settled_entries_do_not_pile_up_behind_one_long_wait(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    # An issuer that never answers one request keeps that wait open for the whole timeout. Every exchange
    # answered meanwhile must not leave its entry (and, through the slot, its response) in the heap until
    # then: at 2,000 exchanges/s and a 30 s timeout that would be 60,000 responses held for nothing.
    async with trio.open_nursery() as nursery:
        stuck: Slot[int] = Slot()
        nursery.start_soon(stuck.wait, timer, 30.0)
        for i in range(5000):
            slot: Slot[int] = Slot()
            nursery.start_soon(slot.wait, timer, 30.0)
            await trio.testing.wait_all_tasks_blocked()
            slot.set(i)
            await trio.sleep(0.001)
            assert len(timer) < 2000, i  # 2 live entries plus bounded slack, not one per exchange so far
        nursery.cancel_scope.cancel()


# -- one-shot --------------------------------------------------------------------------------------------
async def test_second_set_is_refused_and_the_first_value_stays() -> None:
    slot: Slot[str] = Slot()
    assert slot.set("first")
    assert not slot.set("second")
    assert slot.value == "first"
    assert await slot.wait() and await slot.wait()  # reading again returns the same settled result


async def test_expire_after_set_and_set_after_expire_change_nothing() -> None:
    answered: Slot[str] = Slot()
    answered.set("v")
    answered.expire()
    assert answered.is_set() and answered.value == "v"
    expired: Slot[str] = Slot()
    expired.expire()
    assert not expired.set("v") and expired.value is None
    assert not await expired.wait()


async def test_a_second_task_waiting_on_the_same_slot_is_refused() -> None:
    # "Only one task may wait": a second waiter would silently replace the first, which would then never wake.
    slot: Slot[str] = Slot()
    first: list[bool] = []

    async def waiter() -> None:
        first.append(await slot.wait())

    with trio.fail_after(5):  # without the guard the second wait parks for good and the first never wakes
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await slot.wait()
            assert slot.set("v")
    assert first == [True]


# -- the outbound link, without a node ---------------------------------------------------------------------
def outbound(timer: Timer, late: list[tuple[str, Message]]) -> tuple[OutboundLink, Connection]:
    """A connected link whose requests go into a memory stream nobody reads (responses are injected)."""
    config = ConnectorConfig(name="up", hosts=(("127.0.0.1", 1),), scheme="generic",
                             options=SCHEME.link_options(None, None), signon=False)

    def on_request(*_: object) -> None:
        raise AssertionError("no request expected")

    link = OutboundLink(config, SCHEME, LinkHooks(on_request, on_request, lambda name, m: late.append((name, m))),
                        timer)
    send, _ = trio.testing.memory_stream_pair()
    link.conn = Connection(send, LengthFraming("binary2").framer(), link="up", peer="test")
    link.state = LinkState.CONNECTED
    assert link.is_up()
    return link, link.conn


async def test_outbound_request_answered_in_time_returns_the_response(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[tuple[str, Message]] = []
    link, _ = outbound(timer, late)
    request = req("000010")
    got: list[Message | None] = []

    async def ask() -> None:
        got.append(await link.request(request, timeout=5.0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.sleep(1)
        assert link.mux.deliver(SCHEME.make_response(request, "00"))
    assert got[0] is not None and got[0].response_code == "00"
    assert late == [] and link.timeouts == 0 and len(link.mux) == 0


async def test_outbound_request_answered_after_its_timeout_goes_to_the_late_handler(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[tuple[str, Message]] = []
    link, _ = outbound(timer, late)
    request = req("000011")
    t0 = trio.current_time()
    assert await link.request(request, timeout=5.0) is None
    assert trio.current_time() == pytest.approx(t0 + 5.0, abs=EPS)
    assert link.timeouts == 1 and len(link.mux) == 0
    assert not link.mux.deliver(SCHEME.make_response(request, "00"))
    assert [(name, m.stan) for name, m in late] == [("up", "000011")]


async def test_outbound_request_cancelled_from_outside_forgets_its_entry(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[tuple[str, Message]] = []
    link, _ = outbound(timer, late)
    request = req("000012")
    with trio.move_on_after(1.0) as scope:
        await link.request(request, timeout=5.0)
    assert scope.cancelled_caught and len(link.mux) == 0 and link.timeouts == 1
    assert not link.mux.deliver(SCHEME.make_response(request, "00"))
    assert len(late) == 1


async def test_take_hands_the_value_over_once() -> None:
    slot: Slot[str] = Slot()
    assert slot.set("answer")
    assert await slot.wait()
    assert slot.take() == "answer"
    assert slot.value is None and slot.take() is None  # the settled slot keeps nothing for the timer


# -- continuations: the node's common path, without a task -------------------------------------------------
class Calls:
    """What a continuation's callbacks were called with, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_set(self, value: object) -> None:
        self.calls.append(("set", value))

    def on_expire(self) -> None:
        self.calls.append(("expire", None))


async def test_continuation_set_calls_its_function_once_and_the_deadline_then_does_nothing(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    seen = Calls()
    slot: Continuation[str] = Continuation(seen.on_set, seen.on_expire)
    timer.add(trio.current_time() + 5.0, slot)
    await trio.sleep(1.0)
    assert slot.set("answer")
    assert not slot.set("again")
    await trio.sleep(10.0)  # past the deadline: the settled entry expires nothing
    assert seen.calls == [("set", "answer")]
    assert slot.value is None  # the value went to the function, not into the slot


async def test_continuation_deadline_calls_on_expire_at_the_deadline_and_refuses_a_late_value(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    seen = Calls()
    t0 = trio.current_time()
    expired_at: list[float] = []
    slot: Continuation[str] = Continuation(seen.on_set, lambda: expired_at.append(trio.current_time()))
    timer.add(t0 + 2.0, slot)
    await trio.sleep(3.0)
    assert expired_at == [pytest.approx(t0 + 2.0, abs=EPS)]
    assert not slot.set("late")
    assert seen.calls == []


class Held:
    """Stands for the pipeline's exchange, which the callbacks close over (weakly referenceable)."""


@pytest.mark.parametrize("settle", ["set", "expire", "close"])
async def test_continuation_forgets_its_callbacks_once_settled(settle: str) -> None:
    """The callbacks close over an exchange with its clear request (track 2, PIN block): a settled entry the
    timer still holds must not keep it alive."""
    held = Held()
    ref = weakref.ref(held)
    slot: Continuation[str] = Continuation(lambda _, h=held: None, lambda h=held: None)  # type: ignore[misc]
    if settle == "set":
        slot.set("v")
    else:
        getattr(slot, settle)()
    del held
    gc.collect()
    assert ref() is None and not slot.is_open


async def test_a_continuation_is_not_waited_on() -> None:
    slot: Continuation[str] = Continuation(lambda _: None, lambda: None)
    with pytest.raises(TypeError):
        await slot.wait()


async def test_outbound_send_calls_back_with_the_response_from_the_reader(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[tuple[str, Message]] = []
    link, _ = outbound(timer, late)
    request = req("000020")
    got: list[Message | None] = []
    link.send(request, 5.0, got.append)
    assert link.sent == 1 and len(link.mux) == 1 and got == []
    await trio.sleep(1.0)
    assert link.mux.deliver(SCHEME.make_response(request, "00"))
    assert [m.response_code if m else None for m in got] == ["00"]
    await trio.sleep(10.0)  # its deadline passes: nothing more happens
    assert len(got) == 1 and link.timeouts == 0 and len(link.mux) == 0 and late == []


async def test_outbound_send_unanswered_calls_back_with_none_at_the_deadline_and_a_late_answer_goes_astray(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[tuple[str, Message]] = []
    link, _ = outbound(timer, late)
    request = req("000021")
    t0 = trio.current_time()
    at: list[float] = []

    def answered(response: Message | None) -> None:
        assert response is None
        at.append(trio.current_time())

    link.send(request, 3.0, answered)
    await trio.sleep(5.0)
    assert at == [pytest.approx(t0 + 3.0, abs=EPS)]
    assert link.timeouts == 1 and len(link.mux) == 0
    assert not link.mux.deliver(SCHEME.make_response(request, "00"))
    assert [(name, m.stan) for name, m in late] == [("up", "000021")]


async def test_outbound_send_on_a_lost_connection_calls_back_with_none_once(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[tuple[str, Message]] = []
    link, _ = outbound(timer, late)
    got: list[Message | None] = []
    link.send(req("000022"), 3.0, got.append)
    assert link.mux.fail_all() == 1
    await trio.sleep(5.0)
    assert got == [None] and link.timeouts == 1


async def test_outbound_send_refuses_a_duplicate_key_and_a_closed_connection_without_calling_back(
        autojump_clock: trio.testing.MockClock, timer: Timer) -> None:
    late: list[tuple[str, Message]] = []
    link, conn = outbound(timer, late)
    got: list[Message | None] = []
    link.send(req("000023"), 3.0, got.append)
    with pytest.raises(DuplicateKeyError):
        link.send(req("000023"), 3.0, got.append)
    conn.close()
    with pytest.raises(LinkDown):
        link.send(req("000024"), 3.0, got.append)
    assert len(link.mux) == 1  # only the first: the refused ones left nothing registered
    await trio.sleep(5.0)
    assert got == [None] and link.sent == 1


def test_expire_all_ends_every_open_wait_in_deadline_order_and_leaves_settled_ones() -> None:
    timer = Timer()
    seen: list[str] = []
    early, late, settled = (Continuation(lambda v, n=n: seen.append(f"{n} set"), lambda n=n: seen.append(n))
                            for n in ("early", "late", "settled"))
    timer.add(20.0, late)
    timer.add(10.0, early)
    timer.add(5.0, settled)
    settled.set(None)
    timer.expire_all()  # the node has stopped: nothing it waits for will come
    assert seen == ["settled set", "early", "late"] and len(timer) == 0
    timer.expire_all()  # nothing twice
    assert seen == ["settled set", "early", "late"]
