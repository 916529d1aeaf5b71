"""payShield-compatible host-protocol server on trio, exposing a :class:`~hsm.software.SoftwareHsm`.

``bulkhead hsm serve`` runs :func:`serve_hsm`. On each connection, requests are executed in the order received
and their answers written in that order, so pipelined commands come back in sequence (a payShield may answer
out of order; clients match by header either way). All answers to the requests found in one read go out in one
write. Every malformed or unsupported command gets its Thales error code (:mod:`hsm.thales.dispatch`); a
connection error ends that connection only, never the server.

Resource limits, so that idle or abusive peers cannot pile up: a connection on which nothing arrives, or to
which an answer cannot be written, for ``idle_timeout`` seconds is closed; at most ``max_connections`` are
served at once, and a connection beyond that is accepted and closed at once (the peer sees the close instead of
waiting in the listen backlog). Bulkhead's client reconnects a closed pool slot by itself, so the idle timeout
costs an idle pool only a reconnect.

Logs carry peers, command counts and error codes, never message content.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import partial

import trio

from hsm.software import SoftwareHsm
from hsm.thales.dispatch import execute
from hsm.thales.framing import FrameBuffer, frame
from hsm.thales.profile import DEFAULT_PROFILE, Profile

log = logging.getLogger("bulkhead.hsm.server")

READ_SIZE = 65536
DEFAULT_IDLE_TIMEOUT = 300.0
"""Seconds without a request (or without progress writing answers) before a connection is closed."""
DEFAULT_MAX_CONNECTIONS = 64
"""Connections served at once; Bulkhead's default (a payShield also caps its host connections)."""


@dataclass(frozen=True, slots=True)
class _Limits:
    idle_timeout: float
    connections: trio.CapacityLimiter


async def serve_hsm(
    hsm: SoftwareHsm,
    host: str,
    port: int,
    header_length: int,
    profile: Profile = DEFAULT_PROFILE,
    *,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` (0 picks a free port) and serve until cancelled; reports the bound port.

    ``idle_timeout`` in seconds (``None``: never); ``max_connections`` at least 1.
    """
    if not 0 <= header_length <= 16:
        raise ValueError("header_length must be 0 to 16")
    if idle_timeout is not None and not idle_timeout > 0:
        raise ValueError("idle_timeout must be positive, or None for no idle timeout")
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    limits = _Limits(math.inf if idle_timeout is None else idle_timeout, trio.CapacityLimiter(max_connections))
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("HSM server listening on %s:%d (header length %d, profile %s, idle timeout %s, at most %d "
             "connections)", host, bound, header_length, profile.name,
             "none" if idle_timeout is None else f"{idle_timeout}s", max_connections)
    task_status.started(bound)
    await trio.serve_listeners(partial(_admit, hsm, header_length, profile, limits), listeners)


async def _admit(hsm: SoftwareHsm, header_length: int, profile: Profile, limits: _Limits,
                 stream: trio.SocketStream) -> None:
    """Serve ``stream`` if the connection cap allows, else close it at once."""
    try:
        limits.connections.acquire_nowait()
    except trio.WouldBlock:
        log.warning("HSM client %s: refused, already serving %d connections", _peer(stream),
                    limits.connections.total_tokens)
        await trio.aclose_forcefully(stream)
        return
    try:
        await _serve_connection(hsm, header_length, profile, limits.idle_timeout, stream)
    finally:
        limits.connections.release()


async def _serve_connection(hsm: SoftwareHsm, header_length: int, profile: Profile, idle_timeout: float,
                            stream: trio.SocketStream) -> None:
    peer = _peer(stream)
    handled = 0
    buffer = FrameBuffer()
    try:
        while True:
            data = b""
            with trio.move_on_after(idle_timeout) as idle:
                data = await stream.receive_some(READ_SIZE)
            if idle.cancelled_caught:
                log.info("HSM client %s: idle for %ss, closing", peer, idle_timeout)
                break
            if not data:
                break
            buffer.receive_data(data)
            answers = bytearray()
            while (message := buffer.next_message()) is not None:
                answers += frame(execute(hsm, message, header_length, profile))
                handled += 1
            if answers:
                with trio.move_on_after(idle_timeout) as stuck:
                    await stream.send_all(answers)
                if stuck.cancelled_caught:
                    log.info("HSM client %s: not reading its answers for %ss, closing", peer, idle_timeout)
                    break
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        log.info("HSM client %s: connection error (%s)", peer, type(exc).__name__)
    except Exception as exc:  # one connection's failure must not stop the server
        log.error("HSM client %s: closing after unexpected %s", peer, type(exc).__name__)
    finally:
        log.info("HSM client %s: closed after %d commands (%d bytes unframed)", peer, handled, buffer.pending)
        await trio.aclose_forcefully(stream)


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
