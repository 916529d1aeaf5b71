"""Journal writer: group commit from several threads, durability before ``done``, failure isolation,
lookups by RRN / STAN / trace id."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.pool import QueuePool

from switch.infra.db.engine import make_engine
from switch.storage import journal as journal_module
from switch.storage.db import upgrade
from switch.storage.errors import JournalClosedError, JournalWriteError
from switch.storage.journal import JournalWriter, find_exchanges
from switch.storage.models import JOURNAL
from switch.storage.records import JournalRecord
from tests.conftest import migrated_engine

from .factories import PAN, T0, record

WAIT = 30.0  # only a guard against a hung writer, never a performance bound


class Completions:
    """Collects ``done`` calls; ``wait`` returns once ``expected`` calls have arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.results: dict[str, BaseException | None] = {}
        self.threads: set[str] = set()
        self._all = threading.Event()
        self._lock = threading.Lock()

    def callback(self, trace_id: str) -> Any:
        def done(error: BaseException | None) -> None:
            with self._lock:
                self.results[trace_id] = error
                self.threads.add(threading.current_thread().name)
                if len(self.results) >= self.expected:
                    self._all.set()

        return done

    def wait(self) -> None:
        assert self._all.wait(WAIT), f"{len(self.results)} of {self.expected} done callbacks arrived"


@pytest.fixture
def writer(db_engine: Engine) -> Iterator[JournalWriter]:
    journal = JournalWriter(db_engine, max_batch=100, max_wait=0.01)
    journal.start()
    try:
        yield journal
    finally:
        journal.close()


def row_count(engine: Engine, **where: str) -> int:
    query = select(func.count()).select_from(JOURNAL)
    for name, value in where.items():
        query = query.where(JOURNAL.c[name] == value)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_records_from_several_threads_are_committed_in_batches(
    db_engine: Engine, writer: JournalWriter
) -> None:
    threads, per_thread = 4, 250
    completions = Completions(threads * per_thread)

    def produce(worker: int) -> None:
        for i in range(per_thread):
            rec = record(worker * per_thread + i, node=f"node-{worker}")
            writer.submit(rec, completions.callback(rec.trace_id))

    producers = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    completions.wait()

    assert len(completions.results) == 1000
    assert all(error is None for error in completions.results.values())
    assert completions.threads == {"journal-writer"}
    assert row_count(db_engine) == 1000
    assert [row_count(db_engine, node=f"node-{w}") for w in range(threads)] == [250] * 4
    assert writer.rows == 1000
    assert writer.batches < writer.rows
    assert 1 < writer.largest_batch <= 100


def test_two_writers_on_one_database_take_turns_and_lose_nothing(db_url: str, db_engine: Engine) -> None:
    """A node with [node] processes = 2 has two journal writers on its database (SQLite lets one in at a time
    and makes the other wait; PostgreSQL takes both)."""
    per_writer = 300
    completions = Completions(2 * per_writer)
    engines = [db_engine, make_engine(db_url)]
    writers = [JournalWriter(engine, max_batch=20, max_wait=0.0) for engine in engines]
    try:
        for writer in writers:
            writer.start()
        for i in range(per_writer):
            for w, writer in enumerate(writers):
                rec = record(w * per_writer + i, node=f"process-{w}")
                writer.submit(rec, completions.callback(rec.trace_id))
        completions.wait()
    finally:
        for writer in writers:
            writer.close()
        engines[1].dispose()
    assert all(error is None for error in completions.results.values())
    assert [row_count(db_engine, node=f"process-{w}") for w in range(2)] == [per_writer] * 2


def test_done_is_called_only_once_the_row_is_committed(db_engine: Engine) -> None:
    journal = JournalWriter(db_engine, max_batch=10, max_wait=0.0)
    visible: dict[str, int] = {}

    def check(trace_id: str) -> Any:
        def done(error: BaseException | None) -> None:
            assert error is None
            # A separate connection sees only committed data.
            visible[trace_id] = row_count(db_engine, trace_id=trace_id)

        return done

    records = [record(n) for n in range(25)]
    for rec in records:  # queued before the thread starts: batches of exactly max_batch
        journal.submit(rec, check(rec.trace_id))
    journal.start()
    journal.close()
    assert visible == {rec.trace_id: 1 for rec in records}
    assert (journal.batches, journal.largest_batch) == (3, 10)


class ReadOnlyConnections:
    """While ``active``, every new connection of an engine refuses writes (a database that cannot take them:
    a full disk, a read-only file system, a standby)."""

    def __init__(self, engine: Engine) -> None:
        self.active = False
        self._sqlite = engine.dialect.name == "sqlite"
        event.listen(engine, "connect", self._connect)

    def _connect(self, dbapi_connection: Any, _record: Any) -> None:
        if self.active:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only = ON" if self._sqlite else "SET default_transaction_read_only = on")
            cursor.close()
            dbapi_connection.commit()


