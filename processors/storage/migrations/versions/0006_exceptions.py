"""Advices posted on an assumption, or not posted, are listed for the back office: ``cell_exceptions``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

An advice (0120/0220) reports what already happened at a terminal, and the switch's store-and-forward takes any
answer but 91/96 as delivered: a cell that declined one for a business reason lost the money. The cell now posts
it and records why the back office should look (a completion above its authorization's tolerance, an amount
converted at the cell's own rate, an account type the card does not have, an unusable DE 28, or a format error
that kept it from being posted): :class:`processors.model.ExceptionItem`. The open ones are loaded with the
cell's state (``status`` is indexed for that); an operator lists and resolves them.

Downgrade drops the table (the exceptions recorded are lost; the postings they describe stay).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)
TABLE = "cell_exceptions"


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        TABLE,
        _text("id"),
        _text("kind"),
        _text("txn_id"),
        _text("card_id", nullable=True),
        _text("account_id", nullable=True),
        _text("mti"),
        _text("stan"),
        _text("rrn"),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        _text("currency"),
        _text("detail"),
        sa.Column("created_at", INSTANT, nullable=False),
        _text("status"),
        sa.Column("resolved_at", INSTANT, nullable=True),
        _text("resolution"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_status"), TABLE, ["status"])


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{TABLE}_status"), table_name=TABLE)
    op.drop_table(TABLE)
