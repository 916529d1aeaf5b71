"""Migrations run from code on an empty database, match the models, and go down and up again."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import switch.storage
from switch.infra.db.engine import make_engine, sqlite_url
from switch.infra.db.errors import StorageError
from switch.infra.db.migrate import Migrations
from switch.storage.db import current_revision, downgrade, head_revision, upgrade
from switch.storage.journal import JournalWriter, find_exchanges
from switch.storage.models import SAF, Base
from switch.storage.records import JournalRecord
from switch.storage.saf import SafStore

from .factories import record

TABLES = {"journal", "saf_entries", "route_reloads", "saf_actions"}


def test_upgrade_from_empty_creates_every_table_with_named_indexes(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert TABLES.isdisjoint(inspect(engine).get_table_names())
        upgrade(db_url)
        assert current_revision(engine) == head_revision() == "0006"
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) >= TABLES
        journal_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("journal")}
        assert journal_indexes == {
            "ix_journal_rrn": ["rrn"],
            "ix_journal_stan": ["stan"],
            "ix_journal_received_at": ["received_at"],
            "ix_journal_trace_id": ["trace_id"],
        }
        saf_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("saf_entries")}
        assert saf_indexes == {"ix_saf_entries_destination_status_id": ["destination", "status", "id"],
                               "ix_saf_entries_destination_original_key_id": ["destination", "original_key", "id"],
                               "ix_saf_entries_original_key_id": ["original_key", "id"]}
        checks = {ck["name"] for ck in inspector.get_check_constraints("saf_entries")}
        assert checks == {"ck_saf_entries_status", "ck_saf_entries_attempts"}
        if engine.dialect.name == "postgresql":  # SQLite does not keep primary key names
            assert inspector.get_pk_constraint("journal")["name"] == "pk_journal"
    finally:
        engine.dispose()


def test_models_and_migrations_describe_the_same_schema(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_upgrade_again_is_a_no_op_and_downgrade_to_base_drops_everything(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        downgrade(db_url, "base")
        assert current_revision(engine) is None
        assert TABLES.isdisjoint(inspect(engine).get_table_names())
        upgrade(db_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_unknown_revision_is_a_storage_error(db_url: str) -> None:
    with pytest.raises(StorageError) as info:
        upgrade(db_url, "9999")
    assert "9999" in str(info.value)


def test_sqlite_engine_creates_folder_and_sets_wal_full_sync_busy_timeout_foreign_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "var" / "deeper" / "switch.db"
    engine = make_engine(sqlite_url(path), busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
        assert pragma == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 1234, "foreign_keys": 1}
        assert path.exists()
    finally:
        engine.dispose()


def test_timestamps_come_back_as_the_same_instant_in_aware_utc(db_engine: Engine) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    created = datetime(2026, 3, 14, 15, 0, 0, 123456, tzinfo=india)
    store = SafStore(db_engine)
    item_id = store.enqueue(
        destination="visa", mti="0420", stan=None, rrn=None, pan_masked=None, amount=None,
        currency=None, payload=b"x", original_trace_id=None, now=created, expires_at=None,
    )
    item = store.get(item_id)
    assert item is not None
    assert item.created_at == created
    assert item.created_at.tzinfo is UTC
    assert (item.created_at.hour, item.created_at.minute, item.created_at.microsecond) == (9, 30, 123456)


def test_naive_timestamps_are_refused(db_engine: Engine) -> None:
    with pytest.raises(StorageError, match="naive"):
        SafStore(db_engine).enqueue(
            destination="visa", mti="0420", stan=None, rrn=None, pan_masked=None, amount=None,
            currency=None, payload=b"x", original_trace_id=None, now=datetime(2026, 1, 1),
            expires_at=None,
        )
    assert SafStore(db_engine).pending_count() == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_utc_is_kept_whatever_the_postgresql_session_time_zone(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url.replace("options=", "options=-ctimezone%3DAsia%2FTokyo%20"))
    try:
        at = datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC)
        item_id = SafStore(engine).enqueue(
            destination="d", mti="0420", stan=None, rrn=None, pan_masked=None, amount=None,
            currency=None, payload=b"", original_trace_id=None, now=at, expires_at=None,
        )
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW timezone").scalar() == "Asia/Tokyo"
        item = SafStore(engine).get(item_id)
        assert item is not None and item.created_at == at and item.created_at.tzinfo is UTC
    finally:
        engine.dispose()


def _journal_indexes(engine: Engine) -> set[str]:
    return {ix["name"] for ix in inspect(engine).get_indexes("journal") if ix["name"]}


def _insert_0001_row(engine: Engine, rec: JournalRecord) -> None:
    """A journal row as revision 0001 stored it: the whole response as JSON, no response_delta column."""
    later = ("request", "response", "upstream_stan", "upstream_time", "upstream_rrn", "settlement_date")  # 0005
    columns = [name for name in JournalRecord.__dataclass_fields__ if name not in later]
    values: dict[str, object] = {name: getattr(rec, name) for name in columns}
    for name in ("received_at", "responded_at"):  # SQLite DATETIME text, or timestamptz
        if engine.dialect.name == "sqlite":
            values[name] = getattr(rec, name).astimezone(UTC).isoformat(" ", "microseconds")[:26]
    values["request"] = json.dumps(rec.request, separators=(",", ":"))
    values["response"] = None if rec.response is None else json.dumps(rec.response, separators=(",", ":"))
    names = [*columns, "request", "response"]
    sql = f"INSERT INTO journal ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
    with engine.begin() as connection:
        connection.execute(text(sql), values)


def test_upgrade_from_0001_keeps_the_journal_and_downgrade_keeps_new_responses(db_url: str) -> None:
    upgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        assert "ix_journal_pan_hash" in _journal_indexes(engine)
        before = [record(1), replace(record(2), mti_out=None, response_code=None, response=None)]
        for rec in before:
            _insert_0001_row(engine, rec)

        upgrade(db_url, "0002")
        assert current_revision(engine) == "0002"
        assert "ix_journal_pan_hash" not in _journal_indexes(engine)
        upgrade(db_url)  # the live code reads and writes the newest schema (0005 added the upstream identity)
        assert find_exchanges(engine, rrn=before[0].rrn) == [before[0]]
        assert find_exchanges(engine, rrn=before[1].rrn) == [before[1]]
        after = record(3)
        assert after.response is not None
        with_auth_code = {**after.response, "38": "A1B2C3"}  # an approval code, in field order
        after.response = dict(sorted(with_auth_code.items(), key=lambda kv: -1 if kv[0] == "mti" else int(kv[0])))
        journal = JournalWriter(engine, max_wait=0.0)
        results: list[BaseException | None] = []
        journal.submit(after, results.append)
        journal.close()
        assert results == [None]
        assert find_exchanges(engine, rrn=after.rrn) == [after]

        downgrade(db_url, "0001")
        assert current_revision(engine) == "0001"
        assert "ix_journal_pan_hash" in _journal_indexes(engine)
        with engine.connect() as connection:
            stored = {rrn: None if text_ is None else json.loads(text_) for rrn, text_ in connection.execute(
                text("SELECT rrn, response FROM journal"))}
        assert stored == {after.rrn: after.response, before[0].rrn: before[0].response, before[1].rrn: None}
        assert list(stored[after.rrn]) == list(after.response)  # MTI, then by field number

        upgrade(db_url)
        assert [r.response for r in find_exchanges(engine, since=before[0].received_at)] == [
            after.response, None, before[0].response]
    finally:
        engine.dispose()


def test_a_migration_run_that_fails_midway_leaves_the_database_as_it_was(db_url: str, tmp_path: Path) -> None:
    # A process killed during its first migration (a cell stopped while it first starts) must not leave tables
    # without their version row: SQLite's driver committed DDL statement by statement, and every later start
    # then failed on "table ... already exists". A revision that fails after creating a table stands for the kill.
    scripts = tmp_path / "migrations"
    shutil.copytree(Path(switch.storage.__file__).parent / "migrations", scripts)
    (scripts / "versions" / "0099_fails.py").write_text(
        f'revision = "0099"\ndown_revision = "{head_revision()}"\nbranch_labels = None\ndepends_on = None\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n\n"
        "def upgrade() -> None:\n"
        '    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    raise RuntimeError("stopped midway")\n\n\n'
        "def downgrade() -> None:\n    pass\n")
    with pytest.raises(RuntimeError, match="stopped midway"):
        Migrations(scripts).upgrade(db_url)
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None  # the whole run, every earlier revision included, rolled back
        assert not (TABLES | {"half_done"}) & set(inspect(engine).get_table_names())
        upgrade(db_url)  # and the next start migrates cleanly
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def _forwarder_0002_expire(engine: Engine, now: datetime) -> int:
    """What revision 0002's forwarder did at each sweep (switch.storage.saf before issue 11): pending entries past
    their ``expires_at`` became "expired"."""
    with engine.begin() as connection:
        return int(connection.execute(
            SAF.update().where(SAF.c.status == "pending", SAF.c.expires_at.is_not(None), SAF.c.expires_at <= now)
            .values(status="expired", completed_at=now)).rowcount)


def test_upgrade_to_0003_keeps_the_queue_and_downgrade_maps_the_new_states_to_old_ones(db_url: str) -> None:
    upgrade(db_url, "0002")
    engine = make_engine(db_url)
    try:
        at = datetime(2026, 5, 1, 12, tzinfo=UTC)
        with engine.begin() as connection:
            for n, status in enumerate(("pending", "failed")):
                # Only the columns revision 0002 has.
                connection.execute(SAF.insert().values(destination="up", mti="0400", payload=b"sealed", status=status,
                                                       attempts=n, created_at=at, next_attempt_at=at))
        upgrade(db_url)
        store = SafStore(engine)
        old_pending, old_failed = store.list_items(limit=10)
        assert (old_pending.status, old_pending.original_key, old_pending.attempts_at_resend) == ("pending", None, 0)
        assert old_failed.status == "failed" and old_pending.payload == b"sealed"
        now = datetime(2026, 5, 1, 13, tzinfo=UTC)
        new = store.enqueue(destination="up", mti="0220", stan="1", rrn=None, pan_masked=None, amount=1,
                            currency="840", payload=b"x", original_trace_id=None, now=now, expires_at=now,
                            original_key="K")
        store.escalate(now, max_attempts=None)
        assert store.get(new).status == "exception"  # type: ignore[union-attr]
        store.act(old_pending.id, "cancel", actor="ops", reason="test", now=now)

        downgrade(db_url, "0002")
        assert current_revision(engine) == "0002"
        assert "saf_actions" not in inspect(engine).get_table_names()
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, status, expires_at FROM saf_entries")).all()
        # An exception goes back to being retried, a cancelled entry to given up: the old states.
        assert {i: status for i, status, _ in rows} == {old_pending.id: "failed", old_failed.id: "failed",
                                                         new: "pending"}
        # It escalated because it was past expires_at: kept, 0002's forwarder would expire it at its first sweep
        # (give up an undelivered entry nobody decided to give up); without one it is retried until acknowledged.
        assert {i: expires for i, _, expires in rows}[new] is None
        assert _forwarder_0002_expire(engine, now + timedelta(days=1)) == 0
        upgrade(db_url)
        assert [i.status for i in SafStore(engine).list_items()] == ["pending", "failed", "failed"]
    finally:
        engine.dispose()
