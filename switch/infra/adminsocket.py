"""The server side of an admin channel: a Unix socket only this process's user (or root) can use.

Shared by the node's admin socket (:mod:`switch.ops.admin`) and each processor cell's (:mod:`processors.cell.admin`).
Access is guarded twice: the socket file is created mode 0600 in a folder created 0700, and every connecting
peer's uid is read with SO_PEERCRED (Linux, unix(7)) and refused unless it is ours or root's. What travels on
the socket is one JSON request and one JSON answer per line; the commands are the callers' business.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio


def peer_uid(sock: trio.socket.SocketType) -> int | None:
    """The uid of the process at the other end of a Unix socket (None where SO_PEERCRED is not available)."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def allowed(uid: int | None) -> bool:
    """Only our own user and root may use an admin socket."""
    return uid is not None and uid in (os.getuid(), 0)


def user_name(uid: int | None) -> str:
    """``uid`` for logs and audit records: "alice(uid 1000)", "uid 1234" or "unknown"."""
    if uid is None:
        return "unknown"
    try:
        return f"{pwd.getpwuid(uid).pw_name}(uid {uid})"
    except KeyError:
        return f"uid {uid}"


async def serve_admin_socket(path: Path, handler: Callable[[trio.SocketStream], Awaitable[object]], *,
                             refuse: Callable[[str], Exception],
                             task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``path`` until cancelled, running ``handler`` per connection; the socket file is removed on the
    way out. A socket file already at ``path`` is a leftover of a previous run and is replaced; anything else
    there (a symbolic link included) is never deleted: ``refuse(message)`` is raised instead."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.is_symlink() or (path.exists() and not stat.S_ISSOCK(path.stat().st_mode)):
        raise refuse(f"{path} exists and is not a socket; refusing to replace it")
    path.unlink(missing_ok=True)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket file is created 0600: no window where others could connect
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(16)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, [trio.SocketListener(sock)])
            task_status.started(path)
    finally:
        path.unlink(missing_ok=True)


class LineReader:
    """Newline-terminated requests from a stream, at most ``limit`` bytes waiting for their newline."""

    def __init__(self, stream: trio.abc.ReceiveStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._buf = b""

    async def next_line(self) -> bytes | None:
        """The next line without its newline; None at EOF, or once more than ``limit`` bytes arrived without
        one (the caller then closes the connection)."""
        while b"\n" not in self._buf:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                return None
            self._buf += chunk
            if len(self._buf) > self._limit:
                return None
        line, self._buf = self._buf.split(b"\n", 1)
        return line
