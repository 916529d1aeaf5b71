"""The cell's group-commit writer: a dedicated thread that writes the :class:`~processors.model.Effects` of
many decisions in one database transaction (the queue and thread of
:class:`switch.infra.groupcommit.GroupCommit`, like :class:`switch.storage.journal.JournalWriter`).

Each submitted item is ``(effects, ticket)``; the ticket is whatever the caller needs to release the answer
(the host uses a callable that queues the encoded response on its connection). Once a batch has committed,
``on_done(tickets, None)`` is called on the writer thread with the tickets of that batch, in submission order;
if it failed, ``on_done(tickets, exc)``. Items with empty effects still travel through the queue: their answer
may depend on state that an earlier, not yet committed batch changed, so they are released in order after it.

A failed commit is final: the rows in memory are then ahead of the database, so nothing decided after it may
be answered either. The writer stops writing and fails every later item with the same error; the host exits
(fail-stop) and its restart reloads the state from the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from processors.model import Effects
from switch.infra.db.errors import describe
from switch.infra.groupcommit import GroupCommit

log = logging.getLogger("bulkhead.cells.writer")

WriteBatch = Callable[[Connection, Sequence[Effects]], object]
OnDone = Callable[[list[Any], BaseException | None], None]


class WriterClosedError(RuntimeError):
    """Submitted after :meth:`EffectsWriter.close`."""


class CommitFailedError(RuntimeError):
    """A batch did not commit; every item submitted after it fails with this too."""


# One submission: the decisions the host made from one read of its link, in decision order. Handing them over
# together wakes the writer thread once per read instead of once per decision: each wake-up is a GIL hand-over
# between the writer and the event loop (issue #5).
_Item = list[tuple[Effects, Any]]


def default_write_batch(connection: Connection, batches: Sequence[Effects]) -> None:
    from processors.storage import write_batch

    write_batch(connection, batches)


class EffectsWriter:
    """Group commit on a dedicated thread (:class:`~switch.infra.groupcommit.GroupCommit`): one transaction
    per batch of decisions."""

    def __init__(self, engine: Engine, on_done: OnDone, *, max_batch: int = 500, max_wait: float = 0.0005,
                 write: WriteBatch = default_write_batch) -> None:
        self._engine = engine
        self._on_done = on_done
        self._write_batch = write
        self._thread = GroupCommit(self._write, what="cell writer", max_batch=max_batch, max_wait=max_wait,
                                   finish=self._release)
        self.failure: BaseException | None = None
        # The writer thread's own connection, opened at its first batch and kept: a pool checkout, reset and
        # checkin per batch cost more than the statements of a small batch (a lightly loaded cell commits a few
        # decisions at a time). Only the writer thread uses it, and gives it back as it ends (_release).
        self._connection: Connection | None = None
        # statistics, written by the writer thread only
        self.batches = 0
        self.items = 0
        self.rows = 0
        self.largest_batch = 0
        self.commit_seconds = 0.0

    @property
    def queue_depth(self) -> int:
        return self._thread.queue_depth

    def start(self) -> None:
        self._thread.start()

    def submit(self, effects: Effects, ticket: Any) -> None:
        """Queue one decision's effects; thread-safe, never waits for the database."""
        self.submit_many([(effects, ticket)])

    def submit_many(self, items: list[tuple[Effects, Any]]) -> None:
        """Queue several decisions' ``(effects, ticket)`` in order, as one submission (they join one batch;
        ``max_batch`` counts submissions). Thread-safe, never waits for the database."""
        if not self._thread.put(items):
            raise WriterClosedError("cell writer is closed")

    def close(self, timeout: float = 10.0) -> None:
        """Write everything submitted so far, then stop the thread."""
        if not self._thread.close(timeout):
            raise TimeoutError(f"cell writer still writing after {timeout} s")

    def _release(self) -> None:
        """On the writer thread, after its last batch: give the connection back."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    # -- writer thread ------------------------------------------------------------------------------
    def _write(self, submissions: list[_Item]) -> None:
        batch = [item for items in submissions for item in items] if len(submissions) > 1 else submissions[0]
        tickets = [ticket for _, ticket in batch]
        if self.failure is None:
            effects = [e for e, _ in batch if e]
            try:
                if effects:
                    start = time.perf_counter()
                    connection = self._connection
                    if connection is None:
                        connection = self._connection = self._engine.connect()
                    with connection.begin():
                        self._write_batch(connection, effects)
                    self.commit_seconds += time.perf_counter() - start
                    self.batches += 1
                    self.rows += sum(len(e.rows) for e in effects)
            except Exception as exc:
                # Any failure, a refused row included: the decisions were already applied in memory, so
                # retrying rows one by one (as the journal does) would store a state the cell never had.
                log.error("cell writer: batch of %d decisions (%d rows) not committed: %s", len(batch),
                          sum(len(e.rows) for e in effects), describe(exc))
                failure = CommitFailedError(f"batch of {len(batch)} decisions not committed: {describe(exc)}")
                failure.__cause__ = exc
                self.failure = failure
        self.items += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        try:
            self._on_done(tickets, self.failure)
        except Exception:
            log.exception("cell writer: on_done raised")


def write_now(engine: Engine, effects: Sequence[Effects], write: WriteBatch = default_write_batch) -> None:
    """Write ``effects`` in one transaction on the calling thread (commands run without a cell process)."""
    batches = [e for e in effects if e]
    if not batches:
        return
    with engine.begin() as connection:
        write(connection, batches)
