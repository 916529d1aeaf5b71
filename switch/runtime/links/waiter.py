"""Parking a task until a value arrives or a deadline passes, without a cancel scope per wait.

Every exchange waits twice: for its upstream answer and for its journal row to commit. With a
``trio.move_on_after`` and a ``trio.Event`` per wait, entering and leaving the two cancel scopes was about a
fifth of the node's event-loop CPU in a fin-sim profile (CancelScope.__enter__ alone 16% inclusive: a
CancelStatus per scope, deadline registration, recalculation). A :class:`Slot` parks the task directly
(``trio.lowlevel.wait_task_rescheduled``) and one :class:`Timer` task per node serves every deadline from a
heap. Cancellation from outside (a node stopping) still reaches a parked task: the abort callback closes the
slot, and the task gets ``trio.Cancelled`` as from any other checkpoint.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

T = TypeVar("T")

_OPEN, _SET, _CLOSED = 0, 1, 2


class Slot(Generic[T]):
    """A one-shot value one task waits for. Settled once: by :meth:`set`, by its deadline, or by
    cancellation of the waiting task; whatever comes second is refused (``set`` returns False)."""

    __slots__ = ("_state", "_task", "value")

    def __init__(self) -> None:
        self._state = _OPEN
        self._task: trio.lowlevel.Task | None = None
        self.value: T | None = None

    @property
    def is_open(self) -> bool:
        return self._state == _OPEN

    def is_set(self) -> bool:
        """True once :meth:`set` has given the slot its value."""
        return self._state == _SET

    def set(self, value: T | None) -> bool:
        """Give the waiter ``value`` (it may also not be waiting yet); False when already settled."""
        if self._state != _OPEN:
            return False
        self._state = _SET
        self.value = value
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)
        return True

    def take(self) -> T | None:
        """The value, handed over once: the slot forgets it, since the timer may keep a settled slot until an
        earlier deadline passes and a response carries card data (DE 2, 35) that must not linger."""
        value, self.value = self.value, None
        return value

    def expire(self) -> None:
        """The deadline passed (called by the timer): wake the waiter empty-handed."""
        if self._state != _OPEN:
            return
        self._state = _CLOSED
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    async def wait(self, timer: Timer | None = None, timeout: float = math.inf) -> bool:
        """Wait until :meth:`set` (True) or, with a ``timer``, ``timeout`` seconds (False).

        Only one task may wait: a second one gets ``trio.BusyResourceError`` (replacing the first would leave it
        parked for good). Cancellation closes the slot and raises ``trio.Cancelled``.
        """
        if self._state == _OPEN:
            if self._task is not None:
                raise trio.BusyResourceError("another task is already waiting on this slot")
            self._task = trio.lowlevel.current_task()
            if timer is not None and timeout != math.inf:
                timer.add(trio.current_time() + timeout, self)

            def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
                self._state = _CLOSED
                self._task = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        return self._state == _SET


def _ignore(_: object) -> None:
    pass


def _nothing() -> None:
    pass


class Continuation(Slot[T]):
    """A slot nobody waits on: settling it calls a function instead of waking a task.

    The node's common path runs without a task per exchange (DESIGN.md section 9: no task per message where a
    continuation will do): the upstream answer and the journal commit each call the exchange's next step
    inline, from the link reader, the timer or the commit report. ``on_set`` gets what :meth:`set` was given,
    ``on_expire`` runs when the deadline passes first; the value is not kept (it may carry card data, and the
    timer may hold a settled entry until an earlier deadline passes). The callbacks must not raise: they run
    inside the link reader or the timer task, which serve everyone.
    """

    __slots__ = ("_on_expire", "_on_set")

    def __init__(self, on_set: Callable[[T | None], None], on_expire: Callable[[], None]) -> None:
        super().__init__()
        self._on_set = on_set
        self._on_expire = on_expire

    def set(self, value: T | None) -> bool:
        if self._state != _OPEN:
            return False
        self._state = _SET
        on_set = self._on_set
        self._forget()
        on_set(value)
        return True

    def expire(self) -> None:
        if self._state != _OPEN:
            return
        self._state = _CLOSED
        on_expire = self._on_expire
        self._forget()
        on_expire()

    def close(self) -> None:
        """Settle without calling anything (the request was never sent)."""
        self._state = _CLOSED
        self._forget()

    def _forget(self) -> None:
        # The callbacks close over their exchange (its clear request: track 2, PIN block); the timer may keep
        # a settled entry for a while, and it must not keep the card data with it.
        self._on_set = _ignore
        self._on_expire = _nothing

    async def wait(self, timer: Timer | None = None, timeout: float = math.inf) -> bool:
        raise TypeError("a Continuation is not waited on; its callbacks run when it is settled")


class Timer:
    """The deadlines of parked :class:`Slot` waits, served by :meth:`run` (one task).

    Entries of slots settled before their deadline are dropped lazily: from the top of the heap whenever a
    new one is added (answers come back roughly in the order requests went out), and when the timer wakes.
    That alone is not enough: one wait that stays open (an issuer that never answers a request) sits at the
    top for its whole timeout and keeps every entry settled behind it, each holding its slot's value (a
    response), so the heap would grow with the exchange rate times the timeout. It is therefore also pruned
    whenever it grows past twice its live size at the last pruning plus a floor, as trio prunes its own
    deadline heap (``trio._core._run.Deadlines``): amortized O(1) per :meth:`add`.
    """

    PRUNE_FLOOR = 1000  # trio's DEADLINE_HEAP_MIN_PRUNE_THRESHOLD

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Slot[Any]]] = []
        self._order = itertools.count()
        self._scope: trio.CancelScope | None = None
        self._prune_at = self.PRUNE_FLOOR

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, deadline: float, slot: Slot[Any]) -> None:
        heap = self._heap
        while heap and not heap[0][2].is_open:
            heapq.heappop(heap)
        if len(heap) >= self._prune_at:
            heap[:] = [entry for entry in heap if entry[2].is_open]
            heapq.heapify(heap)
            self._prune_at = 2 * len(heap) + self.PRUNE_FLOOR
        heapq.heappush(heap, (deadline, next(self._order), slot))
        scope = self._scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    def expire_all(self) -> None:
        """Every wait still open ends now, as if its deadline had passed (the node has stopped: nothing it waits
        for will come, and each continuation's expiry path is what accounts for it)."""
        heap, self._heap = self._heap, []
        for _deadline, _order, slot in sorted(heap):
            slot.expire()

    async def run(self) -> None:
        """Expire due slots until cancelled."""
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and (heap[0][0] <= now or not heap[0][2].is_open):
                heapq.heappop(heap)[2].expire()
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as self._scope:
                await trio.sleep_forever()
            self._scope = None
