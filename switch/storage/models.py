"""Typed SQLAlchemy 2 models of the switch node's database.

Every constraint and index gets its name from :data:`NAMING_CONVENTION` (Alembic's "naming conventions"
advice), so a migration can drop or alter one by a name that is the same on SQLite and PostgreSQL.
The migrations in ``migrations/versions`` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from atmp.storage.tables import METADATA as ATMP_METADATA
from switch.infra.db.types import NAMING_CONVENTION, UtcDateTime

# 64-bit ids on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" aliases the rowid and autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# pending: retried automatically; exception: given up on automatically (too many attempts or too old), waiting for an
# operator (``saf resend|cancel|expire``); the rest are over. "Unfinished" entries (pending or exception) of one
# original keep later entries for the same original waiting (switch.storage.saf).
SAF_STATUSES = ("pending", "exception", "acked", "expired", "failed", "cancelled")
SAF_UNFINISHED = ("pending", "exception")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class JournalEntry(Base):
    """One exchange: the request as received, the response as sent, timings, route and outcome.

    Card data only in protected form: ``pan_masked`` (first six / last four) and ``pan_hash`` (keyed
    HMAC for lookup). ``request`` is JSON text of the masked field dict. The response is stored as
    ``response_delta``: JSON of the fields that differ from the request's (added or changed), with ``null``
    for a request field the response lacks; ``response`` holds a whole response only for rows written
    before revision 0002 (or one a delta cannot express). Both NULL: no response.

    ``pan_hash`` is not indexed: card lookups are rare operator queries and go through ``received_at``
    (``switch.storage.journal.find_exchanges``), while an index on a random key costs a page write per row.
    """

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(64), index=True)
    node: Mapped[str] = mapped_column(String(64))
    source_link: Mapped[str] = mapped_column(String(64))
    destination: Mapped[str | None] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(128))
    mti_in: Mapped[str] = mapped_column(String(4))
    mti_out: Mapped[str | None] = mapped_column(String(4))
    processing_code: Mapped[str | None] = mapped_column(String(6))
    stan: Mapped[str | None] = mapped_column(String(12), index=True)
    rrn: Mapped[str | None] = mapped_column(String(12), index=True)
    terminal_id: Mapped[str | None] = mapped_column(String(16))
    pan_masked: Mapped[str | None] = mapped_column(String(19))
    pan_hash: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    response_code: Mapped[str | None] = mapped_column(String(3))
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    responded_at: Mapped[datetime]
    latency_us: Mapped[int] = mapped_column(BigInteger)
    upstream_us: Mapped[int | None] = mapped_column(BigInteger)
    request: Mapped[str] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    response_delta: Mapped[str | None] = mapped_column(Text)
    # The switch's own identity upstream (switch.exchange.identity); found by (source_link, stan) for a repeat or
    # reversal whose original the node no longer remembers.
    upstream_stan: Mapped[str | None] = mapped_column(String(12))
    upstream_time: Mapped[str | None] = mapped_column(String(10))
    upstream_rrn: Mapped[str | None] = mapped_column(String(12))
    settlement_date: Mapped[str | None] = mapped_column(String(4))


class SafEntry(Base):
    """A reversal or advice waiting for its destination's acknowledgement.

    ``payload`` is opaque to storage: the caller stores the message encrypted under its data key.
    ``original_key`` names the transaction the entry is about (its original's MTI, STAN, transmission time and
    acquirer: switch.exchange.reversal.original_key), so an advice, its reversal and their repeats keep their
    order while unrelated entries of the same destination go independently; hence the (original_key, id) index
    (the order holds across links) and the (destination, original_key, id) one beside the (destination, status,
    id) one.
    """

    __tablename__ = "saf_entries"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in SAF_STATUSES) + ")", name="status"
        ),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_saf_entries_destination_status_id", "destination", "status", "id"),
        Index("ix_saf_entries_destination_original_key_id", "destination", "original_key", "id"),
        Index("ix_saf_entries_original_key_id", "original_key", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    destination: Mapped[str] = mapped_column(String(64))
    mti: Mapped[str] = mapped_column(String(4))
    stan: Mapped[str | None] = mapped_column(String(12))
    rrn: Mapped[str | None] = mapped_column(String(12))
    pan_masked: Mapped[str | None] = mapped_column(String(19))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    last_response_code: Mapped[str | None] = mapped_column(String(3))
    expires_at: Mapped[datetime | None]
    original_trace_id: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[datetime | None]
    original_key: Mapped[str | None] = mapped_column(String(40))
    # ``attempts`` when an operator last resent the entry: the attempt limit counts from there.
    attempts_at_resend: Mapped[int] = mapped_column(Integer, server_default="0")


class SafActionEntry(Base):
    """An audit row per operator action on a SAF entry (``saf resend|cancel|expire``): who (the OS user), when,
    what, why, and the status before and after. Written in the same transaction as the change it records."""

    __tablename__ = "saf_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    old_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    # A resend the operator forced past a later entry for the same original that may have been delivered.
    forced: Mapped[bool] = mapped_column(Boolean, server_default=false())


class RouteReloadEntry(Base):
    """An audit row per routing-table reload attempt, applied or rejected."""

    __tablename__ = "route_reloads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(512))
    old_digest: Mapped[str | None] = mapped_column(String(128))
    new_digest: Mapped[str | None] = mapped_column(String(128))
    diff: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model (for executemany inserts and bulk updates without ORM overhead)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


# The ATMP's tables (atmp.storage.tables) are in the node's database too, created by its migration 0006: copied
# into this metadata so that the migrations' target and the test comparing models with migrations cover them.
for _atmp_table in ATMP_METADATA.sorted_tables:
    _atmp_table.to_metadata(Base.metadata)

JOURNAL = table_of(JournalEntry)
SAF = table_of(SafEntry)
ROUTE_RELOADS = table_of(RouteReloadEntry)
SAF_ACTIONS = table_of(SafActionEntry)
