"""Browsing the journal: pages by filter, an export stream, and following new rows as they are committed.

Lookups by trace, STAN or RRN are :func:`switch.storage.journal.find_exchanges`; this module is for the operator
who does not know which exchange to look for yet: "what did terminal ATM00042 do this morning", "every 05 from
the VISA link in the last 15 minutes", "everything on this card for a dispute".

Which filters use an index: ``received_at`` does (and ``id``, for following). ``terminal_id``, ``response_code``,
``destination`` and ``pan_hash`` do not (an index per column would cost a page write per row at every commit of
the journal, see :mod:`switch.storage.journal`), so those filters are applied to the rows of a time window read
through the ``received_at`` index. A card lookup without ``since`` is bounded to :data:`CARD_LOOKUP_WINDOW`, as in
``find_exchanges``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Engine, Select, and_, or_, select

from switch.infra.db.errors import storage_errors
from switch.storage.journal import CARD_LOOKUP_WINDOW, _record
from switch.storage.models import JOURNAL
from switch.storage.records import JournalRecord

# How long a missing id is looked for again while following (see FollowCursor): longer than any batch of the
# journal writers takes to commit, short enough that ids lost to a rolled-back batch are soon forgotten.
GAP_WAIT_S: Final = 30.0
FOLLOW_BATCH: Final = 5000  # ids taken per poll; a busier journal is caught up over several polls
# More missing ids than this in one poll is not batches in flight (say, rows deleted by an archive job, or a
# PostgreSQL sequence that skipped ahead after a crash): nothing is waited for then.
MAX_GAPS: Final = 1000


@dataclass(frozen=True, slots=True)
class JournalFilter:
    """What the operator asks for; every criterion given must hold. ``since`` inclusive, ``until`` exclusive,
    both aware."""

    since: datetime | None = None
    until: datetime | None = None
    terminal_id: str | None = None
    response_code: str | None = None
    destination: str | None = None
    pan_hash: str | None = None

    def bounded(self, now: datetime | None = None) -> JournalFilter:
        """This filter with the card lookup's default window applied (``since`` = ``until`` or now, less 24 h)
        when it looks for a card without ``since``."""
        if self.pan_hash is None or self.since is not None:
            return self
        end = self.until or now or datetime.now(UTC)
        return JournalFilter(end - CARD_LOOKUP_WINDOW, self.until, self.terminal_id, self.response_code,
                             self.destination, self.pan_hash)

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        for column, value in (
            (JOURNAL.c.terminal_id, self.terminal_id),
            (JOURNAL.c.response_code, self.response_code),
            (JOURNAL.c.destination, self.destination),
            (JOURNAL.c.pan_hash, self.pan_hash),
        ):
            if value is not None:
                found.append(column == value)
        if self.since is not None:
            found.append(JOURNAL.c.received_at >= self.since)
        if self.until is not None:
            found.append(JOURNAL.c.received_at < self.until)
        return found


@dataclass(frozen=True, slots=True)
class Exchange:
    """A journal row with its id (the order in which rows were written)."""

    id: int
    record: JournalRecord


def _query(flt: JournalFilter) -> Select[Any]:
    return select(JOURNAL).where(*flt.conditions())


def _exchange(row: Any) -> Exchange:
    return Exchange(int(row._mapping["id"]), _record(row))


def list_exchanges(engine: Engine, flt: JournalFilter, limit: int) -> tuple[list[Exchange], bool]:
    """Up to ``limit`` rows matching ``flt`` (card lookups bounded, see :meth:`JournalFilter.bounded`), newest
    first, and whether more rows matched."""
    query = (_query(flt.bounded()).order_by(JOURNAL.c.received_at.desc(), JOURNAL.c.id.desc()).limit(limit + 1))
    with storage_errors("list exchanges"), engine.connect() as connection:
        rows = [_exchange(row) for row in connection.execute(query)]
    return rows[:limit], len(rows) > limit


def export_exchanges(engine: Engine, flt: JournalFilter, limit: int | None = None) -> Iterator[Exchange]:
    """Every row matching ``flt`` (card lookups bounded), oldest first, read in batches so an export of a
    long window does not hold the whole result in memory."""
    query = _query(flt.bounded()).order_by(JOURNAL.c.received_at, JOURNAL.c.id)
    if limit is not None:
        query = query.limit(limit)
    with storage_errors("export exchanges"), engine.connect() as connection:
        result = connection.execution_options(yield_per=1000).execute(query)
        for row in result:
            yield _exchange(row)


@dataclass(slots=True)
class FollowCursor:
    """Where a follower is: the highest id seen, and the ids below it not seen yet.

    Ids are handed out when a row is inserted, not when it commits: with several node processes writing the
    journal (``processes`` > 1, PostgreSQL) a batch can commit after a later one, leaving a gap that fills a
    moment later. A missing id is looked for again at each poll for :data:`GAP_WAIT_S` seconds; one that never
    comes (its batch rolled back) is then forgotten.
    """

    last_id: int
    gaps: dict[int, float] = field(default_factory=dict)  # id -> monotonic deadline


def follow_start(engine: Engine) -> FollowCursor:
    """A cursor at the current end of the journal: the next poll returns only rows committed after this."""
    from sqlalchemy import func

    with storage_errors("follow journal"), engine.connect() as connection:
        last = connection.execute(select(func.max(JOURNAL.c.id))).scalar_one()
    return FollowCursor(int(last or 0))


def follow_poll(engine: Engine, flt: JournalFilter, cursor: FollowCursor, now: float) -> list[Exchange]:
    """The rows matching ``flt`` committed since the last poll, in id order; advances ``cursor``. ``now`` is a
    monotonic clock reading, for the gaps' deadlines. No card-lookup window: new rows are found by id."""
    gaps = list(cursor.gaps)
    seen_where = JOURNAL.c.id > cursor.last_id
    if gaps:
        seen_where = or_(seen_where, JOURNAL.c.id.in_(gaps))
    with storage_errors("follow journal"), engine.connect() as connection:
        ids = list(connection.execute(
            select(JOURNAL.c.id).where(seen_where).order_by(JOURNAL.c.id).limit(FOLLOW_BATCH)).scalars())
        if not ids:
            _expire(cursor, now)
            return []
        new = [i for i in ids if i > cursor.last_id]
        found_gaps = [i for i in ids if i in cursor.gaps]
        top = new[-1] if new else cursor.last_id
        window = and_(JOURNAL.c.id > cursor.last_id, JOURNAL.c.id <= top)
        if found_gaps:
            window = or_(window, JOURNAL.c.id.in_(found_gaps))
        query = select(JOURNAL).where(window, *flt.conditions()).order_by(JOURNAL.c.id)
        rows = [_exchange(row) for row in connection.execute(query)]
    for i in found_gaps:
        del cursor.gaps[i]
    if top - cursor.last_id - len(new) <= MAX_GAPS:
        present = set(new)
        for missing in range(cursor.last_id + 1, top):
            if missing not in present:
                cursor.gaps[missing] = now + GAP_WAIT_S
    cursor.last_id = top
    _expire(cursor, now)
    return rows


def _expire(cursor: FollowCursor, now: float) -> None:
    for gap in [i for i, deadline in cursor.gaps.items() if deadline <= now]:
        del cursor.gaps[gap]
