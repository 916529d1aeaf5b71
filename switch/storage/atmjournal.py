"""The journal as the ATM processor reads it: the approved withdrawal a terminal's confirmation or reversal names,
and the approved withdrawals no terminal has said anything about since.

The journal is the one record of what was approved: its row commits before the terminal is answered, so a
withdrawal the terminal may have acted on is always here, whatever crashed after. The ATMP therefore writes
nothing of its own when it approves; it records a withdrawal's dispense outcome when the terminal reports it
(atmp.storage), and finds the withdrawals still without one here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, and_, or_, select

from atmp.errors import AtmFieldError
from atmp.interface import withdrawal_key
from switch.infra.db.errors import storage_errors
from switch.storage.journal import _record
from switch.storage.models import JOURNAL

# How far back a terminal's confirmation or reversal looks for its withdrawal: a terminal keeps an unanswered
# confirmation in its own store-and-forward queue across a night's outage, not for days.
LOOKUP_WINDOW: Final = timedelta(days=2)
# Response codes under which cash goes out: approved, and approved for a partial amount (DE 4 of the answer).
_APPROVED: Final = ("00", "10")
# Processing codes whose approval the terminal acts on with cash: withdrawals (01) and cash advances on a credit
# card at an ATM (also 01 with the credit account type).
_CASH: Final = "01"


@dataclass(frozen=True)
class Withdrawal:
    """An approved withdrawal as the journal has it."""

    source_link: str
    terminal_id: str
    stan: str
    transmitted: str  # the terminal's DE 7
    amount: int  # approved amount, minor units of ``currency`` (a partial approval's DE 4)
    currency: str
    processing_code: str
    destination: str | None
    received_at: datetime
    trace_id: str
    row_id: int = 0  # the journal row's id: with received_at, where a page of the window ends

    @property
    def key(self) -> str:
        """The ATMP's key of the withdrawal: terminal, STAN and DE 7, as the terminal's DE 90 names it."""
        return withdrawal_key(self.terminal_id, self.stan, self.transmitted)


def _withdrawal(row: Any) -> Withdrawal | None:
    record = _record(row)
    response = record.response or {}
    amount = response.get("4") if record.response_code == "10" else None
    amount = amount or record.request.get("4")
    if not record.terminal_id or not record.stan or amount is None or not str(amount).isdigit():
        return None
    try:  # a row the ATMP could never be told about (a malformed terminal id, STAN or DE 7) is not its business
        withdrawal_key(record.terminal_id, record.stan, str(record.request.get("7") or ""))
    except AtmFieldError:
        return None
    return Withdrawal(
        source_link=record.source_link, terminal_id=record.terminal_id, stan=record.stan,
        transmitted=str(record.request.get("7") or ""), amount=int(str(amount)),
        currency=record.currency or str(record.request.get("49") or ""),
        processing_code=record.processing_code or "", destination=record.destination,
        received_at=record.received_at, trace_id=record.trace_id, row_id=int(row._mapping["id"]))


def find_withdrawal(engine: Engine, *, source_link: str, terminal_id: str, stan: str, transmitted: str | None,
                    now: datetime | None = None) -> Withdrawal | None:
    """The approved withdrawal (0200, or its repeat 0201) terminal ``terminal_id`` sent on ``source_link`` under
    ``stan`` (and DE 7 ``transmitted`` when given) within :data:`LOOKUP_WINDOW`; None when there is none (never
    approved, or not a withdrawal). Through the ``stan`` index."""
    since = (now or datetime.now(UTC)) - LOOKUP_WINDOW
    query = (select(JOURNAL)
             .where(JOURNAL.c.stan == stan, JOURNAL.c.source_link == source_link,
                    JOURNAL.c.terminal_id == terminal_id, JOURNAL.c.mti_in.startswith("020", autoescape=True),
                    JOURNAL.c.response_code.in_(_APPROVED), JOURNAL.c.received_at >= since)
             .order_by(JOURNAL.c.received_at.desc(), JOURNAL.c.id.desc()).limit(10))
    with storage_errors("find a terminal's withdrawal"), engine.connect() as connection:
        rows = connection.execute(query).all()
    for row in rows:
        found = _withdrawal(row)
        if found is None or not found.processing_code.startswith(_CASH):
            continue
        if transmitted is None or found.transmitted == transmitted:
            return found
    return None


# Where a page of approved withdrawals ended: (received_at, journal row id) of its last row.
Position = tuple[datetime, int]


def approved_withdrawals(engine: Engine, sources: Sequence[str], since: datetime, until: datetime,
                         limit: int = 1000, after: Position | None = None) -> tuple[list[Withdrawal], Position | None]:
    """One page of the approved withdrawals from the terminals of listeners ``sources`` received in [since, until),
    oldest first, at most ``limit`` rows (through the ``received_at`` index), from ``after`` (the position the
    previous page ended at; None: the start); and the position this page ends at (None: the window is exhausted).
    A repeat (0201) of an original in the page is left out: it is the same withdrawal."""
    query = (select(JOURNAL)
             .where(JOURNAL.c.source_link.in_(list(sources)), JOURNAL.c.received_at >= since,
                    JOURNAL.c.received_at < until, JOURNAL.c.mti_in.startswith("020", autoescape=True),
                    JOURNAL.c.processing_code.startswith(_CASH, autoescape=True),
                    JOURNAL.c.response_code.in_(_APPROVED)))
    if after is not None:
        at, row_id = after
        query = query.where(or_(JOURNAL.c.received_at > at, and_(JOURNAL.c.received_at == at, JOURNAL.c.id > row_id)))
    query = query.order_by(JOURNAL.c.received_at, JOURNAL.c.id).limit(limit)
    with storage_errors("find approved withdrawals"), engine.connect() as connection:
        rows = connection.execute(query).all()
    found: dict[str, Withdrawal] = {}
    for row in rows:
        withdrawal = _withdrawal(row)
        if withdrawal is not None:
            found.setdefault(withdrawal.key, withdrawal)
    end = (_record(rows[-1]).received_at, int(rows[-1]._mapping["id"])) if len(rows) == limit else None
    return list(found.values()), end

