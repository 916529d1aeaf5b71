"""The cell's admin socket: one JSON request per line, one JSON answer per line (like the node's, see
:mod:`switch.admin`), on a Unix socket only the cell's user can open (0600, peer uid checked).

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
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from switch.admin import _peer_uid
from switch.errors import BulkheadError

if TYPE_CHECKING:
    from switch.cells.host import CellHost

log = logging.getLogger("bulkhead.cells.admin")
MAX_REQUEST = 1024 * 1024


class CellAdminError(BulkheadError):
    pass


async def serve_cell_admin(host: CellHost, path: Path, *,
                           task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``path`` until cancelled. The caller holds the cell's lock, so a socket file already there is
    a leftover of a cell that died, and is replaced (anything that is not a socket is refused)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.is_symlink() or (path.exists() and not stat.S_ISSOCK(path.stat().st_mode)):
        raise CellAdminError(f"{path} exists and is not a socket; refusing to replace it")
    path.unlink(missing_ok=True)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # created 0600: no window in which another user could connect
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(16)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, lambda s: _handle(host, s), [trio.SocketListener(sock)])
            task_status.started(path)
    finally:
        path.unlink(missing_ok=True)


async def _handle(host: CellHost, stream: trio.SocketStream) -> None:
    try:
        uid = _peer_uid(stream.socket)
        if uid is None or uid not in (os.getuid(), 0):
            log.warning("cell %d admin: refused connection from uid %s", host.cell, uid)
            return
        buf = b""
        while True:
            while b"\n" not in buf:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buf += chunk
                if len(buf) > MAX_REQUEST:
                    return
            line, buf = buf.split(b"\n", 1)
            answer = await dispatch(host, line)
            await stream.send_all(json.dumps(answer, default=str).encode() + b"\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    except Exception as exc:
        log.error("cell %d admin: connection failed: %s", host.cell, type(exc).__name__)
    finally:
        await stream.aclose()


async def dispatch(host: CellHost, line: bytes) -> dict[str, Any]:
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
