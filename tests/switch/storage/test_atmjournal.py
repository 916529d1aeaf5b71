"""The journal as the ATMP reads it (switch.storage.atmjournal): the approved withdrawal a terminal's confirmation
names, and the withdrawals no terminal has spoken of."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from switch.storage.atmjournal import approved_withdrawals, find_withdrawal
from switch.storage.records import JournalRecord
from tests.switch.storage.factories import record
from tests.switch.storage.test_journal import _store


def _row(n: int, at: datetime, *, code: str = "00", processing: str = "011000", mti: str = "0200",
         terminal: str = "ATM00001", source: str = "atm", amount: str = "000000012345") -> JournalRecord:
    base = record(n, at=at)
    request = {**base.request, "3": processing, "4": amount}
    response = {**(base.response or {}), "39": code, "3": processing}
    return replace(base, mti_in=mti, processing_code=processing, response_code=code, terminal_id=terminal,
                   source_link=source, request=request, response=response, amount=int(amount))


def test_a_confirmation_finds_its_approved_withdrawal_by_terminal_stan_and_time(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    _store(db_engine, [_row(7, now - timedelta(minutes=1)), _row(8, now, code="51"),
                       _row(9, now, terminal="ATM00002")])
    found = find_withdrawal(db_engine, source_link="atm", terminal_id="ATM00001", stan="000007",
                            transmitted="0314092653", now=now)
    assert found is not None
    assert (found.amount, found.currency, found.terminal_id, found.key) == (
        12345, "840", "ATM00001", "ATM00001:000007:0314092653")
    # another DE 7 (an older withdrawal under the same STAN), a declined one, another terminal's: none
    assert find_withdrawal(db_engine, source_link="atm", terminal_id="ATM00001", stan="000007",
                           transmitted="0101000000", now=now) is None
    assert find_withdrawal(db_engine, source_link="atm", terminal_id="ATM00001", stan="000008",
                           transmitted=None, now=now) is None
    assert find_withdrawal(db_engine, source_link="atm", terminal_id="ATM00001", stan="000009",
                           transmitted=None, now=now) is None


def test_a_partial_approval_is_the_amount_the_terminal_may_pay_out(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    row = _row(3, now, code="10")
    row = replace(row, response={**(row.response or {}), "4": "000000005000"})
    _store(db_engine, [row])
    found = find_withdrawal(db_engine, source_link="atm", terminal_id="ATM00001", stan="000003",
                            transmitted=None, now=now)
    assert found is not None and found.amount == 5000


def test_approved_withdrawals_leave_out_repeats_inquiries_declines_and_other_listeners(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    t = now - timedelta(minutes=10)
    original = _row(1, t)
    repeat = replace(_row(1, t + timedelta(seconds=5), mti="0201"), trace_id="trace-repeat")
    _store(db_engine, [original, repeat, _row(2, t, processing="301000"), _row(3, t, code="55"),
                       _row(4, t, source="acquirer"), _row(5, now)])
    found, end = approved_withdrawals(db_engine, ["atm"], now - timedelta(hours=1), now - timedelta(minutes=5))
    assert [w.stan for w in found] == ["000001"] and end is None


def test_approved_withdrawals_come_a_page_at_a_time(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    _store(db_engine, [_row(n, now - timedelta(minutes=30) + timedelta(seconds=n)) for n in range(1, 8)])
    stans, after = [], None
    for _ in range(10):
        page, after = approved_withdrawals(db_engine, ["atm"], now - timedelta(hours=1), now, limit=3, after=after)
        stans += [w.stan for w in page]
        if after is None:
            break
    assert stans == [f"{n:06d}" for n in range(1, 8)]

