"""Store-and-forward: order per original across links, and forced resends in the audit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

An entry now waits for an earlier unfinished entry for the same original on any link, not only on its own (a
pool's advice and reversal may be held on different links, issue 11): ``(original_key, id)`` is indexed for that
lookup. ``saf_actions.forced`` marks a ``saf resend --force``: a resend past a later entry for the same original
that may already have reached the destination.

Downgrade drops both; the forced audit rows stay, without the mark. Self-contained (a migration never imports
the live code).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_saf_entries_original_key_id"), "saf_entries", ["original_key", "id"])
    with op.batch_alter_table("saf_actions") as batch:
        batch.add_column(sa.Column("forced", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("saf_actions") as batch:
        batch.drop_column("forced")
    op.drop_index(op.f("ix_saf_entries_original_key_id"), table_name="saf_entries")