def test_failed_batch_fails_every_record_of_it_and_the_writer_goes_on(db_engine: Engine) -> None:
    refuse = ReadOnlyConnections(db_engine)
    refuse.active = True
    db_engine.dispose()  # pooled connections were opened writable
    journal = JournalWriter(db_engine, max_batch=20, max_wait=0.0)
    lost = Completions(50)
    for n in range(50):
        journal.submit(record(n), lost.callback(f"trace-{n:08d}"))
    journal.start()
    lost.wait()
    assert all(isinstance(error, JournalWriteError) for error in lost.results.values())
    error = lost.results["trace-00000000"]
    assert isinstance(error, JournalWriteError)
    assert "read" in str(error) and isinstance(error.__cause__, db_engine.dialect.loaded_dbapi.Error)
    assert journal.failed_rows == 50 and journal.rows == 0

    # The writer gave up the failed connection: once the database takes writes again, so does the journal.
    refuse.active = False
    kept = Completions(30)
    for n in range(100, 130):
        journal.submit(record(n), kept.callback(f"trace-{n:08d}"))
    journal.close()
    kept.wait()
    assert set(kept.results.values()) == {None}
    assert row_count(db_engine) == 30
    assert journal.rows == 30


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_connection_lost_between_batches_costs_no_record(db_url: str) -> None:
    """The writer keeps its connection across batches; one the server dropped meanwhile (a restart, an idle
    timeout) is replaced and the batch written on the new one: nothing was committed on the old."""
    name = f"journal-{uuid.uuid4().hex[:12]}"
    with migrated_engine(f"{db_url}&application_name={name}", upgrade) as engine:
        journal = JournalWriter(engine, max_wait=0.0)
        journal.start()
        try:
            first = Completions(1)
            journal.submit(record(1), first.callback("trace-00000001"))
            first.wait()
            with engine.connect() as connection:
                killed = connection.exec_driver_sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE application_name = '{name}' AND pid <> pg_backend_pid()"
                ).scalar_one()
            assert killed == 1
            second = Completions(5)
            for n in range(2, 7):
                journal.submit(record(n), second.callback(f"trace-{n:08d}"))
            second.wait()
        finally:
            journal.close()
        assert first.results == {"trace-00000001": None}
        assert set(second.results.values()) == {None}
        assert row_count(engine) == 6 and journal.failed_rows == 0


