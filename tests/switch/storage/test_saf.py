"""Store-and-forward queue: strict order per destination, attempts, acknowledgement, expiry, retry,
and survival across a restart (a new engine on the same database)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from switch.infra.db.engine import make_engine
from switch.storage.errors import SafItemNotFoundError, SafStateError
from switch.storage.saf import SafStore

from .factories import T0

SECOND = timedelta(seconds=1)


def enqueue(
    store: SafStore,
    destination: str,
    n: int,
    *,
    now: datetime = T0,
    expires_at: datetime | None = None,
    mti: str = "0420",
) -> int:
    return store.enqueue(
        destination=destination, mti=mti, stan=f"{n:06d}", rrn=f"{n:012d}",
        pan_masked="476173******0119", amount=1000 + n, currency="840",
        payload=bytes([n % 256]) * 8 + b"\x00\xff", original_trace_id=f"trace-{n}", now=now,
        expires_at=expires_at,
    )


@pytest.fixture
def store(db_engine: Engine) -> SafStore:
    return SafStore(db_engine)


def test_entries_are_offered_oldest_first_per_destination(store: SafStore) -> None:
    a1 = enqueue(store, "debit-1", 1)
    b1 = enqueue(store, "visa", 2)
    a2 = enqueue(store, "debit-1", 3)
    a3 = enqueue(store, "debit-1", 4)
    assert a1 < b1 < a2 < a3
    assert store.destinations_with_pending() == ["debit-1", "visa"]

    head = store.next_due("debit-1", T0)
    assert head is not None and (head.id, head.stan, head.status, head.attempts) == (a1, "000001", "pending", 0)
    store.record_attempt(a1, T0, next_attempt_at=T0 + 30 * SECOND)

    # The head is waiting for its retry: the later entries must wait behind it.
    assert store.next_due("debit-1", T0 + SECOND) is None
    assert store.next_due("debit-1", T0 + 29 * SECOND) is None
    other = store.next_due("visa", T0 + SECOND)
    assert other is not None and other.id == b1

    again = store.next_due("debit-1", T0 + 30 * SECOND)
    assert again is not None and again.id == a1
    assert (again.attempts, again.last_attempt_at, again.next_attempt_at) == (1, T0, T0 + 30 * SECOND)

    store.acknowledge(a1, "00", T0 + 31 * SECOND)
    following = store.next_due("debit-1", T0 + 31 * SECOND)
    assert following is not None and following.id == a2
    assert store.next_due("nowhere", T0) is None


def test_attempts_accumulate_and_ack_completes_the_entry(store: SafStore) -> None:
    item_id = enqueue(store, "debit-1", 7)
    for k in range(3):
        store.record_attempt(item_id, T0 + k * 10 * SECOND, T0 + (k + 1) * 10 * SECOND)
    store.acknowledge(item_id, "00", T0 + 25 * SECOND)
    item = store.get(item_id)
    assert item is not None
    assert (item.status, item.attempts, item.last_response_code) == ("acked", 3, "00")
    assert item.last_attempt_at == T0 + 20 * SECOND
    assert item.completed_at == T0 + 25 * SECOND
    assert store.pending_count() == 0
    assert store.destinations_with_pending() == []

    store.acknowledge(item_id, "12", T0 + 99 * SECOND)  # a duplicate answer changes nothing
    item = store.get(item_id)
    assert item is not None and (item.last_response_code, item.completed_at) == ("00", T0 + 25 * SECOND)

    with pytest.raises(SafStateError):
        store.record_attempt(item_id, T0, T0)
    with pytest.raises(SafItemNotFoundError) as info:
        store.acknowledge(item_id + 1000, "00", T0)
    assert info.value.item_id == item_id + 1000


def test_fail_takes_the_head_out_and_lets_the_next_go(store: SafStore) -> None:
    first = enqueue(store, "amex", 1)
    second = enqueue(store, "amex", 2)
    store.fail(first, T0 + SECOND, "30")
    item = store.get(first)
    assert item is not None and (item.status, item.last_response_code) == ("failed", "30")
    nxt = store.next_due("amex", T0 + SECOND)
    assert nxt is not None and nxt.id == second


def test_expire_only_touches_pending_entries_past_their_expiry(store: SafStore) -> None:
    old = enqueue(store, "visa", 1, expires_at=T0 + 60 * SECOND)
    acked = enqueue(store, "visa", 2, expires_at=T0 + 60 * SECOND)
    later = enqueue(store, "visa", 3, expires_at=T0 + 3600 * SECOND)
    forever = enqueue(store, "visa", 4, expires_at=None)
    store.acknowledge(acked, "00", T0 + SECOND)

    assert store.expire(T0 + 59 * SECOND) == 0
    assert store.expire(T0 + 60 * SECOND) == 1
    assert store.expire(T0 + 61 * SECOND) == 0
    statuses = {item.id: item.status for item in store.list_items("visa")}
    assert statuses == {old: "expired", acked: "acked", later: "pending", forever: "pending"}
    expired = store.get(old)
    assert expired is not None and expired.completed_at == T0 + 60 * SECOND
    head = store.next_due("visa", T0 + 61 * SECOND)
    assert head is not None and head.id == later
    # A late answer to an expired entry still records that the destination has it.
    store.acknowledge(old, "00", T0 + 70 * SECOND)
    late = store.get(old)
    assert late is not None and late.status == "acked"


def test_retry_now_makes_pending_entries_due_immediately(store: SafStore) -> None:
    a = enqueue(store, "debit-1", 1)
    b = enqueue(store, "debit-2", 2)
    c = enqueue(store, "debit-2", 3)
    for item_id in (a, b):
        store.record_attempt(item_id, T0, T0 + 3600 * SECOND)
    now = T0 + 5 * SECOND
    assert store.next_due("debit-2", now) is None

    assert store.retry_now("debit-2", now) == 1  # b was waiting; c was already due
    head = store.next_due("debit-2", now)
    assert head is not None and (head.id, head.next_attempt_at) == (b, now)
    assert store.next_due("debit-1", now) is None
    assert store.retry_now(None, now) == 1
    head = store.next_due("debit-1", now)
    assert head is not None and head.id == a
    assert store.retry_now(None, now) == 0
    assert c > b


def test_listing_and_counting(store: SafStore) -> None:
    ids = [enqueue(store, "visa" if n % 2 else "mc", n, mti="0220" if n == 3 else "0420") for n in range(6)]
    store.acknowledge(ids[0], "00", T0)
    assert store.pending_count() == 5
    assert store.pending_count("visa") == 3
    assert store.pending_count("mc") == 2
    assert [i.id for i in store.list_items()] == ids
    assert [i.id for i in store.list_items("mc")] == [ids[0], ids[2], ids[4]]
    assert [i.id for i in store.list_items(status="acked")] == [ids[0]]
    assert [i.id for i in store.list_items("visa", "pending", limit=2)] == [ids[1], ids[3]]
    assert store.list_items("visa")[1].mti == "0220"
    with pytest.raises(ValueError, match="status"):
        store.list_items(status="done")


def test_queue_survives_a_restart(db_engine: Engine, db_url: str) -> None:
    before = SafStore(db_engine)
    first = enqueue(before, "visa", 1, expires_at=T0 + 3600 * SECOND)
    second = enqueue(before, "visa", 2)
    before.record_attempt(first, T0, T0 + 10 * SECOND)
    snapshot = before.list_items()
    db_engine.dispose()

    engine = make_engine(db_url)
    try:
        after = SafStore(engine)
        assert after.list_items() == snapshot
        head = after.next_due("visa", T0 + 10 * SECOND)
        assert head is not None and head.id == first and head.attempts == 1
        assert head.payload == bytes([1]) * 8 + b"\x00\xff"
        assert head.amount == 1001 and head.original_trace_id == "trace-1"
        after.acknowledge(first, "00", T0 + 11 * SECOND)
        nxt = after.next_due("visa", T0 + 11 * SECOND)
        assert nxt is not None and nxt.id == second
        assert enqueue(after, "visa", 3) > second
    finally:
        engine.dispose()
