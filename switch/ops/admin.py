"""The admin channel: a Unix socket that only the node's user can open (mode 0600 in a 0700 folder, and the
peer's uid checked with SO_PEERCRED), carrying one JSON request and one JSON answer per line.

The CLI's commands that act on a running node (`routes reload`, `links signon`, `saf retry`, ...) go through
here. Every command returns ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``; a failed
command leaves the node's state as it was.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from switch.exchange.pipeline import now_utc
from switch.infra.adminsocket import LineReader, allowed, peer_uid, serve_admin_socket, user_name
from switch.model.errors import BulkheadError, ConfigError
from switch.routing import load_routes
from switch.storage.audit import record_route_reload

if TYPE_CHECKING:
    from switch.runtime.node import Node

log = logging.getLogger("bulkhead.admin")

MAX_REQUEST = 64 * 1024


class AdminError(BulkheadError):
    pass


Command = Callable[["Node", dict[str, Any], str], Awaitable[Any]]


async def serve_admin(node: Node, *, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the node's admin socket (``config.admin_socket``) until cancelled."""
    await serve_admin_socket(node.config.admin_socket, lambda s: _handle(node, s), refuse=AdminError,
                             task_status=task_status)


async def _handle(node: Node, stream: trio.SocketStream) -> None:
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


async def dispatch(node: Node, line: bytes, actor: str) -> dict[str, Any]:
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
async def _status(node: Node, args: dict[str, Any], actor: str) -> Any:
    status = node.status()
    status["saf_pending"] = await trio.to_thread.run_sync(node.saf.pending_count, None)
    return status


async def _links_status(node: Node, args: dict[str, Any], actor: str) -> Any:
    return node.status()["links"]


def _link(node: Node, args: dict[str, Any]) -> Any:
    name = args.get("name")
    if name not in node.outbound:
        raise AdminError(f"no connector named {name!r} (connectors: {', '.join(sorted(node.outbound))})")
    return node.outbound[name]


async def _signon(node: Node, args: dict[str, Any], actor: str) -> Any:
    link = _link(node, args)
    log.info("admin: %s asked link %s to sign on", actor, link.name)
    return {"link": link.name, "response_code": await link.signon(), "state": link.state.value}


async def _signoff(node: Node, args: dict[str, Any], actor: str) -> Any:
    link = _link(node, args)
    log.info("admin: %s asked link %s to sign off", actor, link.name)
    return {"link": link.name, "response_code": await link.signoff(), "state": link.state.value}


async def _echo(node: Node, args: dict[str, Any], actor: str) -> Any:
    link = _link(node, args)
    start = trio.current_time()
    code = await link.echo()
    return {"link": link.name, "response_code": code, "ms": round((trio.current_time() - start) * 1000, 2)}


async def _routes_show(node: Node, args: dict[str, Any], actor: str) -> Any:
    return {"source": node.table.source, "digest": node.table.digest, "table": node.table.describe()}


async def _routes_reload(node: Node, args: dict[str, Any], actor: str) -> Any:
    """Validate a new table off to the side, then swap the reference: in-flight exchanges keep the table they
    captured when they started. A broken table is rejected with its reason and the old one stays."""
    path = Path(args["path"]) if args.get("path") else node.config.routes
    async with node.reload_lock:  # one reload at a time: each is validated against the table it replaces
        old = node.table
        known = frozenset(node.outbound)
        try:
            new = await trio.to_thread.run_sync(lambda: load_routes(path, known_links=known))
        except ConfigError as exc:
            reason = str(exc)
            await trio.to_thread.run_sync(lambda: record_route_reload(
                node.engine, actor=actor, source=str(path), old_digest=old.digest, new_digest=None, diff="",
                outcome="rejected", reason=reason, at=now_utc()))
            log.warning("admin: %s: routing table %s rejected: %s", actor, path, exc)
            raise
        diff = old.diff(new)
        # Audit first, swap second: if the audit cannot be written the reload fails and the old table stays, so
        # the live table is never one that nobody can account for.
        await trio.to_thread.run_sync(lambda: record_route_reload(
            node.engine, actor=actor, source=str(path), old_digest=old.digest, new_digest=new.digest,
            diff="\n".join(diff), outcome="applied", reason=None, at=now_utc()))
        node.table = new
        # The node's other processes (switch.runtime.workers) switch to the same table before the command returns.
        processes = await node.workers.reload(path) if node.workers is not None else []
    log.info("admin: %s reloaded routes from %s (%s -> %s, %d changes)", actor, path, old.digest[:12],
             new.digest[:12], len(diff))
    return {"source": str(path), "old_digest": old.digest, "new_digest": new.digest, "diff": diff,
            "processes": processes}


async def _saf_retry(node: Node, args: dict[str, Any], actor: str) -> Any:
    from switch.runtime.safd import SafForwarder

    n = await SafForwarder(node).retry_now(args.get("destination"))
    return {"made_due": n}


COMMANDS: dict[str, Command] = {
    "status": _status,
    "links.status": _links_status,
    "links.signon": _signon,
    "links.signoff": _signoff,
    "links.echo": _echo,
    "routes.show": _routes_show,
    "routes.reload": _routes_reload,
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