def _poison_rows_of_node(engine: Engine, node: str) -> None:
    """Make the database refuse journal rows of one node, as a constraint would."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                f"CREATE TRIGGER poison BEFORE INSERT ON journal WHEN NEW.node = '{node}' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            )
        else:
            connection.exec_driver_sql(
                f"ALTER TABLE journal ADD CONSTRAINT ck_journal_poison CHECK (node <> '{node}')"
            )


def test_a_row_the_database_refuses_fails_alone(db_engine: Engine) -> None:
    _poison_rows_of_node(db_engine, "poison")
    journal = JournalWriter(db_engine, max_batch=50, max_wait=0.0)
    completions = Completions(40)
    for n in range(40):
        rec = record(n, node="poison" if n == 17 else "node-a")
        journal.submit(rec, completions.callback(rec.trace_id))
    journal.start()
    journal.close()
    completions.wait()
    failed = {trace for trace, error in completions.results.items() if error is not None}
    assert failed == {"trace-00000017"}
    assert isinstance(completions.results["trace-00000017"], JournalWriteError)
    assert row_count(db_engine) == 39


def test_a_record_that_cannot_be_encoded_fails_alone(db_engine: Engine) -> None:
    journal = JournalWriter(db_engine, max_batch=50, max_wait=0.0)
    completions = Completions(5)
    for n in range(5):
        rec = record(n)
        if n == 2:
            rec.request["55"] = b"\x9f\x26"  # type: ignore[assignment]  # bytes: not JSON text
        journal.submit(rec, completions.callback(rec.trace_id))
    journal.start()
    journal.close()
    completions.wait()
    assert {t for t, e in completions.results.items() if e is not None} == {"trace-00000002"}
    assert isinstance(completions.results["trace-00000002"], JournalWriteError)
    assert row_count(db_engine) == 4
    assert (journal.rows, journal.failed_rows, journal.batches) == (4, 1, 1)


def test_a_raising_callback_does_not_stop_the_writer(db_engine: Engine) -> None:
    journal = JournalWriter(db_engine, max_batch=1, max_wait=0.0)
    journal.start()

    def explode(_error: BaseException | None) -> None:
        raise RuntimeError("callback bug")

    after = Completions(1)
    journal.submit(record(1), explode)
    journal.submit(record(2), after.callback("trace-00000002"))
    journal.close()
    after.wait()
    assert after.results == {"trace-00000002": None}
    assert row_count(db_engine) == 2


def test_close_flushes_what_was_submitted_and_refuses_more(db_engine: Engine) -> None:
    journal = JournalWriter(db_engine)
    completions = Completions(10)
    for n in range(10):
        journal.submit(record(n), completions.callback(f"trace-{n:08d}"))
    journal.close()  # never started: close starts the thread to flush
    completions.wait()
    assert set(completions.results.values()) == {None}
    assert row_count(db_engine) == 10
    pool = db_engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedout() == 0  # the writer gave its connection back
    with pytest.raises(JournalClosedError):
        journal.submit(record(11), completions.callback("late"))
    journal.close()  # closing twice is harmless


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pan_masked": PAN}, "pan_masked"),
        ({"pan_masked": "476173**0101**19"}, "pan_masked"),
        ({"pan_hash": "not-a-hash"}, "pan_hash"),
        ({"outcome": "maybe"}, "outcome"),
        ({"received_at": datetime(2026, 1, 1)}, "received_at"),
    ],
    ids=["clear-pan", "seven-clear-digits", "hash", "outcome", "naive-time"],
)
def test_invalid_records_are_refused_at_submit(
    db_engine: Engine, change: dict[str, object], message: str
) -> None:
    journal = JournalWriter(db_engine)
    with pytest.raises(ValueError, match=message) as info:
        journal.submit(replace(record(1), **change), lambda _error: None)  # type: ignore[arg-type]
    assert PAN not in str(info.value)
    assert journal.queue_depth == 0


def _store(engine: Engine, records: list[JournalRecord]) -> None:
    journal = JournalWriter(engine, max_wait=0.0)
    completions = Completions(len(records))
    for rec in records:
        journal.submit(rec, completions.callback(rec.trace_id))
    journal.close()
    completions.wait()
    assert set(completions.results.values()) == {None}


def test_find_exchanges_by_rrn_stan_and_trace_id_returns_masked_records(db_engine: Engine) -> None:
    records = [record(n) for n in range(1, 6)]
    # A repeat of exchange 3's STAN from another terminal, an hour later (STANs wrap; RRNs identify).
    repeat = replace(
        record(3), trace_id="trace-repeat", rrn="999999999999", terminal_id="ATM00002",
        received_at=records[2].received_at + timedelta(hours=1),
        responded_at=records[2].responded_at + timedelta(hours=1),
    )
    _store(db_engine, [*records, repeat])

    by_rrn = find_exchanges(db_engine, rrn="000000000003")
    assert by_rrn == [records[2]]
    found = by_rrn[0]
    assert found.pan_masked == "476173******0119"
    assert found.request["2"] == "476173******0119"
    assert found.request["35"] == "<37 chars hidden>"
    assert found.request["52"] == "<8 bytes hidden>"
    assert found.response is not None and found.response["39"] == "00"
    assert found.received_at.tzinfo is UTC

    assert [r.trace_id for r in find_exchanges(db_engine, stan="000003")] == ["trace-repeat", "trace-00000003"]
    assert find_exchanges(db_engine, stan="000003", rrn="000000000003") == [records[2]]
    assert find_exchanges(db_engine, trace_id="trace-00000005") == [records[4]]
    assert find_exchanges(db_engine, rrn="000000000042") == []
    assert [r.trace_id for r in find_exchanges(db_engine, limit=2)] == ["trace-repeat", "trace-00000005"]
    assert len(find_exchanges(db_engine, pan_hash=records[0].pan_hash, since=T0)) == 6


def test_times_are_stored_as_utc_instants(db_engine: Engine) -> None:
    new_york = timezone(timedelta(hours=-5))
    received = datetime(2026, 3, 14, 23, 30, tzinfo=new_york)
    rec = replace(record(1), received_at=received, responded_at=received + timedelta(milliseconds=3))
    _store(db_engine, [rec])
    (found,) = find_exchanges(db_engine, trace_id=rec.trace_id)
    assert found.received_at == received
    assert found.received_at.tzinfo is UTC
    assert (found.received_at.day, found.received_at.hour) == (15, 4)
    assert found.responded_at - found.received_at == timedelta(milliseconds=3)


def test_find_exchanges_by_received_time_window(db_engine: Engine) -> None:
    records = [record(n) for n in range(10)]  # received 1 ms apart from T0
    _store(db_engine, records)
    start, end = records[3].received_at, records[7].received_at
    found = find_exchanges(db_engine, since=start, until=end)
    assert [r.trace_id for r in found] == [f"trace-{n:08d}" for n in (6, 5, 4, 3)]
    # The same window given in another time zone is the same instant.
    tokyo = timezone(timedelta(hours=9))
    assert find_exchanges(db_engine, since=start.astimezone(tokyo), until=end.astimezone(tokyo)) == found


def test_a_card_lookup_searches_the_last_24_hours_unless_given_a_window(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    old = [record(n, at=now - timedelta(hours=30)) for n in range(1, 4)]
    recent = [record(n, at=now - timedelta(hours=2)) for n in range(4, 6)]
    other_card = record(6, pan="5413330089010509", at=now - timedelta(hours=1))
    _store(db_engine, [*old, *recent, other_card])
    card = old[0].pan_hash
    assert card is not None

    assert find_exchanges(db_engine, pan_hash=card) == recent[::-1]
    assert [r.trace_id for r in find_exchanges(db_engine, pan_hash=card, since=now - timedelta(days=2))] == [
        "trace-00000005", "trace-00000004", "trace-00000003", "trace-00000002", "trace-00000001"]
    # The default window ends at ``until`` when one is given.
    assert find_exchanges(db_engine, pan_hash=card, until=now - timedelta(hours=12)) == old[::-1]
    assert find_exchanges(db_engine, pan_hash=card, until=now - timedelta(hours=60)) == []
    # With an indexed criterion the card only narrows the match: no window.
    assert find_exchanges(db_engine, pan_hash=card, rrn=old[0].rrn) == [old[0]]
    assert find_exchanges(db_engine, pan_hash=other_card.pan_hash, trace_id=old[0].trace_id) == []


def _response(rec: JournalRecord, fields: dict[str, str]) -> JournalRecord:
    return replace(rec, trace_id=f"{rec.trace_id}-x", response=fields)


def test_responses_come_back_whole_whatever_they_changed_added_or_removed(db_engine: Engine) -> None:
    base = record(1)
    request = base.request
    assert base.response is not None
    echoed = {k: v for k, v in request.items() if k not in ("35", "52")}
    cases: dict[str, dict[str, str]] = {
        "echo": base.response,  # mti changed, 39 added, track 2 and PIN block removed
        "identical": dict(request),
        "changed": {**request, "mti": "0210", "4": "000000000100", "39": "10"},
        "added": {**request, "mti": "0210", "38": "A1B2C3", "39": "00", "54": "1002840C000000010000", "127": "x"},
        "removed": {"mti": "0210", "39": "96"},
        "empty": {},
        "unordered": {"39": "00", "mti": "0210", **echoed},
        "text keys": {**request, "mti": "0210", "39": "00", "extra": "é \"quoted\""},
        "none value": {**request, "mti": "0210", "39": None},  # type: ignore[dict-item]
    }
    records = [_response(replace(base, trace_id=name), fields) for name, fields in cases.items()]
    records.append(replace(base, trace_id="no response", mti_out=None, response_code=None, response=None))
    _store(db_engine, records)
    for rec in records:
        (found,) = find_exchanges(db_engine, trace_id=rec.trace_id)
        assert found == rec
        assert found.request == request and list(found.request) == list(request)
    # Read back in Message.masked() order (MTI, then by field number), as the switch wrote it.
    (echo,) = find_exchanges(db_engine, trace_id="echo-x")
    assert echo.response is not None and list(echo.response) == list(base.response)
    (added,) = find_exchanges(db_engine, trace_id="added-x")
    assert added.response is not None
    assert list(added.response) == sorted(cases["added"], key=lambda key: -1 if key == "mti" else int(key))


def test_the_response_is_stored_as_its_difference_from_the_request(db_engine: Engine) -> None:
    rec = record(1)
    assert rec.response is not None
    rec.response["38"] = "A1B2C3"
    _store(db_engine, [rec])
    with db_engine.connect() as connection:
        response, delta = connection.execute(select(JOURNAL.c.response, JOURNAL.c.response_delta)).one()
    assert response is None
    assert json.loads(delta) == {"mti": "0210", "38": "A1B2C3", "39": "00", "35": None, "52": None}


def test_a_backend_without_a_driver_path_goes_through_sqlalchemy_core(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "_sink", journal_module._Sink)
    records = [record(n) for n in range(1, 4)]
    records[1] = replace(records[1], mti_out=None, response_code=None, response=None)
    _store(db_engine, records)
    assert find_exchanges(db_engine, since=T0) == records[::-1]
