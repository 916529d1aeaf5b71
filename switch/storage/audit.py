"""Audit trail of routing-table reloads: who asked, from where, what changed, and whether it was applied.

A rejected reload is recorded too (with the reason), because "someone tried to load a bad table at 03:00"
is exactly what an operator looks for afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from switch.infra.db.errors import storage_errors
from switch.storage.models import ROUTE_RELOADS


@dataclass(slots=True, frozen=True)
class RouteReload:
    id: int
    at: datetime
    actor: str
    source: str
    old_digest: str | None
    new_digest: str | None
    diff: str
    outcome: str
    reason: str | None


def record_route_reload(
    engine: Engine,
    *,
    actor: str,
    source: str,
    old_digest: str | None,
    new_digest: str | None,
    diff: str,
    outcome: str,
    reason: str | None,
    at: datetime,
) -> int:
    """Store one reload attempt; returns its id."""
    values = {
        "actor": actor, "source": source, "old_digest": old_digest, "new_digest": new_digest,
        "diff": diff, "outcome": outcome, "reason": reason, "at": at,
    }
    with storage_errors("record route reload"), engine.begin() as connection:
        result = connection.execute(ROUTE_RELOADS.insert().values(values).returning(ROUTE_RELOADS.c.id))
        return int(result.scalar_one())


def list_route_reloads(engine: Engine, limit: int = 20) -> list[RouteReload]:
    """The latest reload attempts, newest first."""
    query = select(ROUTE_RELOADS).order_by(ROUTE_RELOADS.c.id.desc()).limit(limit)
    with storage_errors("list route reloads"), engine.connect() as connection:
        return [RouteReload(**row._mapping) for row in connection.execute(query)]
