"""Store-and-forward queue: reversals and advices that must reach a destination, across restarts.

Order is kept only where it matters: entries with the same ``original_key`` (an advice, the reversal of the same
original, their repeats) go out in ``id`` order, and :meth:`SafStore.next_due` never offers an entry while an
earlier one for the same original is unfinished (pending, or an exception waiting for an operator) on any link,
so a reversal never overtakes its own advice: not when a pool's links hold them on different links (the reversal
queued on the first link of a pool that was wholly down while the advice waits on another, issue 11), nor after
a route reload moved the card range elsewhere. Unrelated entries are independent: each is retried on
its own backoff, so one silent entry does not hold up its destination. An entry that runs out of attempts or
time becomes an "exception" (:meth:`SafStore.escalate`) that only an operator's :meth:`SafStore.act` (resend,
cancel, expire; audited in ``saf_actions``) moves on. :meth:`SafStore.take_due` claims several due entries of
a destination at once (the forwarder's window), never two for one original, nor one whose original has a message
on the wire, entries never sent before retries, with their attempts recorded before they leave;
:meth:`SafStore.settle` writes several answers in one transaction, and gives back the attempt of an entry the
link refused before it left.
Every change is one transaction, so two node threads (or the CLI) cannot interleave half an update.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Row,
    Select,
    Update,
    bindparam,
    case,
    exists,
    func,
    select,
)

from switch.infra.db.errors import storage_errors
from switch.storage.errors import SafItemNotFoundError, SafLaterEntryError, SafStateError
from switch.storage.models import SAF, SAF_ACTIONS, SAF_STATUSES, SAF_UNFINISHED

# What each operator action may start from, and where it leads (resend: back to automatic retries).
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "resend": (frozenset({"pending", "exception", "failed", "expired", "cancelled"}), "pending"),
    "cancel": (frozenset(SAF_UNFINISHED), "cancelled"),
    "expire": (frozenset(SAF_UNFINISHED), "expired"),
}


@dataclass(slots=True)
class SafItem:
    id: int
    destination: str
    mti: str
    stan: str | None
    rrn: str | None
    pan_masked: str | None
    amount: int | None
    currency: str | None
    payload: bytes = field(repr=False)  # opaque: the caller stores the message encrypted
    status: str  # one of SAF_STATUSES
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_response_code: str | None
    expires_at: datetime | None
    original_trace_id: str | None
    completed_at: datetime | None = None  # when it stopped being pending
    original_key: str | None = None  # the original it is about (switch.exchange.reversal.original_key)
    attempts_at_resend: int = 0


@dataclass(frozen=True, slots=True)
class SafAction:
    """An audit row of an operator's action on an entry."""

    entry_id: int
    at: datetime
    actor: str
    action: str
    reason: str
    old_status: str
    new_status: str
    forced: bool = False  # a resend forced past a later entry for the same original (saf resend --force)


@dataclass(frozen=True, slots=True)
class DestinationSummary:
    """A destination's unfinished entries: how many pending, how many exceptions, and the oldest one's age."""

    destination: str
    pending: int
    exceptions: int
    oldest_created_at: datetime


def _item(row: Row[Any]) -> SafItem:
    values = dict(row._mapping)
    values["payload"] = bytes(values["payload"])  # psycopg returns memoryview for bytea
    return SafItem(**values)


_PENDING = SAF.c.status == "pending"
_UNFINISHED = SAF.c.status.in_(SAF_UNFINISHED)
_EARLIER = SAF.alias("earlier")
# An earlier unfinished entry for the same original, on whichever link: the entry must wait for it. Not only on
# the same link: a pool's advice and reversal may be held on different links, and the one whose link comes back
# first must still go second (served by ix_saf_entries_original_key_id).
_BLOCKED = exists().where(
    _EARLIER.c.original_key == SAF.c.original_key, _EARLIER.c.status.in_(SAF_UNFINISHED), _EARLIER.c.id < SAF.c.id,
)


def _due(destination: str, now: datetime) -> Select[Any]:
    """Pending entries of ``destination`` due at ``now`` with no earlier unfinished entry for their original (on
    any link), oldest first."""
    return (select(SAF).where(SAF.c.destination == destination, _PENDING, SAF.c.next_attempt_at <= now, ~_BLOCKED)
            .order_by(SAF.c.id))


