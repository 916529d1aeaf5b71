"""Drop the two secondary indexes whose keys arrive in random order: ``cell_txns.dup_key`` and
``cell_entries.account``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Every approved decision inserts a Txn and a customer-account Entry. The duplicate key (MTI class + STAN + DE 7 +
terminal + acquirer) and the account id of a new row land on a random leaf of their index, so each insert
dirtied a page of its own that SQLite wrote to the WAL at every group commit and again at the checkpoint:
about 7 us of the cell writer's CPU per decision for each index (``bench.cellstore``, 250 cards), more on a
larger database. Nothing reads through them: a running cell finds duplicates in memory
(:attr:`processors.state.CellState.txns_by_dup_key`, loaded by ``created_at``) and keeps balances on the
account rows; only the ledger check sums entries per account, a full scan either way. The indexes on sequential
keys (``created_at``, ``posting_id``) stay.

Downgrade recreates both indexes (a rebuild over existing rows).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column) of each dropped index; names follow switch.storage.models.NAMING_CONVENTION (ix_%(column_0_label)s).
DROPPED = (
    ("cell_txns", "dup_key"),
    ("cell_entries", "account"),
)


def upgrade() -> None:
    for table, column in DROPPED:
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)


def downgrade() -> None:
    for table, column in reversed(DROPPED):
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])
