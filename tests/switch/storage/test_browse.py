"""Browsing the journal (switch.storage.browse): pages with truncation, and following new rows in commit order,
including a row whose id was handed out before an earlier-committed one (several writers on PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import Engine, select

from switch.storage.browse import GAP_WAIT_S, Exchange, JournalFilter, follow_poll, follow_start, list_exchanges
from switch.storage.models import JOURNAL

from .factories import T0, record
from .test_journal import _store


def _stans(rows: list[Exchange]) -> list[str | None]:
    return [x.record.stan for x in rows]


def test_a_page_is_newest_first_and_says_when_more_rows_match(db_engine: Engine) -> None:
    _store(db_engine, [replace(record(n), response_code="05" if n % 2 else "00") for n in range(1, 6)])
    rows, more = list_exchanges(db_engine, JournalFilter(response_code="05"), limit=2)
    assert _stans(rows) == ["000005", "000003"] and more
    rows, more = list_exchanges(db_engine, JournalFilter(response_code="05"), limit=3)
    assert _stans(rows) == ["000005", "000003", "000001"] and not more
    window = JournalFilter(since=T0 + timedelta(milliseconds=2), until=T0 + timedelta(milliseconds=4))
    assert _stans(list_exchanges(db_engine, window, limit=10)[0]) == ["000003", "000002"]


def test_follow_returns_rows_once_in_id_order_and_picks_up_a_late_commit(db_engine: Engine) -> None:
    _store(db_engine, [record(1)])
    cursor = follow_start(db_engine)
    assert follow_poll(db_engine, JournalFilter(), cursor, now=0.0) == []
    _store(db_engine, [record(n) for n in range(2, 6)])
    # Row 3 "not committed yet": take it out, as another writer's open transaction would hide it.
    with db_engine.begin() as connection:
        row3 = connection.execute(select(JOURNAL).where(JOURNAL.c.stan == "000003")).one()._asdict()
        connection.execute(JOURNAL.delete().where(JOURNAL.c.id == row3["id"]))
    assert _stans(follow_poll(db_engine, JournalFilter(), cursor, now=1.0)) == ["000002", "000004", "000005"]
    assert follow_poll(db_engine, JournalFilter(), cursor, now=2.0) == []
    with db_engine.begin() as connection:  # ... and now it commits
        connection.execute(JOURNAL.insert().values(row3))
    assert _stans(follow_poll(db_engine, JournalFilter(), cursor, now=3.0)) == ["000003"]
    assert follow_poll(db_engine, JournalFilter(), cursor, now=4.0) == [] and cursor.gaps == {}


def test_follow_applies_the_filters_and_forgets_an_id_that_never_comes(db_engine: Engine) -> None:
    cursor = follow_start(db_engine)
    _store(db_engine, [replace(record(n), terminal_id="ATM00042" if n == 3 else "TERM0001") for n in (1, 2, 3)])
    with db_engine.begin() as connection:  # row 2's batch rolled back: its id is never seen
        connection.execute(JOURNAL.delete().where(JOURNAL.c.stan == "000002"))
    only = JournalFilter(terminal_id="ATM00042")
    assert _stans(follow_poll(db_engine, only, cursor, now=0.0)) == ["000003"]
    assert len(cursor.gaps) == 1
    follow_poll(db_engine, only, cursor, now=GAP_WAIT_S + 1)
    assert cursor.gaps == {}
