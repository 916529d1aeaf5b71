"""The group-commit thread shared by the journal and the cell writer: batching, order, orderly stop."""

from __future__ import annotations

import threading

import pytest

from switch.infra.groupcommit import GroupCommit


def test_items_queued_before_start_are_written_in_order_in_full_batches() -> None:
    batches: list[list[int]] = []
    writer = GroupCommit(batches.append, what="test writer", max_batch=4, max_wait=0.0)
    for n in range(10):
        assert writer.put(n)
    assert writer.queue_depth == 10
    writer.start()
    assert writer.close(5.0)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_items_arriving_during_a_write_join_the_next_batch() -> None:
    release = threading.Event()
    batches: list[list[int]] = []

    def write(batch: list[int]) -> None:
        batches.append(batch)
        if batch == [0]:
            release.wait(5.0)

    writer = GroupCommit(write, what="test writer", max_batch=100, max_wait=0.0)
    writer.start()
    writer.put(0)
    while not batches:  # the thread has taken item 0 and is "committing" it
        threading.Event().wait(0.001)
    for n in range(1, 6):
        writer.put(n)
    release.set()
    assert writer.close(5.0)
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_close_refuses_later_items_and_starts_the_thread_only_when_asked() -> None:
    batches: list[list[str]] = []
    idle = GroupCommit(batches.append, what="test writer", max_batch=10, max_wait=0.0)
    idle.put("never written")
    assert idle.close(1.0)  # never started, not asked to start: nothing runs
    assert batches == []
    assert not idle.put("late")

    flushing = GroupCommit(batches.append, what="test writer", max_batch=10, max_wait=0.0)
    flushing.put("written")
    assert flushing.close(5.0, start=True)
    assert flushing.close(5.0, start=True)  # twice is harmless
    assert batches == [["written"]]
    with pytest.raises(RuntimeError, match="test writer already started"):
        flushing.start()


def test_close_reports_a_thread_still_writing() -> None:
    release = threading.Event()

    def write(_batch: list[int]) -> None:
        release.wait(5.0)

    writer = GroupCommit(write, what="test writer", max_batch=1, max_wait=0.0)
    writer.start()
    writer.put(1)
    assert not writer.close(0.05)
    release.set()
    assert writer.close(5.0)


@pytest.mark.parametrize(("max_batch", "max_wait"), [(0, 0.0), (1, -0.1)])
def test_bad_limits_are_refused(max_batch: int, max_wait: float) -> None:
    with pytest.raises(ValueError, match="max_"):
        GroupCommit(lambda _batch: None, what="test writer", max_batch=max_batch, max_wait=max_wait)


def test_finish_runs_on_the_thread_after_the_last_batch() -> None:
    events: list[tuple[str, object, str]] = []

    def write(batch: list[int]) -> None:
        events.append(("write", batch, threading.current_thread().name))

    def finish() -> None:
        events.append(("finish", None, threading.current_thread().name))

    writer = GroupCommit(write, what="test writer", max_batch=2, max_wait=0.0, finish=finish)
    for n in range(3):
        writer.put(n)
    assert writer.close(5.0, start=True)
    assert events == [("write", [0, 1], "test-writer"), ("write", [2], "test-writer"),
                      ("finish", None, "test-writer")]
