"""Store-and-forward queue: reversals and advices that must reach a destination, in order, across restarts.

Order is strict per destination: :meth:`SafStore.next_due` only ever offers the oldest pending entry of a
destination, and offers nothing while that entry is waiting for its next attempt, so a later reversal is
never sent before an earlier one (a reversal overtaking its own advice would be applied to nothing).
Every change is one statement in its own transaction, so SQLite's implicit transactions are enough and
two node threads cannot interleave half an update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, Row, Update, func, select

from switch.infra.db.errors import storage_errors
from switch.storage.errors import SafItemNotFoundError, SafStateError
from switch.storage.models import SAF, SAF_STATUSES


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
    status: str  # "pending" | "acked" | "expired" | "failed"
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_response_code: str | None
    expires_at: datetime | None
    original_trace_id: str | None
    completed_at: datetime | None = None  # when it stopped being pending


def _item(row: Row[Any]) -> SafItem:
    values = dict(row._mapping)
    values["payload"] = bytes(values["payload"])  # psycopg returns memoryview for bytea
    return SafItem(**values)


_PENDING = SAF.c.status == "pending"


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
    ) -> int:
        """Queue an entry, due at ``due_at`` (default: at once); returns its id (ids grow in enqueue order)."""
        return self.enqueue_many([dict(
            destination=destination, mti=mti, stan=stan, rrn=rrn, pan_masked=pan_masked, amount=amount,
            currency=currency, payload=payload, original_trace_id=original_trace_id, now=now, expires_at=expires_at,
            due_at=due_at)])[0]

    def enqueue_many(self, entries: list[dict[str, Any]]) -> list[int]:
        """Queue several entries (each with :meth:`enqueue`'s arguments) in one transaction: all or none."""
        with storage_errors("SAF enqueue"), self._engine.begin() as connection:
            return [int(connection.execute(SAF.insert().values(_pending(**e)).returning(SAF.c.id)).scalar_one())
                    for e in entries]

    def next_due(self, destination: str, now: datetime) -> SafItem | None:
        """The oldest pending entry of ``destination`` if it is due at ``now``; otherwise None."""
        query = (
            select(SAF).where(SAF.c.destination == destination, _PENDING).order_by(SAF.c.id).limit(1)
        )
        with storage_errors("SAF next due"), self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        item = _item(row)
        return item if item.next_attempt_at <= now else None

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

    def expire(self, now: datetime) -> int:
        """Pending entries whose ``expires_at`` is at or before ``now`` become "expired"; returns how many."""
        update = (
            SAF.update()
            .where(_PENDING, SAF.c.expires_at.is_not(None), SAF.c.expires_at <= now)
            .values(status="expired", completed_at=now)
        )
        return self._update_many(update, "SAF expire")

    def retry_now(self, destination: str | None, now: datetime) -> int:
        """Make pending entries (of one destination, or all) due at ``now``; returns how many moved."""
        update = SAF.update().where(_PENDING, SAF.c.next_attempt_at > now).values(next_attempt_at=now)
        if destination is not None:
            update = update.where(SAF.c.destination == destination)
        return self._update_many(update, "SAF retry")

    def list_items(
        self, destination: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[SafItem]:
        """Entries in queue order (oldest first), optionally of one destination and/or status."""
        if status is not None and status not in SAF_STATUSES:
            raise ValueError(f"SAF status {status!r} is not one of {SAF_STATUSES}")
        query = select(SAF).order_by(SAF.c.id).limit(limit)
        if destination is not None:
            query = query.where(SAF.c.destination == destination)
        if status is not None:
            query = query.where(SAF.c.status == status)
        with storage_errors("SAF list"), self._engine.connect() as connection:
            return [_item(row) for row in connection.execute(query)]

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
             expires_at: datetime | None, due_at: datetime | None = None) -> dict[str, Any]:
    return {
        "destination": destination, "mti": mti, "stan": stan, "rrn": rrn, "pan_masked": pan_masked,
        "amount": amount, "currency": currency, "payload": payload, "status": "pending",
        "attempts": 0, "created_at": now, "next_attempt_at": due_at or now, "last_attempt_at": None,
        "last_response_code": None, "expires_at": expires_at,
        "original_trace_id": original_trace_id, "completed_at": None,
    }
