"""Store-and-forward queue: order per original (independent entries otherwise), attempts, acknowledgement,
exceptions, operator actions with their audit, retry, and survival across a restart (a new engine on the same
database)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from switch.infra.db.engine import make_engine
from switch.storage.errors import SafItemNotFoundError, SafLaterEntryError, SafStateError
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
    key: str | None = None,
) -> int:
    return store.enqueue(
        destination=destination, mti=mti, stan=f"{n:06d}", rrn=f"{n:012d}",
        pan_masked="476173******0119", amount=1000 + n, currency="840",
        payload=bytes([n % 256]) * 8 + b"\x00\xff", original_trace_id=f"trace-{n}", now=now,
        expires_at=expires_at, original_key=key,
    )


@pytest.fixture
def store(db_engine: Engine) -> SafStore:
    return SafStore(db_engine)


def test_entries_for_one_original_go_in_order_and_others_do_not_wait_behind_a_silent_head(store: SafStore) -> None:
    advice = enqueue(store, "debit-1", 1, mti="0220", key="K1")
    other = enqueue(store, "visa", 2)
    unrelated = enqueue(store, "debit-1", 3, key="K2")
    reversal = enqueue(store, "debit-1", 4, key="K1")
    repeat = enqueue(store, "debit-1", 5, key="K1", mti="0421")
    assert advice < other < unrelated < reversal < repeat
    assert store.destinations_with_pending() == ["debit-1", "visa"]
    assert store.holds("debit-1", "K1") and store.holds("debit-1", "K2")
    assert not store.holds("visa", "K1") and not store.holds("debit-1", "K3")
    assert store.holder(["visa", "debit-1"], "K1") == "debit-1" and store.holder(["visa"], "K1") is None

    head = store.next_due("debit-1", T0)
    assert head is not None and (head.id, head.stan, head.status, head.attempts) == (advice, "000001", "pending", 0)
    store.record_attempt(advice, T0, next_attempt_at=T0 + 30 * SECOND)

    # The advice waits for its retry: an unrelated entry goes meanwhile, the advice's reversal does not.
    nxt = store.next_due("debit-1", T0 + SECOND)
    assert nxt is not None and nxt.id == unrelated
    store.acknowledge(unrelated, "00", T0 + SECOND)
    assert store.next_due("debit-1", T0 + 2 * SECOND) is None
    assert not store.holds("debit-1", "K2")
    visa = store.next_due("visa", T0 + SECOND)
    assert visa is not None and visa.id == other

    again = store.next_due("debit-1", T0 + 30 * SECOND)
    assert again is not None and again.id == advice
    assert (again.attempts, again.last_attempt_at, again.next_attempt_at) == (1, T0, T0 + 30 * SECOND)

    store.acknowledge(advice, "00", T0 + 31 * SECOND)
    following = store.next_due("debit-1", T0 + 31 * SECOND)
    assert following is not None and following.id == reversal
    store.acknowledge(reversal, "00", T0 + 32 * SECOND)
    last = store.next_due("debit-1", T0 + 32 * SECOND)
    assert last is not None and last.id == repeat  # the repeat after its first
    assert store.next_due("nowhere", T0) is None


def test_an_exception_still_holds_back_later_entries_for_its_original(store: SafStore) -> None:
    advice = enqueue(store, "debit-1", 1, mti="0220", key="K1")
    reversal = enqueue(store, "debit-1", 2, key="K1")
    store.record_attempt(advice, T0, T0)
    store.record_attempt(advice, T0, T0)
    (escalated,) = store.escalate(T0, max_attempts=2)
    assert (escalated.id, escalated.status) == (advice, "exception")
    assert store.next_due("debit-1", T0 + 3600 * SECOND) is None  # not retried, and the reversal waits
    assert store.holds("debit-1", "K1")
    store.act(advice, "cancel", actor="ops", reason="issuer confirmed it has it", now=T0 + SECOND)
    nxt = store.next_due("debit-1", T0 + SECOND)
    assert nxt is not None and nxt.id == reversal


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


def test_escalate_makes_exceptions_of_entries_out_of_time_or_attempts_and_nothing_expires_by_itself(
        store: SafStore) -> None:
    old = enqueue(store, "visa", 1, expires_at=T0 + 60 * SECOND)
    acked = enqueue(store, "visa", 2, expires_at=T0 + 60 * SECOND)
    later = enqueue(store, "visa", 3, expires_at=T0 + 3600 * SECOND)
    forever = enqueue(store, "visa", 4, expires_at=None)
    tried = enqueue(store, "visa", 5, expires_at=None)
    store.acknowledge(acked, "00", T0 + SECOND)
    for _ in range(3):
        store.record_attempt(tried, T0, T0)

    assert store.escalate(T0 + 59 * SECOND, max_attempts=4) == []
    assert [i.id for i in store.escalate(T0 + 60 * SECOND, max_attempts=4)] == [old]
    assert store.escalate(T0 + 61 * SECOND, max_attempts=None) == []
    assert [i.id for i in store.escalate(T0 + 61 * SECOND, max_attempts=3)] == [tried]
    statuses = {item.id: item.status for item in store.list_items("visa")}
    assert statuses == {old: "exception", acked: "acked", later: "pending", forever: "pending", tried: "exception"}
    assert store.get(old).completed_at is None  # type: ignore[union-attr]  # not over: an operator decides
    head = store.next_due("visa", T0 + 61 * SECOND)
    assert head is not None and head.id == later
    assert store.pending_count("visa") == 2
    # A late answer to an exception still records that the destination has it.
    store.acknowledge(old, "00", T0 + 70 * SECOND)
    late = store.get(old)
    assert late is not None and late.status == "acked"


def test_operator_actions_are_audited_and_a_refused_one_changes_nothing(store: SafStore) -> None:
    stuck = enqueue(store, "visa", 1, expires_at=T0)
    for _ in range(5):
        store.record_attempt(stuck, T0, T0)
    store.escalate(T0, max_attempts=5)

    resent = store.act(stuck, "resend", actor="alice", reason="issuer back", now=T0 + SECOND,
                       expires_at=T0 + 3600 * SECOND)
    assert (resent.status, resent.attempts, resent.next_attempt_at) == ("pending", 5, T0 + SECOND)
    assert store.escalate(T0 + 2 * SECOND, max_attempts=5) == []  # a fresh budget of attempts and time
    store.record_attempt(stuck, T0 + 2 * SECOND, T0 + 2 * SECOND)
    assert store.next_due("visa", T0 + 2 * SECOND) is not None
    expired = store.act(stuck, "expire", actor="bob", reason="written off, case 42", now=T0 + 3 * SECOND)
    assert (expired.status, expired.completed_at) == ("expired", T0 + 3 * SECOND)
    assert store.next_due("visa", T0 + 4 * SECOND) is None

    before = store.get(stuck)
    for action, reason, error in (("cancel", "too late", SafStateError), ("expire", "again", SafStateError),
                                  ("resend", " ", ValueError), ("delete", "why not", ValueError)):
        with pytest.raises(error):
            store.act(stuck, action, actor="carol", reason=reason, now=T0 + 5 * SECOND)
    with pytest.raises(SafItemNotFoundError):
        store.act(stuck + 100, "cancel", actor="carol", reason="no such", now=T0 + 5 * SECOND)
    assert store.get(stuck) == before

    audit = store.actions(stuck)
    assert [(a.actor, a.action, a.reason, a.old_status, a.new_status, a.at) for a in audit] == [
        ("alice", "resend", "issuer back", "exception", "pending", T0 + SECOND),
        ("bob", "expire", "written off, case 42", "pending", "expired", T0 + 3 * SECOND),
    ]


def test_summary_gives_each_destination_its_oldest_unfinished_entry(store: SafStore) -> None:
    enqueue(store, "visa", 1, now=T0)
    enqueue(store, "visa", 2, now=T0 + 10 * SECOND)
    done = enqueue(store, "mc", 3, now=T0 - 99 * SECOND)
    enqueue(store, "mc", 4, now=T0 + 20 * SECOND, expires_at=T0)
    store.acknowledge(done, "00", T0)
    store.escalate(T0, max_attempts=None)
    summary = store.summary()
    assert [(s.destination, s.pending, s.exceptions, s.oldest_created_at) for s in summary] == [
        ("mc", 0, 1, T0 + 20 * SECOND), ("visa", 2, 0, T0)]
    assert store.destinations() == ["mc", "visa"]


def test_retry_now_makes_pending_entries_due_immediately(store: SafStore) -> None:
    a = enqueue(store, "debit-1", 1)
    b = enqueue(store, "debit-2", 2, key="K")
    c = enqueue(store, "debit-2", 3, key="K")  # waits behind b, for the same original
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
    assert [i.id for i in store.list_items()] == ids[1:] + ids[:1]  # unfinished first
    assert [i.id for i in store.list_items("mc")] == [ids[2], ids[4], ids[0]]
    page, more = store.list_page("mc", limit=2)
    assert ([i.id for i in page], more) == ([ids[2], ids[4]], 1)
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


def test_a_pools_reversal_waits_for_its_advice_held_on_another_link(store: SafStore) -> None:
    # The pool was wholly down: the stand-in advice waits on link b, the acquirer's reversal was held on link a.
    advice = enqueue(store, "b", 1, mti="0220", key="K1")
    reversal = enqueue(store, "a", 2, key="K1")
    other = enqueue(store, "a", 3, key="K2")
    head = store.next_due("a", T0)  # link a is back first: only the unrelated entry may go
    assert head is not None and head.id == other
    store.acknowledge(other, "00", T0)
    assert store.next_due("a", T0) is None
    store.record_attempt(advice, T0, T0)
    store.escalate(T0, max_attempts=1)  # an exception on b still holds it back
    assert store.next_due("a", T0 + SECOND) is None
    store.act(advice, "resend", actor="ops", reason="b back", now=T0 + SECOND)
    store.acknowledge(advice, "00", T0 + 2 * SECOND)
    nxt = store.next_due("a", T0 + 2 * SECOND)
    assert nxt is not None and nxt.id == reversal


def test_resend_is_refused_while_a_later_entry_for_the_original_may_have_been_delivered(store: SafStore) -> None:
    advice = enqueue(store, "up", 1, mti="0220", key="K1")
    reversal = enqueue(store, "b", 2, key="K1")  # on another link of the pool: still the same original
    unrelated = enqueue(store, "up", 3, key="K2")
    store.act(advice, "expire", actor="ops", reason="written off", now=T0)
    store.record_attempt(unrelated, T0, T0)
    store.acknowledge(unrelated, "00", T0)
    resent = store.act(advice, "resend", actor="ops", reason="reversal not sent yet", now=T0)
    assert resent.status == "pending"  # a later entry never sent does not stop it (it waits behind the advice)
    store.act(advice, "expire", actor="ops", reason="again", now=T0)

    store.record_attempt(reversal, T0, T0)  # sent, no answer yet: the issuer may have it
    for state in ("in flight", "acked"):
        if state == "acked":
            store.acknowledge(reversal, "00", T0)
        before = store.get(advice)
        with pytest.raises(SafLaterEntryError) as info:
            store.act(advice, "resend", actor="ops", reason="issuer back", now=T0 + SECOND)
        assert (info.value.later_id, info.value.later_mti) == (reversal, "0420")
        assert store.get(advice) == before and len(store.actions(advice)) == 3

    forced = store.act(advice, "resend", actor="ops", reason="issuer asked, case 9", now=T0 + SECOND, force=True)
    assert forced.status == "pending"
    assert [(a.action, a.forced) for a in store.actions(advice)] == [
        ("expire", False), ("resend", False), ("expire", False), ("resend", True)]


def test_take_due_claims_a_window_one_entry_per_original_with_the_attempts_recorded(store: SafStore) -> None:
    a1 = enqueue(store, "debit-1", 1, mti="0220", key="K1")
    b = enqueue(store, "debit-1", 2, key="K2")
    r1 = enqueue(store, "debit-1", 3, key="K1")  # behind a1
    c = enqueue(store, "debit-1", 4)  # no original: independent
    tried = enqueue(store, "debit-1", 5, key="K5")
    late = enqueue(store, "debit-1", 6, key="K6", expires_at=T0)
    enqueue(store, "visa", 7)
    for _ in range(3):
        store.record_attempt(tried, T0, T0)

    def backoff(attempts: int) -> datetime:
        return T0 + (attempts + 1) * 10 * SECOND

    # Out of attempts (3 of 3) or past its expiry: not sent once more; escalate makes them exceptions.
    taken = store.take_due("debit-1", T0, 2, backoff, max_attempts=3)
    assert [(i.id, i.attempts) for i in taken] == [(a1, 0), (b, 0)]  # as read: the first send of each
    claimed = store.get(a1)
    assert claimed is not None and (claimed.attempts, claimed.last_attempt_at, claimed.next_attempt_at) == (
        1, T0, T0 + 10 * SECOND)
    # In flight: not offered again even when due (saf retry), and r1 waits behind a1.
    store.retry_now("debit-1", T0)
    assert [i.id for i in store.take_due("debit-1", T0, 10, backoff, busy={a1, b}, max_attempts=3)] == [c]
    assert store.take_due("debit-1", T0, 10, backoff, busy={a1, b, c}, max_attempts=3) == []
    assert store.take_due("debit-1", T0, 0, backoff) == []
    assert [i.id for i in store.escalate(T0, max_attempts=3)] == [tried, late]

    store.settle(T0 + SECOND, acked=[(a1, "00"), (b, "00")], failed=[c])
    assert [(i.id, i.attempts) for i in store.take_due("debit-1", T0 + SECOND, 10, backoff)] == [(r1, 0)]
    statuses = {i.id: (i.status, i.last_response_code, i.completed_at) for i in store.list_items("debit-1")}
    assert statuses[a1] == statuses[b] == ("acked", "00", T0 + SECOND)
    assert statuses[c] == ("failed", None, T0 + SECOND)


def test_take_due_leaves_an_entry_an_operator_settled_and_settle_keeps_their_decision(store: SafStore) -> None:
    first = enqueue(store, "amex", 1)
    second = enqueue(store, "amex", 2)
    store.act(first, "cancel", actor="ops", reason="by hand", now=T0)
    (taken,) = store.take_due("amex", T0, 5, lambda attempts: T0)
    assert taken.id == second
    store.act(second, "expire", actor="ops", reason="written off", now=T0)
    store.settle(T0, failed=[second])  # a send that failed after the operator expired it: expired it stays
    expired = store.get(second)
    assert expired is not None and expired.status == "expired"
    # An answer that comes after all says the destination has it, whatever the operator decided (as acknowledge).
    store.settle(T0, acked=[(first, "00"), (second, "00")])
    assert {i.status for i in store.list_items("amex")} == {"acked"}
    store.settle(T0 + SECOND, acked=[(first, "12")])  # a second answer changes nothing
    again = store.get(first)
    assert again is not None and (again.last_response_code, again.completed_at) == ("00", T0)


def test_take_due_offers_entries_never_sent_first_and_none_whose_original_is_on_the_wire(store: SafStore) -> None:
    retried = enqueue(store, "debit-1", 1, key="K1")
    store.record_attempt(retried, T0, T0)  # sent once, due again
    on_wire = enqueue(store, "debit-1", 2, key="K2")  # its advice was cancelled while still on the wire
    independent = enqueue(store, "debit-1", 3)  # about no original
    fresh = enqueue(store, "debit-1", 4, key="K4")
    taken = store.take_due("debit-1", T0, 10, lambda attempts: T0 + 60 * SECOND, busy_originals={"K2", "K9"})
    assert [i.id for i in taken] == [independent, fresh, retried]
    # Its message answered: it is offered again.
    assert [i.id for i in store.take_due("debit-1", T0 + SECOND, 10, lambda attempts: T0)] == [on_wire]


def test_settle_gives_back_the_attempt_of_an_entry_that_never_left(store: SafStore) -> None:
    tried = enqueue(store, "amex", 1, key="K1")
    store.record_attempt(tried, T0, T0 + SECOND)
    untried, cancelled, resent = (enqueue(store, "amex", n, key=f"K{n}") for n in (2, 3, 4))
    before = {i.id: i for i in store.list_items("amex")}
    claimed = store.take_due("amex", T0 + 2 * SECOND, 10, lambda attempts: T0 + 60 * SECOND)
    assert [i.id for i in claimed] == [untried, cancelled, resent, tried]
    # Meanwhile an operator settles one and resends another (a fresh budget): theirs is the last word.
    store.act(cancelled, "cancel", actor="ops", reason="by hand", now=T0 + 3 * SECOND)
    store.act(resent, "resend", actor="ops", reason="again", now=T0 + 3 * SECOND)
    after_operator = {i: store.get(i) for i in (cancelled, resent)}

    store.settle(T0 + 4 * SECOND, unsent=claimed)  # the link refused all four before anything left
    # As before the claim: the same attempts, last attempt and due time (its next send is not a repeat).
    assert store.get(untried) == before[untried] and store.get(tried) == before[tried]
    assert {i: store.get(i) for i in (cancelled, resent)} == after_operator
    again = store.take_due("amex", T0 + 4 * SECOND, 10, lambda attempts: T0 + 60 * SECOND)
    assert [(i.id, i.attempts) for i in again] == [(untried, 0), (tried, 1), (resent, 1)]
