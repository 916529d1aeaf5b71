"""Initial schema of a processor cell's database: every row type of processors.model.

Revision ID: 0001
Revises:
Create Date: 2026-05-20

Frozen copy of processors.storage.tables at this revision (a migration never imports the live tables).
Constraint and index names follow switch.storage.models.NAMING_CONVENTION; ``op.f`` marks them as final.
Money and counters are BIGINT (minor units), instants ``timestamp with time zone`` (naive UTC text on SQLite),
dict fields JSON, enums their string value. No foreign keys: see processors.storage.tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)
# Secondary indexes: (table, column).
INDEXES = (
    ("cell_cards", "pan_hash"),
    ("cell_holds", "status"),
    ("cell_txns", "dup_key"),
    ("cell_txns", "created_at"),
    ("cell_entries", "account"),
    ("cell_entries", "posting_id"),
)


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _big(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "cell_sequences",
        _text("name"),
        _big("value"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cell_sequences")),
    )
    op.create_table(
        "cell_customers",
        _text("id"),
        _big("cell"),
        _text("name"),
        _text("external_ref"),
        _text("status"),
        sa.Column("created_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_customers")),
    )
    op.create_table(
        "cell_credit_lines",
        _text("id"),
        _text("customer_id"),
        _text("currency"),
        _big("limit"),
        _big("cash_limit"),
        _big("owed"),
        _big("cash_owed"),
        _big("held"),
        _big("cash_held"),
        _text("status"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_credit_lines")),
    )
    op.create_table(
        "cell_accounts",
        _text("id"),
        _text("customer_id"),
        _text("kind"),
        _text("currency"),
        _text("product"),
        _big("ledger_balance"),
        _big("held"),
        _text("status"),
        _text("credit_line_id", nullable=True),
        sa.Column("pricing", sa.JSON(), nullable=False),
        sa.Column("opened_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_accounts")),
    )
    op.create_table(
        "cell_cards",
        _text("id"),
        _text("pan_hash"),
        _text("last4"),
        _text("bin"),
        sa.Column("pan_sealed", sa.LargeBinary(), nullable=False),
        _text("customer_id"),
        _text("product"),
        _text("account_id"),
        sa.Column("accounts", sa.JSON(), nullable=False),
        _text("status"),
        _text("status_reason"),
        _text("expiry"),
        _text("psn"),
        _text("service_code"),
        _big("pvki"),
        _text("pvv"),
        _big("pin_tries"),
        sa.Column("limits", sa.JSON(), nullable=False),
        _text("replaces", nullable=True),
        sa.Column("issued_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_cards")),
    )
    op.create_table(
        "cell_holds",
        _text("id"),
        _text("card_id"),
        _text("account_id"),
        _text("credit_line_id", nullable=True),
        _text("txn_id"),
        _big("amount"),
        _text("currency"),
        sa.Column("cash", sa.Boolean(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("expires_at", INSTANT, nullable=False),
        _text("status"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_holds")),
    )
    op.create_table(
        "cell_usage",
        _text("card_id"),
        sa.Column("day", sa.Date(), nullable=False),
        _text("channel"),
        _big("amount"),
        _big("count"),
        sa.PrimaryKeyConstraint("card_id", "day", "channel", name=op.f("pk_cell_usage")),
    )
    op.create_table(
        "cell_txns",
        _text("id"),
        _text("dup_key"),
        _text("mti"),
        _text("processing_code"),
        _text("txn_type"),
        _text("channel"),
        _text("card_id", nullable=True),
        _text("account_id", nullable=True),
        _big("amount"),
        _text("currency"),
        _big("fee"),
        _text("response_code"),
        _text("approval_code"),
        _text("stan"),
        _text("rrn"),
        _text("terminal"),
        _text("acquirer"),
        sa.Column("created_at", INSTANT, nullable=False),
        _text("status"),
        _text("decline_reason"),
        _text("original_id", nullable=True),
        _text("hold_id", nullable=True),
        _text("posting_id", nullable=True),
        _big("reversed_amount"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_txns")),
    )
    op.create_table(
        "cell_postings",
        _text("id"),
        _text("txn_id", nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        _text("description"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_postings")),
    )
    op.create_table(
        "cell_entries",
        _text("id"),
        _text("posting_id"),
        _text("account"),
        _big("amount"),
        _text("currency"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_entries")),
    )
    op.create_table(
        "cell_installment_plans",
        _text("id"),
        _text("credit_line_id"),
        _text("account_id"),
        _text("source_txn_id"),
        _text("currency"),
        _big("principal"),
        _big("count"),
        _big("fee"),
        _big("rate_bp"),
        _big("billed"),
        sa.Column("created_at", INSTANT, nullable=True),
        _text("status"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_installment_plans")),
    )
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    for table in (
        "cell_installment_plans",
        "cell_entries",
        "cell_postings",
        "cell_txns",
        "cell_usage",
        "cell_holds",
        "cell_cards",
        "cell_accounts",
        "cell_credit_lines",
        "cell_customers",
        "cell_sequences",
    ):
        op.drop_table(table)
