"""payShield-compatible host-protocol server on trio, exposing a :class:`~hsm.software.SoftwareHsm`.

``bulkhead hsm serve`` runs :func:`serve_hsm`. Any number of connections; on each, requests are executed in
the order received and their answers written in that order, so pipelined commands come back in sequence
(a payShield may answer out of order; clients match by header either way). All answers to the requests found
in one read go out in one write. Every malformed or unsupported command gets its Thales error code
(:mod:`hsm.thales.dispatch`); a connection error ends that connection only, never the server.

Logs carry peers, command counts and error codes, never message content.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from hsm.software import SoftwareHsm
from hsm.thales.dispatch import execute
from hsm.thales.framing import FrameBuffer, frame
from hsm.thales.profile import DEFAULT_PROFILE, Profile

log = logging.getLogger("bulkhead.hsm.server")

READ_SIZE = 65536


async def serve_hsm(
    hsm: SoftwareHsm,
    host: str,
    port: int,
    header_length: int,
    profile: Profile = DEFAULT_PROFILE,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` (0 picks a free port) and serve until cancelled; reports the bound port."""
    if not 0 <= header_length <= 16:
        raise ValueError("header_length must be 0 to 16")
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("HSM server listening on %s:%d (header length %d, profile %s)", host, bound, header_length,
             profile.name)
    task_status.started(bound)
    await trio.serve_listeners(partial(_serve_connection, hsm, header_length, profile), listeners)


async def _serve_connection(hsm: SoftwareHsm, header_length: int, profile: Profile,
                            stream: trio.SocketStream) -> None:
    peer = _peer(stream)
    handled = 0
    buffer = FrameBuffer()
    try:
        while data := await stream.receive_some(READ_SIZE):
            buffer.receive_data(data)
            answers = bytearray()
            while (message := buffer.next_message()) is not None:
                answers += frame(execute(hsm, message, header_length, profile))
                handled += 1
            if answers:
                await stream.send_all(answers)
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
