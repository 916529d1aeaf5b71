"""Store-and-forward: order per original, an "exception" state for the operator, and an audit of operator actions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

``saf_entries.original_key`` names the transaction an entry is about, so only entries for the same original keep
their order (an advice before its reversal, a repeat after its first); the status column widens for
"exception" and "cancelled"; ``attempts_at_resend`` lets an operator's resend start a fresh attempt budget.
``saf_actions`` records each ``saf resend|cancel|expire``.

Entries queued before this revision have no key: they are independent of each other, as nothing in them says
which original they belong to without opening the sealed payload (which needs the node's data key).

Downgrade: the old schema knows neither state, so an entry in "exception" goes back to "pending" (retried
again, as before) and a "cancelled" one to "failed" (given up on); the audit rows are dropped. An exception moved
back to pending loses its ``expires_at``: most exceptions are there because they are past it, and the older
forwarder marks a pending entry past ``expires_at`` "expired" at its first sweep, which would give up an
undelivered reversal without anyone deciding to (issue 11). Without one it is retried until acknowledged.
Self-contained (a migration never imports the live code).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INSTANT = sa.DateTime(timezone=True)
_NEW = "status IN ('pending', 'exception', 'acked', 'expired', 'failed', 'cancelled')"
_OLD = "status IN ('pending', 'acked', 'expired', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("saf_entries") as batch:
        batch.drop_constraint(op.f("ck_saf_entries_status"), type_="check")
        batch.alter_column("status", existing_type=sa.String(8), type_=sa.String(16), existing_nullable=False)
        batch.add_column(sa.Column("original_key", sa.String(40), nullable=True))
        batch.add_column(sa.Column("attempts_at_resend", sa.Integer(), server_default="0", nullable=False))
        batch.create_check_constraint(op.f("ck_saf_entries_status"), _NEW)
    op.create_index(op.f("ix_saf_entries_destination_original_key_id"), "saf_entries",
                    ["destination", "original_key", "id"])
    op.create_table(
        "saf_actions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("old_status", sa.String(16), nullable=False),
        sa.Column("new_status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saf_actions")),
    )
    op.create_index(op.f("ix_saf_actions_entry_id"), "saf_actions", ["entry_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_saf_actions_entry_id"), table_name="saf_actions")
    op.drop_table("saf_actions")
    entries = sa.table("saf_entries", sa.column("status", sa.String(16)), sa.column("expires_at", INSTANT))
    op.execute(entries.update().where(entries.c.status == "exception").values(status="pending", expires_at=None))
    op.execute(entries.update().where(entries.c.status == "cancelled").values(status="failed"))
    op.drop_index(op.f("ix_saf_entries_destination_original_key_id"), table_name="saf_entries")
    with op.batch_alter_table("saf_entries") as batch:
        batch.drop_constraint(op.f("ck_saf_entries_status"), type_="check")
        batch.drop_column("attempts_at_resend")
        batch.drop_column("original_key")
        batch.alter_column("status", existing_type=sa.String(16), type_=sa.String(8), existing_nullable=False)
        batch.create_check_constraint(op.f("ck_saf_entries_status"), _OLD)
