"""Reversals that arrive before their original are remembered: ``cell_early_reversals`` (issue 11).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

A reversal (0400/0420) whose original the cell has not seen - it overtook the original, or the switch's stand-in
advice is still in its store-and-forward queue - is stored with the decision that answers it, so that the
original or advice arriving later (even after a kill -9 and restart) is not posted: see
:class:`processors.model.EarlyReversal` and :mod:`processors.early`. Rows are deleted once past ``expires_at``
(the bank's ``reversal_retention_days``), which is indexed for that purge and for loading (its keys arrive in
time order, so the index costs the writer no random page per insert).

Downgrade drops the table: remembered reversals are then forgotten (an original arriving afterwards is decided
as if no reversal had come, the behaviour before this revision).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)
TABLE = "cell_early_reversals"


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        TABLE,
        _text("id"),
        _text("original_key"),
        _text("alternate_key"),
        _text("pan_hash"),
        _text("mti"),
        _text("stan"),
        _text("transmitted"),
        _text("terminal"),
        _text("acquirer"),
        _text("rrn"),
        sa.Column("replacement", sa.BigInteger(), nullable=True),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("expires_at", INSTANT, nullable=False),
        _text("applied_to", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_expires_at"), TABLE, ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{TABLE}_expires_at"), table_name=TABLE)
    op.drop_table(TABLE)
