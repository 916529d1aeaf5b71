"""Cards remember their last EMV ATC and the status before a block; transactions their destination account and
the amount and currency as received.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-21

- ``cell_cards.last_atc``: the highest application transaction counter (EMV tag 9F36) of a verified ARQC, so a
  replayed cryptogram (ATC not above it) is declined.
- ``cell_cards.status_before_block``: what ``card.unblock`` restores (an inactive card stays inactive).
- ``cell_txns.to_account_id``: a transfer's destination, so its reversal takes back exactly that account.
- ``cell_txns.request_amount`` / ``request_currency``: DE 4 and DE 49 as received; a partial reversal's DE 95
  (ISO 8583:1987, in the transaction currency) is scaled to the account currency with them.

Existing rows get the defaults of :mod:`processors.model` (server defaults, so NOT NULL holds on old rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cell_cards") as batch:
        batch.add_column(sa.Column("last_atc", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("status_before_block", sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("cell_txns") as batch:
        batch.add_column(sa.Column("to_account_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("request_amount", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("request_currency", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("cell_txns") as batch:
        batch.drop_column("request_currency")
        batch.drop_column("request_amount")
        batch.drop_column("to_account_id")
    with op.batch_alter_table("cell_cards") as batch:
        batch.drop_column("status_before_block")
        batch.drop_column("last_atc")
