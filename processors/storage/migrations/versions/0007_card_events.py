"""ATM transactions: cards' audit events, the PIN change that set a card's PVV, mini statements from the postings.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09

- ``cell_card_events``: what happened to a card outside the ledger (:class:`processors.model.CardEvent`): a PIN
  change at an ATM (with the PVV it replaced, so that its reversal can put it back), that reversal, a capture by
  an ATM (0620 administrative advice), a captured card's release. Loaded for the transactions' retention window
  (``created_at`` is indexed for that; rows arrive in time order).
- ``cell_cards.pin_set_by``: the PIN change (its transaction id) that set the card's PVV; "" when a command set it.
  A PIN change's reversal restores the PVV before it only while the card still names it. Existing rows get "".
- ``ix_cell_postings_created_at``: a cell loads its accounts' newest postings of the retention window for mini
  statements (:func:`processors.storage.rows.load_statement_lines`). Postings are inserted in time order, so the
  index takes its keys at its right edge and costs the writer no random page per row (see migration 0003).

Downgrade drops them (the events are lost; the postings and the PVVs stay).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)
EVENTS = "cell_card_events"


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        EVENTS,
        _text("id"),
        _text("key"),
        _text("card_id"),
        _text("kind"),
        sa.Column("created_at", INSTANT, nullable=False),
        _text("terminal"),
        _text("txn_id", nullable=True),
        _text("detail"),
        _text("previous_pvv"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{EVENTS}")),
    )
    op.create_index(op.f(f"ix_{EVENTS}_created_at"), EVENTS, ["created_at"])
    with op.batch_alter_table("cell_cards") as batch:
        batch.add_column(sa.Column("pin_set_by", sa.String(), nullable=False, server_default=""))
    op.create_index(op.f("ix_cell_postings_created_at"), "cell_postings", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cell_postings_created_at"), table_name="cell_postings")
    with op.batch_alter_table("cell_cards") as batch:
        batch.drop_column("pin_set_by")
    op.drop_index(op.f(f"ix_{EVENTS}_created_at"), table_name=EVENTS)
    op.drop_table(EVENTS)