# Entries that may have reached their destination: acknowledged, or sent at least once (in flight, or unanswered).
_MAY_HAVE_LEFT = select(SAF.c.id, SAF.c.mti, SAF.c.status).where((SAF.c.status == "acked") | (SAF.c.attempts > 0))
# Listing order: what needs an operator first, then what is still being retried, then the finished.
_LIST_ORDER = case({"exception": 0, "pending": 1}, value=SAF.c.status, else_=2)


class SafStore:
    """The persistent SAF queue of one database. Thread-safe; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def enqueue(
        self,
        *,
        destination: str,
        mti: str,
        stan: str | None,
        rrn: str | None,
        pan_masked: str | None,
        amount: int | None,
        currency: str | None,
        payload: bytes,
        original_trace_id: str | None,
        now: datetime,
        expires_at: datetime | None,
        due_at: datetime | None = None,
        original_key: str | None = None,
    ) -> int:
        """Queue an entry, due at ``due_at`` (default: at once); returns its id (ids grow in enqueue order).
        Entries with the same ``original_key`` are delivered in id order; None: independent of every other."""
        return self.enqueue_many([dict(
            destination=destination, mti=mti, stan=stan, rrn=rrn, pan_masked=pan_masked, amount=amount,
            currency=currency, payload=payload, original_trace_id=original_trace_id, now=now, expires_at=expires_at,
            due_at=due_at, original_key=original_key)])[0]

    def enqueue_many(self, entries: list[dict[str, Any]]) -> list[int]:
        """Queue several entries (each with :meth:`enqueue`'s arguments) in one transaction: all or none."""
        with storage_errors("SAF enqueue"), self._engine.begin() as connection:
            return [int(connection.execute(SAF.insert().values(_pending(**e)).returning(SAF.c.id)).scalar_one())
                    for e in entries]

    def next_due(self, destination: str, now: datetime) -> SafItem | None:
        """The oldest pending entry of ``destination`` that is due at ``now`` and has no earlier unfinished entry
        for the same original (on any link); otherwise None."""
        with storage_errors("SAF next due"), self._engine.connect() as connection:
            row = connection.execute(_due(destination, now).limit(1)).first()
        return None if row is None else _item(row)

    def take_due(self, destination: str, now: datetime, limit: int, next_attempt: Callable[[int], datetime], *,
                 busy: Collection[int] = (), busy_originals: Collection[str] = (),
                 max_attempts: int | None = None) -> list[SafItem]:
        """Claim up to ``limit`` entries of ``destination`` to send now and record their attempt in the same
        transaction, before any is sent (a node that stops while they are in flight sends them as repeats next
        time): each gets ``attempts + 1``, ``last_attempt_at = now`` and ``next_attempt_at = next_attempt(attempts
        before this one)``, when it is offered again if still unanswered.

        Entries never sent come first, then the retries, oldest first within each: a few entries the
        destination keeps refusing cannot take the window from the rest. What is claimed is otherwise what
        :meth:`next_due` offers, so never two entries for one original (the later is blocked while the earlier
        is unfinished), except: entries in ``busy`` (in flight already); entries whose original is in
        ``busy_originals`` (a message for it is on the wire, perhaps one an operator cancelled or expired
        meanwhile, which no longer blocks in the queue: whatever follows it must not overtake it); and entries
        :meth:`escalate` is about to make exceptions (past ``expires_at``, or with ``max_attempts`` attempts
        since the last resend), which are not sent once more before an operator sees them. An entry an operator
        settled meanwhile is not claimed. Returned as they were read: their ``attempts`` counts the sends before
        this one (the first send goes with the queued MTI, a later one with the repeat MTI)."""
        if limit < 1:
            return []
        query = (_due(destination, now).where(SAF.c.expires_at.is_(None) | (SAF.c.expires_at > now))
                 .order_by(None).order_by(case((SAF.c.attempts == 0, 0), else_=1), SAF.c.id))
        if busy:
            query = query.where(SAF.c.id.not_in(list(busy)))
        if busy_originals:
            # NOT IN is never true for NULL: entries about no original are independent and stay offered.
            query = query.where(SAF.c.original_key.is_(None) | SAF.c.original_key.not_in(list(busy_originals)))
        if max_attempts:
            query = query.where(SAF.c.attempts - SAF.c.attempts_at_resend < max_attempts)
        taken: list[SafItem] = []
        with storage_errors("SAF take due"), self._engine.begin() as connection:
            for row in connection.execute(query.limit(limit)).all():
                item = _item(row)
                # Conditional on what was read: an operator's action in between wins, and the entry is not sent.
                claim = SAF.update().where(SAF.c.id == item.id, _PENDING, SAF.c.attempts == item.attempts).values(
                    attempts=item.attempts + 1, last_attempt_at=now, next_attempt_at=next_attempt(item.attempts))
                if connection.execute(claim).rowcount == 1:
                    taken.append(item)
        return taken

    def settle(self, now: datetime, acked: Sequence[tuple[int, str]] = (), failed: Sequence[int] = (),
               unsent: Sequence[SafItem] = ()) -> None:
        """Several entries' outcomes in one transaction: ``acked`` (id, response code) as :meth:`acknowledge`
        (a late answer to an entry an operator cancelled or expired still says the destination has it),
        ``failed`` ids as :meth:`fail` (only those still pending: an operator's decision stands). Unknown ids
        change nothing.

        ``unsent``: entries :meth:`take_due` claimed (as it returned them) that never left, because the link
        refused them before sending: each gets its attempt back, as it was before the claim (``attempts``,
        ``last_attempt_at``, ``next_attempt_at``), so a refusal neither brings it nearer to an exception nor
        makes its next send a repeat. Only an entry nothing else touched since the claim (still pending, with
        that attempt and the same resend) is given back: after an operator's action it stays as they left it."""
        if not acked and not failed and not unsent:
            return
        with storage_errors("SAF settle"), self._engine.begin() as connection:
            if acked:
                connection.execute(
                    SAF.update().where(SAF.c.id == bindparam("entry"), SAF.c.status != "acked")
                    .values(status="acked", last_response_code=bindparam("code"), completed_at=now),
                    [{"entry": item_id, "code": code} for item_id, code in acked])
            if failed:
                connection.execute(SAF.update().where(SAF.c.id.in_(list(failed)), _PENDING)
                                   .values(status="failed", last_response_code=None, completed_at=now))
            if unsent:
                connection.execute(
                    SAF.update().where(SAF.c.id == bindparam("entry"), _PENDING,
                                       SAF.c.attempts == bindparam("claimed"),
                                       SAF.c.attempts_at_resend == bindparam("resend"))
                    .values(attempts=bindparam("before"), last_attempt_at=bindparam("last"),
                            next_attempt_at=bindparam("due")),
                    [{"entry": i.id, "claimed": i.attempts + 1, "resend": i.attempts_at_resend, "before": i.attempts,
                      "last": i.last_attempt_at, "due": i.next_attempt_at} for i in unsent])

    def holder(self, destinations: Sequence[str], original_key: str) -> str | None:
        """Which of ``destinations`` (the links of one routing destination) holds an unfinished entry for
        ``original_key``, if any: a message for the same original must then queue behind it there rather than
        overtake it."""
        query = select(SAF.c.destination).where(SAF.c.destination.in_(list(destinations)),
                                                SAF.c.original_key == original_key, _UNFINISHED
                                                ).order_by(SAF.c.id).limit(1)
        with storage_errors("SAF holder"), self._engine.connect() as connection:
            found = connection.execute(query).scalar()
        return None if found is None else str(found)

    def holds(self, destination: str, original_key: str) -> bool:
        """Whether ``destination`` holds an unfinished entry for ``original_key``."""
        return self.holder([destination], original_key) is not None

    def get(self, item_id: int) -> SafItem | None:
        with storage_errors("SAF get"), self._engine.connect() as connection:
            row = connection.execute(select(SAF).where(SAF.c.id == item_id)).first()
        return None if row is None else _item(row)

    def destinations_with_pending(self) -> list[str]:
        query = select(SAF.c.destination).where(_PENDING).distinct().order_by(SAF.c.destination)
        with storage_errors("SAF destinations"), self._engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def record_attempt(self, item_id: int, now: datetime, next_attempt_at: datetime) -> None:
        """One more send of a pending entry; it is offered again at ``next_attempt_at``."""
        self._update_one(
            item_id,
            SAF.update()
            .where(SAF.c.id == item_id, _PENDING)
            .values(attempts=SAF.c.attempts + 1, last_attempt_at=now, next_attempt_at=next_attempt_at),
            "SAF record attempt",
        )

    def acknowledge(self, item_id: int, response_code: str, now: datetime) -> None:
        """The destination answered the entry: it leaves the queue. A late answer to an entry that had
        expired or failed still marks it acked (the destination has it); a repeated ack is ignored."""
        update = (
            SAF.update()
            .where(SAF.c.id == item_id, SAF.c.status != "acked")
            .values(status="acked", last_response_code=response_code, completed_at=now)
        )
        with storage_errors("SAF acknowledge"), self._engine.begin() as connection:
            if connection.execute(update).rowcount == 0 and not self._exists(connection, item_id):
                raise SafItemNotFoundError(item_id)

    def fail(self, item_id: int, now: datetime, response_code: str | None = None) -> None:
        """Give up on a pending entry (the destination refused it for good); later entries go on."""
        self._update_one(
            item_id,
            SAF.update()
            .where(SAF.c.id == item_id, _PENDING)
            .values(status="failed", last_response_code=response_code, completed_at=now),
            "SAF fail",
        )

    def escalate(self, now: datetime, max_attempts: int | None) -> list[SafItem]:
        """Pending entries that are past ``expires_at`` or have had ``max_attempts`` attempts (since an operator
        last resent them) become exceptions: no longer retried, for an operator. Returns them, as they now are.
        Nothing expires without an operator: an undelivered reversal is money."""
        due = SAF.c.expires_at.is_not(None) & (SAF.c.expires_at <= now)
        if max_attempts is not None:
            due = due | (SAF.c.attempts - SAF.c.attempts_at_resend >= max_attempts)
        with storage_errors("SAF escalate"), self._engine.begin() as connection:
            ids = list(connection.execute(select(SAF.c.id).where(_PENDING, due).order_by(SAF.c.id)).scalars())
            if not ids:
                return []
            connection.execute(SAF.update().where(SAF.c.id.in_(ids), _PENDING).values(status="exception"))
            rows = connection.execute(select(SAF).where(SAF.c.id.in_(ids)).order_by(SAF.c.id)).all()
        return [_item(row) for row in rows]

    def act(self, item_id: int, action: str, *, actor: str, reason: str, now: datetime,
            expires_at: datetime | None = None, force: bool = False) -> SafItem:
        """An operator's ``resend``, ``cancel`` or ``expire`` of one entry, with the audit row, in one transaction.

        resend: back to pending, due now, with a fresh attempt budget and ``expires_at``; cancel / expire: the
        entry is finished undelivered. An unknown id, an action its status does not allow, or an empty reason is
        an error and changes nothing.

        A resend is refused (:class:`SafLaterEntryError`) while a later entry for the same original may already
        have reached the destination (acknowledged, or sent at least once): re-opening an advice after its
        reversal went would post it after the reversal (issue 11). ``force`` resends anyway, and the audit row
        says it was forced."""
        if action not in ACTIONS:
            raise ValueError(f"unknown SAF action {action!r} (one of {', '.join(ACTIONS)})")
        if not reason.strip():
            raise ValueError("a reason is required")
        allowed, new_status = ACTIONS[action]
        with storage_errors(f"SAF {action}"), self._engine.begin() as connection:
            row = connection.execute(select(SAF).where(SAF.c.id == item_id)).first()
            if row is None:
                raise SafItemNotFoundError(item_id)
            item = _item(row)
            if item.status not in allowed:
                raise SafStateError(item_id, f"SAF {action}", item.status)
            if action == "resend" and not force and item.original_key is not None:
                later = connection.execute(_MAY_HAVE_LEFT.where(
                    SAF.c.original_key == item.original_key, SAF.c.id > item_id).order_by(SAF.c.id).limit(1)).first()
                if later is not None:
                    raise SafLaterEntryError(item_id, int(later.id), str(later.mti), str(later.status))
            if action == "resend":
                values: dict[str, Any] = dict(status="pending", next_attempt_at=now, completed_at=None,
                                              attempts_at_resend=item.attempts, expires_at=expires_at)
            else:
                values = dict(status=new_status, completed_at=now)
            # Conditional on the status just read: the forwarder may have acknowledged it meanwhile.
            update = SAF.update().where(SAF.c.id == item_id, SAF.c.status == item.status).values(**values)
            if connection.execute(update).rowcount != 1:
                raise SafStateError(item_id, f"SAF {action}", "changed meanwhile")
            connection.execute(SAF_ACTIONS.insert().values(
                entry_id=item_id, at=now, actor=actor, action=action, reason=reason, old_status=item.status,
                new_status=new_status, forced=force and action == "resend"))
            changed = connection.execute(select(SAF).where(SAF.c.id == item_id)).one()
        return _item(changed)

    def actions(self, item_id: int) -> list[SafAction]:
        """The audit rows of an entry, oldest first."""
        query = select(SAF_ACTIONS).where(SAF_ACTIONS.c.entry_id == item_id).order_by(SAF_ACTIONS.c.id)
        with storage_errors("SAF actions"), self._engine.connect() as connection:
            return [SafAction(**{k: v for k, v in row._mapping.items() if k != "id"})
                    for row in connection.execute(query)]

    def summary(self) -> list[DestinationSummary]:
        """Per destination with unfinished entries: pending and exception counts, and the oldest one's age."""
        query = (
            select(SAF.c.destination, func.sum(case((_PENDING, 1), else_=0)),
                   func.sum(case((SAF.c.status == "exception", 1), else_=0)), func.min(SAF.c.created_at))
            .where(_UNFINISHED).group_by(SAF.c.destination).order_by(SAF.c.destination)
        )
        with storage_errors("SAF summary"), self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [DestinationSummary(d, int(p), int(e), oldest) for d, p, e, oldest in rows]

    def destinations(self) -> list[str]:
        """Every destination that has ever had an entry."""
        query = select(SAF.c.destination).distinct().order_by(SAF.c.destination)
        with storage_errors("SAF destinations"), self._engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def retry_now(self, destination: str | None, now: datetime) -> int:
        """Make pending entries (of one destination, or all) due at ``now``; returns how many moved."""
        update = SAF.update().where(_PENDING, SAF.c.next_attempt_at > now).values(next_attempt_at=now)
        if destination is not None:
            update = update.where(SAF.c.destination == destination)
        return self._update_many(update, "SAF retry")

    def list_items(
        self, destination: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[SafItem]:
        """Entries, optionally of one destination and/or status: exceptions first, then pending, then the
        finished; oldest first within each."""
        return self.list_page(destination, status, limit)[0]

    def list_page(
        self, destination: str | None = None, status: str | None = None, limit: int = 100
    ) -> tuple[list[SafItem], int]:
        """:meth:`list_items` and how many more entries matched beyond ``limit``."""
        if status is not None and status not in SAF_STATUSES:
            raise ValueError(f"SAF status {status!r} is not one of {SAF_STATUSES}")
        query = select(SAF).order_by(_LIST_ORDER, SAF.c.id).limit(limit)
        count = select(func.count()).select_from(SAF)
        if destination is not None:
            query = query.where(SAF.c.destination == destination)
            count = count.where(SAF.c.destination == destination)
        if status is not None:
            query = query.where(SAF.c.status == status)
            count = count.where(SAF.c.status == status)
        with storage_errors("SAF list"), self._engine.connect() as connection:
            items = [_item(row) for row in connection.execute(query)]
            total = int(connection.execute(count).scalar_one())
        return items, max(0, total - len(items))

    def pending_count(self, destination: str | None = None) -> int:
        query = select(func.count()).select_from(SAF).where(_PENDING)
        if destination is not None:
            query = query.where(SAF.c.destination == destination)
        with storage_errors("SAF count"), self._engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    # -- helpers ------------------------------------------------------------------------------------
    def _update_one(self, item_id: int, update: Update, action: str) -> None:
        """Run an update of one pending entry; unknown or no longer pending ids are an error."""
        with storage_errors(action), self._engine.begin() as connection:
            if connection.execute(update).rowcount == 1:
                return
            if not self._exists(connection, item_id):
                raise SafItemNotFoundError(item_id)
        raise SafStateError(item_id, action)

    def _update_many(self, update: Update, action: str) -> int:
        with storage_errors(action), self._engine.begin() as connection:
            result: CursorResult[Any] = connection.execute(update)
            return result.rowcount

    @staticmethod
    def _exists(connection: Connection, item_id: int) -> bool:
        return connection.execute(select(SAF.c.id).where(SAF.c.id == item_id)).first() is not None


def _pending(*, destination: str, mti: str, stan: str | None, rrn: str | None, pan_masked: str | None,
             amount: int | None, currency: str | None, payload: bytes, original_trace_id: str | None, now: datetime,
             expires_at: datetime | None, due_at: datetime | None = None,
             original_key: str | None = None) -> dict[str, Any]:
    return {
        "destination": destination, "mti": mti, "stan": stan, "rrn": rrn, "pan_masked": pan_masked,
        "amount": amount, "currency": currency, "payload": payload, "status": "pending",
        "attempts": 0, "created_at": now, "next_attempt_at": due_at or now, "last_attempt_at": None,
        "last_response_code": None, "expires_at": expires_at,
        "original_trace_id": original_trace_id, "completed_at": None, "original_key": original_key,
        "attempts_at_resend": 0,
    }
