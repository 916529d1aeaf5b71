"""Journal: response stored as its difference from the request; no index on pan_hash.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``response_delta`` (JSON: the response's added or changed fields, ``null`` for a request field it lacks)
replaces the whole ``response`` in new rows; rows already written keep their ``response`` and are read as
before. The ``pan_hash`` index goes: its random keys cost a page write per row at every commit, for a rare
operator query that is now bounded by ``received_at`` (switch.storage.journal.find_exchanges).

Downgrade writes every delta back as a whole ``response`` first, so no response is lost.
Self-contained (a migration never imports the live code): the delta rule is repeated here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000  # rows rewritten per statement on downgrade


def upgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("response_delta", sa.Text(), nullable=True))
    op.drop_index(op.f("ix_journal_pan_hash"), table_name="journal")


def downgrade() -> None:
    _restore_whole_responses()
    op.create_index(op.f("ix_journal_pan_hash"), "journal", ["pan_hash"])
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("response_delta")


def _restore_whole_responses() -> None:
    journal = sa.table(
        "journal", sa.column("id", sa.BigInteger()), sa.column("request", sa.Text()),
        sa.column("response", sa.Text()), sa.column("response_delta", sa.Text()),
    )
    connection = op.get_bind()
    last = None
    while True:
        query = sa.select(journal.c.id, journal.c.request, journal.c.response_delta).where(
            journal.c.response_delta.is_not(None)).order_by(journal.c.id).limit(_CHUNK)
        if last is not None:
            query = query.where(journal.c.id > last)
        rows = connection.execute(query).all()
        if not rows:
            return
        connection.execute(
            journal.update().where(journal.c.id == sa.bindparam("row_id")),
            [{"row_id": row.id, "response": json.dumps(_apply(json.loads(row.request), json.loads(row.response_delta)),
                                                      separators=(",", ":"))} for row in rows],
        )
        last = rows[-1].id


def _apply(request: dict[str, str], delta: dict[str, str | None]) -> dict[str, Any]:
    response = dict(request)
    for key, value in delta.items():
        if value is None:
            response.pop(key, None)
        else:
            response[key] = value

    def order(item: tuple[str, str]) -> tuple[int, int, str]:
        key = item[0]
        if key == "mti":
            return (0, 0, "")
        return (1, int(key), "") if key.isdecimal() else (2, 0, key)

    return dict(sorted(response.items(), key=order))
