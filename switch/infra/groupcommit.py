"""Group commit: one dedicated thread that takes what callers queued and hands it on in batches.

Both durable writers of the project use it: the exchange journal (:class:`switch.storage.journal.JournalWriter`)
and a processor cell's effects (:class:`processors.storage.writer.EffectsWriter`). A batch is everything queued
when the thread wakes up, topped up until ``max_batch`` items or ``max_wait`` seconds have passed, so the
fsync (SQLite) or commit round trip (PostgreSQL) is paid once per batch, not once per item. Items that arrive
while a batch is being written join the next one, so a busy writer batches even with ``max_wait`` 0.

What a batch becomes (one transaction, error handling, callbacks) is the ``write`` callable's business: the
journal isolates a refused row, the cell stops at the first failure. This class only owns the queue, the
thread and the orderly stop: :meth:`close` lets the thread write everything queued before it, then end.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Final, Generic, TypeVar

T = TypeVar("T")


class _Stop:
    """Queue marker: everything queued before it is written, then the thread ends."""


_STOP: Final = _Stop()


class GroupCommit(Generic[T]):
    """A writer thread calling ``write(batch)`` for each batch of submitted items, in submission order.

    ``what`` names the writer in error messages and (with dashes) its thread. ``put`` is thread-safe and
    never waits for ``write``. ``finish``, if given, runs on the thread once it has written its last batch
    (say, to give back a connection the writer kept across batches).
    """

    def __init__(self, write: Callable[[list[T]], None], *, what: str, max_batch: int, max_wait: float,
                 finish: Callable[[], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self._write = write
        self._finish = finish
        self._what = what
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: queue.SimpleQueue[T | _Stop] = queue.SimpleQueue()
        # Held only to make "check closed, then enqueue" atomic against close(); never across I/O.
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def queue_depth(self) -> int:
        """Items submitted and not yet taken by the thread (approximate; for metrics)."""
        return self._queue.qsize()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self._what} already started")
            self._start()

    def put(self, item: T) -> bool:
        """Queue ``item``; False (and nothing queued) once :meth:`close` has been called."""
        with self._lock:
            if self._closed:
                return False
            self._queue.put(item)
            return True

    def close(self, timeout: float, *, start: bool = False) -> bool:
        """Write everything queued so far, then stop the thread; with ``start``, a thread never started is
        started first so the queue is still written. False if the thread is still writing after ``timeout``
        seconds."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
            if self._thread is None and start:
                self._start()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._what.replace(" ", "-"), daemon=True)
        self._thread.start()

    # -- the thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._finish is not None:
                self._finish()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if isinstance(first, _Stop):
                return
            batch: list[T] = [first]
            stopping = self._fill(batch)
            self._write(batch)

    def _fill(self, batch: list[T]) -> bool:
        """Add queued items until the batch is full or ``max_wait`` has passed; True if told to stop."""
        deadline = time.monotonic() + self._max_wait
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    return False
            if isinstance(item, _Stop):
                return True
            batch.append(item)
        return False
