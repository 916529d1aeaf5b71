"""The ATMP's tables: terminal registry, cassettes, key sets, dispense outcomes, deposits, replenishments, terminal
totals and the audit trail (issue 13; the live definitions are :mod:`atmp.storage.tables`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

New tables only; downgrade drops them (and with them every terminal, key cryptogram and cash record: export what
you need first). Keys are stored as LMK cryptograms and check values only. Self-contained (a migration never
imports the live code).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INSTANT = sa.DateTime(timezone=True)
TABLES = ("atm_events", "atm_totals", "atm_replenishments", "atm_deposits", "atm_dispenses", "atm_keys",
          "atm_cassettes", "atm_terminals")  # in the order they are dropped


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["terminal_id"], ["atm_terminals.id"],
                                   name=op.f(f"fk_{table}_terminal_id_atm_terminals"))


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def upgrade() -> None:
    op.create_table(
        "atm_terminals",
        sa.Column("id", sa.String(8), nullable=False),
        sa.Column("location", sa.String(40), nullable=False),
        sa.Column("institution", sa.String(11), nullable=False),
        sa.Column("owner", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("device_status", sa.String(4), nullable=False),
        sa.Column("surcharge", sa.BigInteger(), nullable=False),
        sa.Column("low_cash_notes", sa.Integer(), nullable=False),
        sa.Column("last_contact", INSTANT, nullable=True),
        sa.Column("rekey_due", sa.Boolean(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        _check("atm_terminals", "status", _one_of("status", ("in_service", "out_of_service", "supervisor", "closed"))),
        _check("atm_terminals", "owner", _one_of("owner", ("own", "partner"))),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm_terminals")),
    )
    op.create_table(
        "atm_cassettes",
        sa.Column("terminal_id", sa.String(8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("denomination", sa.BigInteger(), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("dispensed", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("retracted", sa.Integer(), nullable=False),
        _check("atm_cassettes", "position", "position BETWEEN 1 AND 4"),
        _check("atm_cassettes", "denomination", "denomination > 0"),
        _fk("atm_cassettes"),
        sa.PrimaryKeyConstraint("terminal_id", "position", name=op.f("pk_atm_cassettes")),
    )
    key_columns = [sa.Column(f"{prefix}{name}", sa.String(6 if name.endswith("kcv") else 64), nullable=True)
                   for prefix in ("", "previous_", "pending_") for name in ("tpk", "tpk_kcv", "tak", "tak_kcv")]
    op.create_table(
        "atm_keys",
        sa.Column("terminal_id", sa.String(8), nullable=False),
        sa.Column("tmk", sa.String(64), nullable=True),
        sa.Column("tmk_kcv", sa.String(6), nullable=True),
        *key_columns,
        sa.Column("replaced_at", INSTANT, nullable=True),
        sa.Column("pending_at", INSTANT, nullable=True),
        sa.Column("dukpt_bdk", sa.String(256), nullable=True),
        sa.Column("pin_format", sa.String(2), nullable=False),
        sa.Column("mac", sa.Boolean(), nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        _fk("atm_keys"),
        sa.PrimaryKeyConstraint("terminal_id", name=op.f("pk_atm_keys")),
    )
    op.create_table(
        "atm_dispenses",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("terminal_id", sa.String(8), nullable=False),
        sa.Column("original_key", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("approved_amount", sa.BigInteger(), nullable=False),
        sa.Column("dispensed_amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(4), nullable=False),
        sa.Column("reason", sa.String(4), nullable=True),
        sa.Column("notes", sa.String(16), nullable=False),
        sa.Column("rejected", sa.String(16), nullable=False),
        sa.Column("retracted", sa.String(16), nullable=False),
        sa.Column("notes_derived", sa.Boolean(), nullable=False),
        sa.Column("captured", sa.Boolean(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _check("atm_dispenses", "kind", _one_of("kind", ("dispensed", "partial", "none", "retracted", "assumed"))),
        _check("atm_dispenses", "source", _one_of("source", ("0220", "0420", "host"))),
        _check("atm_dispenses", "amounts", "dispensed_amount >= 0 AND dispensed_amount <= approved_amount"),
        _fk("atm_dispenses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm_dispenses")),
        sa.UniqueConstraint("original_key", name=op.f("uq_atm_dispenses_original_key")),
    )
    op.create_index(op.f("ix_atm_dispenses_terminal_id_business_date"), "atm_dispenses",
                    ["terminal_id", "business_date"])
    op.create_table(
        "atm_deposits",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("terminal_id", sa.String(8), nullable=False),
        sa.Column("original_key", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("adjustments", sa.Text(), server_default="{}", nullable=False),
        _check("atm_deposits", "amount", "amount >= 0"),
        _fk("atm_deposits"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm_deposits")),
        sa.UniqueConstraint("original_key", name=op.f("uq_atm_deposits_original_key")),
    )
    op.create_index(op.f("ix_atm_deposits_terminal_id_business_date"), "atm_deposits",
                    ["terminal_id", "business_date"])
    op.create_table(
        "atm_replenishments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("terminal_id", sa.String(8), nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("balanced", sa.Boolean(), nullable=False),
        _fk("atm_replenishments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm_replenishments")),
    )
    op.create_index(op.f("ix_atm_replenishments_terminal_id"), "atm_replenishments", ["terminal_id"])
    totals_columns = [sa.Column(f"{side}_{name}", sa.BigInteger(), nullable=False) for side in ("terminal", "host")
                      for name in ("withdrawals", "withdrawal_amount", "deposits", "deposit_amount")]
    op.create_table(
        "atm_totals",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("terminal_id", sa.String(8), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        *totals_columns,
        sa.Column("agree", sa.Boolean(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("recorded_at", INSTANT, nullable=False),
        _check("atm_totals", "source", _one_of("source", ("terminal", "operator"))),
        _fk("atm_totals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm_totals")),
    )
    op.create_index(op.f("uq_atm_totals_terminal_id_business_date"), "atm_totals", ["terminal_id", "business_date"],
                    unique=True)
    op.create_table(
        "atm_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("terminal_id", sa.String(8), nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm_events")),
    )
    op.create_index(op.f("ix_atm_events_terminal_id_id"), "atm_events", ["terminal_id", "id"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
