"""Journal: what each request was sent upstream under, and its settlement date.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

The switch numbers the requests it sends on a link itself (issue 12, switch.exchange.identity): the journal keeps
the source's STAN and RRN in ``stan`` and ``rrn`` and what was sent upstream in ``upstream_stan``,
``upstream_time`` (DE 7) and ``upstream_rrn``, so that a reversal or repeat whose original a restarted node no
longer remembers is sent with the identity the network saw. ``settlement_date`` is the exchange's DE 15 (the
network's settlement day, which moves at cutover).

Nullable columns, nothing back-filled; downgrade drops them. Self-contained (a migration never imports the live
code).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("upstream_stan", 12), ("upstream_time", 10), ("upstream_rrn", 12), ("settlement_date", 4))


def upgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        for name, _length in reversed(_COLUMNS):
            batch.drop_column(name)
