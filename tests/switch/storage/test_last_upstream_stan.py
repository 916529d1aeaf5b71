"""Where a restarted node's link goes on numbering (switch.storage.journal.last_upstream_stan): after the highest
STAN it sent lately, not after a repeat's (its original's, older) STAN, nor below a reserved one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from switch.storage.journal import last_upstream_stan
from tests.switch.storage.factories import record
from tests.switch.storage.test_journal import _store


def test_last_upstream_stan_is_not_an_old_originals_stan_reused_by_a_repeat(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    rows = []
    # 0200s sent upstream under the switch's STANs 000100 .. 000500
    for i, n in enumerate(range(100, 501)):
        rows.append(replace(record(i + 1, at=now - timedelta(minutes=5)), destination="visa",
                            upstream_stan=f"{n:06d}", upstream_time="1207231000"))
    # the last thing before the restart: an 0201 repeat of the first one, under the original's STAN 000100
    rows.append(replace(record(999, at=now - timedelta(seconds=1)), destination="visa", mti_in="0201",
                        upstream_stan="000100", upstream_time="1207231000"))
    _store(db_engine, rows)
    last = last_upstream_stan(db_engine, "visa", now=now)
    # going on at 000101 would send 000101..000500 again the same day
    assert last == "000500"


def test_a_wrap_of_the_stan_sequence_goes_on_after_the_low_numbers(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    stans = [999_997, 999_998, 999_999, 1, 2, 3]
    _store(db_engine, [replace(record(i + 1, at=now - timedelta(seconds=10 - i)), destination="visa",
                               upstream_stan=f"{n:06d}", upstream_time="1207231000") for i, n in enumerate(stans)])
    assert last_upstream_stan(db_engine, "visa", now=now) == "000003"
