"""The journal as the exchanges see it: submit a row, hear on the event loop when it has committed.

The writer thread (switch.storage.journal, group commit) reports each row; the reports of a batch are handed to
their exchanges on the event loop with one wake-up per batch. A database that hangs (rather than fails) must not
hold an answer forever: after ``timeout`` seconds the exchange hears of a failure (it answers 96 and reverses what
was approved), even if the row commits later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

from switch.runtime.links.waiter import Continuation, Slot, Timer
from switch.storage.journal import JournalWriter
from switch.storage.records import JournalRecord


class JournalUnavailable(Exception):
    pass


class JournalPort:
    def __init__(self, writer: JournalWriter, timer: Timer, timeout: float) -> None:
        self.writer = writer
        self.timer = timer
        self.timeout = timeout
        self._token: trio.lowlevel.TrioToken | None = None
        # Journal commits reported by the writer thread, handed to their exchanges on the event loop.
        self._committed: deque[tuple[Slot[BaseException], BaseException | None]] = deque()
        self._wake_pending = False

    def start(self) -> None:
        """Start the writer thread; reports come back to the trio run this is called from."""
        self._token = trio.lowlevel.current_trio_token()
        self.writer.start()

    def submit(self, record: JournalRecord, on_done: Callable[[BaseException | None], None]) -> None:
        """Journal ``record`` without waiting: ``on_done(None)`` runs on the event loop once its row is committed,
        ``on_done(error)`` if the write failed or did not finish within the timeout. Raises (and ``on_done`` is
        not called) when the record cannot be submitted at all."""

        def timed_out() -> None:
            on_done(JournalUnavailable("journal commit timed out"))

        slot: Continuation[BaseException] = Continuation(on_done, timed_out)
        self.writer.submit(record, self._report(slot))
        self.timer.add(trio.current_time() + self.timeout, slot)

    def _report(self, slot: Slot[BaseException]) -> Callable[[BaseException | None], None]:
        """The writer's ``done`` callback for one row: settles ``slot`` on the event loop."""
        token = self._token
        assert token is not None

        def callback(exc: BaseException | None) -> None:  # runs on the writer thread
            # One wake-up of the event loop per batch, not per row: run_sync_soon writes to the loop's wake-up
            # socket on every call (2-3% of the event loop in a fin-sim profile at one call per exchange).
            self._committed.append((slot, exc))
            if not self._wake_pending:
                self._wake_pending = True
                token.run_sync_soon(self._wake)

        return callback

    def deliver_reports(self) -> None:
        """Hand over, now, the reports the writer made that the event loop has not handed over yet (at a stop)."""
        self._wake()

    def _wake(self) -> None:
        """On the event loop: settle the rows the writer reported."""
        # Cleared before draining: a report appended after this line schedules another call, one appended before
        # it is drained here (the writer thread appends first, then reads the flag).
        self._wake_pending = False
        committed = self._committed
        while committed:
            slot, exc = committed.popleft()
            slot.set(exc)
