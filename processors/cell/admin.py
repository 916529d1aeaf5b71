"""The cell's admin socket: one JSON request per line, one JSON answer per line (like the node's, see
:mod:`switch.ops.admin`), on a Unix socket only the cell's user can open (0600, peer uid checked).

Requests are ``{"cmd": name, "args": {...}}``; answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. ``ping`` and ``stats`` are the host's own; every other name is a lifecycle
command of :class:`processors.commands.CellCommands`, run against the live state, and answered only once
its effects have committed through the same writer as the authorizations. A connection may carry many
requests, one after the other (the CLI's batch seeding uses that).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import trio

from switch.infra.adminsocket import LineReader, allowed, peer_uid, serve_admin_socket
from switch.model.errors import BulkheadError

log = logging.getLogger("bulkhead.cells.admin")
MAX_REQUEST = 1024 * 1024


class CellAdminError(BulkheadError):
    pass


class AdminHost(Protocol):
    """What the admin socket serves of a running cell (processors.cell.server.CellHost)."""

    @property
    def cell(self) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    async def run_command(self, name: str, args: dict[str, Any]) -> Any: ...


async def serve_cell_admin(host: AdminHost, path: Path, *,
                           task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``path`` until cancelled. The caller holds the cell's lock, so a socket file already there is
    a leftover of a cell that died, and is replaced (anything that is not a socket is refused)."""
    await serve_admin_socket(path, lambda s: _handle(host, s), refuse=CellAdminError, task_status=task_status)


async def _handle(host: AdminHost, stream: trio.SocketStream) -> None:
    try:
        uid = peer_uid(stream.socket)
        if not allowed(uid):
            log.warning("cell %d admin: refused connection from uid %s", host.cell, uid)
            return
        lines = LineReader(stream, MAX_REQUEST)
        while (line := await lines.next_line()) is not None:
            answer = await dispatch(host, line)
            await stream.send_all(json.dumps(answer, default=str).encode() + b"\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    except Exception as exc:
        log.error("cell %d admin: connection failed: %s", host.cell, type(exc).__name__)
    finally:
        await stream.aclose()


async def dispatch(host: AdminHost, line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
        name = request["cmd"]
        args = request.get("args") or {}
        if not isinstance(name, str) or not isinstance(args, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"ok": False, "error": 'bad request: expected {"cmd": "...", "args": {...}}'}
    try:
        if name == "ping":
            return {"ok": True, "result": {"cell": host.cell, "pid": os.getpid()}}
        if name == "stats":
            return {"ok": True, "result": host.stats()}
        return {"ok": True, "result": await host.run_command(name, args)}
    except BulkheadError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:
        # A bug, not bad input (that is a CommandError). Its text is not repeated: it could quote an argument,
        # and an argument may be a card number.
        log.error("cell %d admin: %s failed: %s", host.cell, name, type(exc).__name__)
        return {"ok": False, "error": f"{name}: internal error ({type(exc).__name__})"}
