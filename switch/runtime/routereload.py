"""A running node's routing table changes: reload (validated off to the side, audited, swapped atomically),
dry run, and an extra node process following the primary's reload. A mixin of :class:`switch.runtime.node.Node`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from switch.config import NodeConfig
from switch.exchange.journal import now_utc
from switch.model.errors import ConfigError
from switch.routing import RoutingTable, load_routes
from switch.storage.audit import record_route_reload

if TYPE_CHECKING:
    from switch.runtime.links.outbound import OutboundLink
    from switch.runtime.workers import WorkerSupervisor

log = logging.getLogger("bulkhead.node")


class RouteReloads:
    """See the module docstring."""

    if TYPE_CHECKING:
        config: NodeConfig
        table: RoutingTable
        reload_lock: trio.Lock
        outbound: dict[str, OutboundLink]
        engine: Any  # a SQLAlchemy engine (the node's database; SQLAlchemy is named in storage modules only)
        workers: WorkerSupervisor | None

    async def reload_routes(self, path: Path | None, actor: str) -> dict[str, Any]:
        """Validate a new table off to the side, then swap the reference: in-flight exchanges keep the table they
        captured when they started. A broken table is refused with its reason and the old one stays; every
        attempt is audited (who, when, the diff)."""
        source = path or self.config.routes
        async with self.reload_lock:  # one reload at a time: each is validated against the table it replaces
            old = self.table
            known = frozenset(self.outbound)
            try:
                new = await trio.to_thread.run_sync(lambda: load_routes(source, known_links=known))
            except ConfigError as exc:
                reason = str(exc)
                await trio.to_thread.run_sync(lambda: record_route_reload(
                    self.engine, actor=actor, source=str(source), old_digest=old.digest, new_digest=None, diff="",
                    outcome="rejected", reason=reason, at=now_utc()))
                log.warning("admin: %s: routing table %s rejected: %s", actor, source, exc)
                raise
            diff = old.diff(new)
            # Audit first, swap second: if the audit cannot be written the reload fails and the old table stays,
            # so the live table is never one that nobody can account for.
            await trio.to_thread.run_sync(lambda: record_route_reload(
                self.engine, actor=actor, source=str(source), old_digest=old.digest, new_digest=new.digest,
                diff="\n".join(diff), outcome="applied", reason=None, at=now_utc()))
            self.table = new
            # The node's other processes switch to the same table before the command returns.
            processes = await self.workers.reload(source) if self.workers is not None else []
        log.info("admin: %s reloaded routes from %s (%s -> %s, %d changes)", actor, source, old.digest[:12],
                 new.digest[:12], len(diff))
        return {"source": str(source), "old_digest": old.digest, "new_digest": new.digest, "diff": diff,
                "processes": processes}

    async def preview_routes(self, path: Path | None) -> dict[str, Any]:
        """What :meth:`reload_routes` would change, changing nothing: the new table is read and validated off to
        the side and compared with the live one; nothing is swapped and no audit row is written (a dry run is a
        question, not an attempt). A broken table raises its ConfigError, every problem listed."""
        source = path or self.config.routes
        live = self.table
        known = frozenset(self.outbound)
        new = await trio.to_thread.run_sync(lambda: load_routes(source, known_links=known))
        return {"source": str(source), "old_digest": live.digest, "new_digest": new.digest, "diff": live.diff(new),
                "dry_run": True}

    async def apply_routes(self, path: Path, digest: str) -> str:
        """An extra process follows the primary's reload: ``path`` as the primary validated and applied it."""
        async with self.reload_lock:
            table = await trio.to_thread.run_sync(lambda: load_routes(path, known_links=frozenset(self.outbound)))
            # A different digest means the file changed since the primary read it: this process must not run
            # another table than the primary's.
            if table.digest != digest:
                raise ValueError(f"{path} changed since the primary read it ({table.digest[:12]})")
            self.table = table
        return table.digest
