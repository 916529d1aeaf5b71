"""Initial schema: journal, store-and-forward queue, routing reload audit.

Revision ID: 0001
Revises:
Create Date: 2026-05-01

Frozen copy of the models at this revision (a migration never imports the live models). Constraint and
index names follow switch.storage.models.NAMING_CONVENTION; ``op.f`` marks them as final, so
the convention (which Alembic applies from the target metadata) does not prefix them a second time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# INTEGER PRIMARY KEY is SQLite's rowid alias; BIGINT everywhere else.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("source_link", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(64), nullable=True),
        sa.Column("route", sa.String(128), nullable=True),
        sa.Column("mti_in", sa.String(4), nullable=False),
        sa.Column("mti_out", sa.String(4), nullable=True),
        sa.Column("processing_code", sa.String(6), nullable=True),
        sa.Column("stan", sa.String(12), nullable=True),
        sa.Column("rrn", sa.String(12), nullable=True),
        sa.Column("terminal_id", sa.String(16), nullable=True),
        sa.Column("pan_masked", sa.String(19), nullable=True),
        sa.Column("pan_hash", sa.String(64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("response_code", sa.String(3), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("responded_at", INSTANT, nullable=False),
        sa.Column("latency_us", sa.BigInteger(), nullable=False),
        sa.Column("upstream_us", sa.BigInteger(), nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
    )
    for column in ("trace_id", "stan", "rrn", "pan_hash", "received_at"):
        op.create_index(op.f(f"ix_journal_{column}"), "journal", [column])

    op.create_table(
        "saf_entries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("mti", sa.String(4), nullable=False),
        sa.Column("stan", sa.String(12), nullable=True),
        sa.Column("rrn", sa.String(12), nullable=True),
        sa.Column("pan_masked", sa.String(19), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("next_attempt_at", INSTANT, nullable=False),
        sa.Column("last_attempt_at", INSTANT, nullable=True),
        sa.Column("last_response_code", sa.String(3), nullable=True),
        sa.Column("expires_at", INSTANT, nullable=True),
        sa.Column("original_trace_id", sa.String(64), nullable=True),
        sa.Column("completed_at", INSTANT, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'acked', 'expired', 'failed')", name=op.f("ck_saf_entries_status")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_saf_entries_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saf_entries")),
    )
    op.create_index(
        op.f("ix_saf_entries_destination_status_id"), "saf_entries", ["destination", "status", "id"]
    )

    op.create_table(
        "route_reloads",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("old_digest", sa.String(128), nullable=True),
        sa.Column("new_digest", sa.String(128), nullable=True),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_reloads")),
    )
    op.create_index(op.f("ix_route_reloads_at"), "route_reloads", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_route_reloads_at"), table_name="route_reloads")
    op.drop_table("route_reloads")
    op.drop_index(op.f("ix_saf_entries_destination_status_id"), table_name="saf_entries")
    op.drop_table("saf_entries")
    for column in ("trace_id", "stan", "rrn", "pan_hash", "received_at"):
        op.drop_index(op.f(f"ix_journal_{column}"), table_name="journal")
    op.drop_table("journal")
