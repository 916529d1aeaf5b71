"""Transactions remember the cash advances a payment into a credit line repaid: ``cell_txns.cash_part``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A card deposit to a credit card account, or a transfer into one from a deposit account, lowers the line's cash
owed by the product's ``payment_allocation`` (processors.credit). Its reversal must owe that cash again, or the
cash-advance sub-limit would let the cardholder take the repaid cash a second time; the part is kept on the
payment's transaction (:attr:`processors.model.Txn.cash_part`) and lowered as reversals take it back.

Existing rows get 0 (server default): payments posted before this revision lowered no cash owed by a rule (the
cash owed was only capped at the new owed), so their reversals owe none back, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cell_txns") as batch:
        batch.add_column(sa.Column("cash_part", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("cell_txns") as batch:
        batch.drop_column("cash_part")
