"""The admin channel: a Unix socket that only the node's user can open (mode 0600 in a 0700 folder, and the
peer's uid checked with SO_PEERCRED), carrying one JSON request and one JSON answer per line.

The CLI's commands that act on a running node (`routes reload`, `routes reload --dry-run` (``routes.diff``),
`links signon`, `saf retry`, ...) go through here. Every command returns ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``; a failed command leaves the node's state as it was.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import trio

from switch.infra.adminsocket import LineReader, allowed, peer_uid, serve_admin_socket, user_name
from switch.model.errors import BulkheadError
from switch.ops.status import saf_status
from switch.routing import RoutingTable
from switch.storage.saf import DestinationSummary

log = logging.getLogger("bulkhead.admin")

MAX_REQUEST = 64 * 1024


class AdminError(BulkheadError):
    pass


class AdminLink(Protocol):
    """A connector as the admin channel drives it."""

    @property
    def name(self) -> str: ...

    @property
    def state_name(self) -> str: ...

    async def signon(self) -> str | None: ...

    async def signoff(self) -> str | None: ...

    async def echo(self) -> str | None: ...

    async def rekey(self, key: str | None = None) -> tuple[bool, str | None]:
        """Ask the network for a new zone PIN key (``key="pin"``) or zone MAC key (``"mac"``; None: the link's
        choice): (installed, the answer's DE 39)."""
        ...


class AdminTarget(Protocol):
    """What the admin channel may see and do on a node."""

    @property
    def table(self) -> RoutingTable: ...

    def status(self) -> dict[str, Any]: ...

    async def saf_summary(self) -> list[DestinationSummary]: ...

    def connector(self, name: str) -> AdminLink | None: ...

    def connector_names(self) -> list[str]: ...

    async def reload_routes(self, path: Path | None, actor: str) -> dict[str, Any]:
        """Validate and swap the routing table (``path``: the configured one when None); :class:`BulkheadError`
        with the reason, and the old table stays, when the new one is refused."""
        ...

    async def preview_routes(self, path: Path | None) -> dict[str, Any]:
        """What :meth:`reload_routes` would change (``diff`` against the live table), changing nothing and
        auditing nothing; :class:`BulkheadError` with every problem of a broken table."""
        ...

    async def saf_retry(self, destination: str | None) -> int: ...

    async def atm_reload(self) -> dict[str, Any]:
        """Read the ATM terminal registry again (after `bulkhead atm ...` changed the database)."""
        ...


Command = Callable[[AdminTarget, dict[str, Any], str], Awaitable[Any]]


async def serve_admin(node: AdminTarget, path: Path, *,
                      task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the node's admin socket at ``path`` until cancelled."""
    await serve_admin_socket(path, lambda s: _handle(node, s), refuse=AdminError, task_status=task_status)


async def _handle(node: AdminTarget, stream: trio.SocketStream) -> None:
    try:
        uid = peer_uid(stream.socket)
        if not allowed(uid):
            log.warning("admin: refused connection from %s", user_name(uid))
            return
        actor = user_name(uid)
        line = await LineReader(stream, MAX_REQUEST).next_line()
        if line is None:
            return
        answer = await dispatch(node, line, actor)
        await stream.send_all(json.dumps(answer, default=str).encode() + b"\n")
    except Exception as exc:
        log.error("admin: connection failed: %s", type(exc).__name__)
    finally:
        await stream.aclose()


async def dispatch(node: AdminTarget, line: bytes, actor: str) -> dict[str, Any]:
    try:
        request = json.loads(line)
        command = COMMANDS[request["cmd"]]
        args = request.get("args") or {}
        if not isinstance(args, dict):
            raise AdminError("args must be an object")
    except (ValueError, KeyError, TypeError):
        return {"ok": False, "error": f"bad request (commands: {', '.join(sorted(COMMANDS))})"}
    except AdminError as exc:
        return {"ok": False, "error": str(exc)}
    try:
        return {"ok": True, "result": await command(node, args, actor)}
    except BulkheadError as exc:
        return {"ok": False, "error": str(exc)}


# -- commands --------------------------------------------------------------------------------------------
async def _status(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    """Everything `bulkhead status` shows (README, "Node status")."""
    status = node.status()
    saf = saf_status(await node.saf_summary())
    status["saf"] = saf
    status["saf_pending"] = sum(entry["pending"] for entry in saf)
    return status


async def _links_status(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    return node.status()["links"]


def _link(node: AdminTarget, args: dict[str, Any]) -> AdminLink:
    name = args.get("name")
    link = node.connector(name) if isinstance(name, str) else None
    if link is None:
        raise AdminError(f"no connector named {name!r} (connectors: {', '.join(sorted(node.connector_names()))})")
    return link


async def _signon(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    link = _link(node, args)
    log.info("admin: %s asked link %s to sign on", actor, link.name)
    return {"link": link.name, "response_code": await link.signon(), "state": link.state_name}


async def _signoff(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    link = _link(node, args)
    log.info("admin: %s asked link %s to sign off", actor, link.name)
    return {"link": link.name, "response_code": await link.signoff(), "state": link.state_name}


async def _echo(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    link = _link(node, args)
    start = trio.current_time()
    code = await link.echo()
    return {"link": link.name, "response_code": code, "ms": round((trio.current_time() - start) * 1000, 2)}


async def _rekey(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    link = _link(node, args)
    key = args.get("key")
    if key not in (None, "pin", "mac"):
        raise BulkheadError(f"key must be pin or mac, not {key!r}")
    log.info("admin: %s asked link %s for a new %s key", actor, link.name, key or "working")
    installed, code = await link.rekey(key)
    return {"link": link.name, "key": key, "response_code": code, "installed": installed}


async def _routes_show(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    table = node.table
    return {"source": table.source, "digest": table.digest, "table": table.describe()}


async def _routes_reload(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    return await node.reload_routes(Path(args["path"]) if args.get("path") else None, actor)


async def _routes_diff(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    return await node.preview_routes(Path(args["path"]) if args.get("path") else None)


async def _atm_reload(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    return await node.atm_reload()


async def _saf_retry(node: AdminTarget, args: dict[str, Any], actor: str) -> Any:
    return {"made_due": await node.saf_retry(args.get("destination"))}


COMMANDS: dict[str, Command] = {
    "status": _status,
    "links.status": _links_status,
    "links.signon": _signon,
    "links.signoff": _signoff,
    "links.echo": _echo,
    "links.rekey": _rekey,
    "routes.show": _routes_show,
    "routes.reload": _routes_reload,
    "atm.reload": _atm_reload,
    "routes.diff": _routes_diff,
    "saf.retry": _saf_retry,
}


def call(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Client side (blocking, for the CLI): send one command, return the node's answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise AdminError(f"no node is running with admin socket {path}") from None
        except PermissionError:
            raise AdminError(f"permission denied on {path}: only the node's user may use it") from None
        sock.sendall(json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    if not buf:
        raise AdminError("the node closed the admin connection without answering")
    answer: dict[str, Any] = json.loads(buf)
    return answer
