"""The ATMP's tables in the node's database (SQLAlchemy Core), created by the node's migration 0006.

They live in the switch node's database (DESIGN section 7: "one database for the switch node (journal, SAF, ...,
terminals, settlement)") and so in its migrations; :mod:`switch.storage.models` adds them to the node's metadata so
that the test comparing the models with the migrations covers them. Constraint and index names follow the shared
naming convention.

Keys are LMK cryptograms and check values only: no column can hold a clear key or a key component. Note counts per
cassette are stored as DE 63 writes them (4 x 4 digits, cassettes 1..4).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from atmp.dispense import OutcomeKind, Source
from atmp.model import Owner, TerminalStatus
from switch.infra.db.types import NAMING_CONVENTION, UtcDateTime

METADATA = MetaData(naming_convention=NAMING_CONVENTION)
# 64-bit ids on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" aliases the rowid and autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


STATUSES = tuple(s.value for s in TerminalStatus)
OWNERS = tuple(o.value for o in Owner)
KINDS = tuple(k.value for k in OutcomeKind)
SOURCES = tuple(s.value for s in Source)
TOTALS_SOURCES = ("terminal", "operator")

TERMINALS = Table(
    "atm_terminals", METADATA,
    Column("id", String(8), primary_key=True),
    Column("location", String(40), nullable=False),
    Column("institution", String(11), nullable=False),
    Column("owner", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("device_status", String(4), nullable=False),  # DE 48 ST's 4 characters
    Column("surcharge", BigInteger, nullable=False),
    Column("low_cash_notes", Integer, nullable=False),
    Column("last_contact", UtcDateTime(), nullable=True),
    Column("rekey_due", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint(_one_of("status", STATUSES), name="status"),
    CheckConstraint(_one_of("owner", OWNERS), name="owner"),
)

CASSETTES = Table(
    "atm_cassettes", METADATA,
    Column("terminal_id", String(8), ForeignKey("atm_terminals.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("currency", String(3), nullable=False),
    Column("denomination", BigInteger, nullable=False),
    Column("loaded", Integer, nullable=False),
    Column("dispensed", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("retracted", Integer, nullable=False),
    CheckConstraint("position BETWEEN 1 AND 4", name="position"),
    CheckConstraint("denomination > 0", name="denomination"),
)

# One key set per terminal. previous_*: the working keys before the last confirmed exchange, usable for requests
# received before ``replaced_at`` and a short window after it; pending_*: from a 161 not yet confirmed by a 162.
KEYS = Table(
    "atm_keys", METADATA,
    Column("terminal_id", String(8), ForeignKey("atm_terminals.id"), primary_key=True),
    Column("tmk", String(64), nullable=True),
    Column("tmk_kcv", String(6), nullable=True),
    *(Column(f"{prefix}{name}", String(64 if not name.endswith("kcv") else 6), nullable=True)
      for prefix in ("", "previous_", "pending_") for name in ("tpk", "tpk_kcv", "tak", "tak_kcv")),
    Column("replaced_at", UtcDateTime(), nullable=True),
    Column("pending_at", UtcDateTime(), nullable=True),
    Column("dukpt_bdk", String(256), nullable=True),
    Column("pin_format", String(2), nullable=False),
    Column("mac", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# One row per withdrawal outcome, keyed by the ATMP's withdrawal key (terminal, STAN, DE 7 of the 0200). Written in
# the same transaction as the cassette counts it moves; ``version`` guards a replacement against a concurrent one.
DISPENSES = Table(
    "atm_dispenses", METADATA,
    Column("id", BigId, primary_key=True),
    Column("terminal_id", String(8), ForeignKey("atm_terminals.id"), nullable=False),
    Column("original_key", String(32), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("approved_amount", BigInteger, nullable=False),
    Column("dispensed_amount", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", String(4), nullable=False),
    Column("reason", String(4), nullable=True),
    Column("notes", String(16), nullable=False),
    Column("rejected", String(16), nullable=False),
    Column("retracted", String(16), nullable=False),
    Column("notes_derived", Boolean, nullable=False),
    Column("captured", Boolean, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("corrections", Integer, nullable=False),
    Column("ignored", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    CheckConstraint(_one_of("kind", KINDS), name="kind"),
    CheckConstraint(_one_of("source", SOURCES), name="source"),
    CheckConstraint("dispensed_amount >= 0 AND dispensed_amount <= approved_amount", name="amounts"),
    Index("ix_atm_dispenses_terminal_id_business_date", "terminal_id", "business_date"),
)

# Approved deposits at their final counted amount (a later count that finds less lowers it): the host's side of
# a terminal's deposit totals.
DEPOSITS = Table(
    "atm_deposits", METADATA,
    Column("id", BigId, primary_key=True),
    Column("terminal_id", String(8), ForeignKey("atm_terminals.id"), nullable=False),
    Column("original_key", String(32), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # The later counts that added to it (a terminal's 0220 advices of a higher count): JSON, the advice's own key
    # (terminal + STAN + DE 7) -> the amount it added, so that a repeat of an advice adds nothing.
    Column("adjustments", Text, nullable=False, server_default="{}"),
    CheckConstraint("amount >= 0", name="amount"),
    Index("ix_atm_deposits_terminal_id_business_date", "terminal_id", "business_date"),
)

# One row per replenishment: per cassette what the host expected, what was counted and what was loaded (JSON).
REPLENISHMENTS = Table(
    "atm_replenishments", METADATA,
    Column("id", BigId, primary_key=True),
    Column("terminal_id", String(8), ForeignKey("atm_terminals.id"), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("counts", Text, nullable=False),
    Column("balanced", Boolean, nullable=False),
)

# A terminal's totals of a business day (the latest report of the day stands) beside the host's.
TOTALS = Table(
    "atm_totals", METADATA,
    Column("id", BigId, primary_key=True),
    Column("terminal_id", String(8), ForeignKey("atm_terminals.id"), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("source", String(8), nullable=False),
    *(Column(f"{side}_{name}", BigInteger, nullable=False)
      for side in ("terminal", "host") for name in ("withdrawals", "withdrawal_amount", "deposits", "deposit_amount")),
    Column("agree", Boolean, nullable=False),
    Column("reports", Integer, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    CheckConstraint(_one_of("source", TOTALS_SOURCES), name="source"),
    Index("uq_atm_totals_terminal_id_business_date", "terminal_id", "business_date", unique=True),
)

# The audit trail. No foreign key: an event may name a terminal id the registry does not know (a refused message).
EVENTS = Table(
    "atm_events", METADATA,
    Column("id", BigId, primary_key=True),
    Column("terminal_id", String(8), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Index("ix_atm_events_terminal_id_id", "terminal_id", "id"),
)
