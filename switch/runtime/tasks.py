"""Tasks for the parts of exchanges that wait on something other than their upstream answer and journal row.

Workers are parked between jobs: waking a parked worker costs one reschedule, while spawning a task per job
(task, coroutine, nursery bookkeeping, and the same again at exit) was about 8% of the event loop's samples in
fin-sim (DESIGN section 9: no task per message). Workers live in the node's work nursery, so a node stopped hard
cancels them. An exchange that cannot go on in a task (cancelled in a worker, refused because the nursery is
closed, or ended by an exception the pipeline did not catch) is handed to ``on_stranded``
(switch.exchange.pipeline.Pipeline.strand): it lets go at once of what waited behind its original, and the node
reverses what it needs reversing in one transaction when it stops, rather than each exchange doing I/O as it is
cancelled (a deadline or a busy thread pool could then cut it short and lose the reversal unseen).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from switch.exchange.context import Exchange
from switch.exchange.services import Job
from switch.runtime.links.waiter import Slot

log = logging.getLogger("bulkhead.node")


class ExchangeTasks:
    # Parked workers kept beyond this many exit (the peak of exchanges in flight decides how many there are).
    MAX_IDLE = 1024

    def __init__(self, on_stranded: Callable[[Exchange], None]) -> None:
        self._on_stranded = on_stranded
        self._idle: list[Slot[tuple[Exchange, Job]]] = []  # most recently parked last
        self._closed = False
        self.nursery: trio.Nursery | None = None

    def spawn(self, x: Exchange, job: Job) -> None:
        while self._idle:
            if self._idle.pop().set((x, job)):
                return
        try:
            if self.nursery is None or self.nursery.cancel_scope.cancel_called:
                # Stopping hard: a new task would be cancelled at once.
                raise RuntimeError("work nursery cancelled")
            self.nursery.start_soon(self._worker, x, job)
        except RuntimeError:
            # The node is stopping and its work nursery is closed (a link dropping its requests as it is torn
            # down): nothing may start any more.
            self._on_stranded(x)

    async def _worker(self, x: Exchange | None, job: Job | None) -> None:
        while x is not None and job is not None:
            await self._run(x, job)
            # Let the exchange go before parking: it holds the clear request (track 2, PIN block) and its
            # connection, which must not outlive the exchange (card data kept no longer than needed).
            x = job = None
            if self._closed or len(self._idle) >= self.MAX_IDLE:
                return
            slot: Slot[tuple[Exchange, Job]] = Slot()
            self._idle.append(slot)
            await slot.wait()  # woken with the next exchange, or with None when the node stops
            x, job = slot.take() or (None, None)

    async def _run(self, x: Exchange, job: Job) -> None:
        try:
            await job()
        except trio.Cancelled:
            self._on_stranded(x)  # synchronous: nothing here can be cut short
            raise
        except Exception as exc:  # last line of defence (the pipeline catches its own): the node goes on
            log.error("exchange %s: unhandled %s", x.trace_id, type(exc).__name__)
            self._on_stranded(x)

    def close(self) -> None:
        """No more parking: wake the parked workers so they end."""
        self._closed = True
        while self._idle:
            self._idle.pop().set(None)
