"""The admin socket shared by the node and the cells: file modes, what it refuses to replace, line reading."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import trio
import trio.testing

from switch.infra.adminsocket import LineReader, allowed, peer_uid, serve_admin_socket
from switch.model.errors import BulkheadError


class Refused(BulkheadError):
    pass


async def _echo_uid(stream: trio.SocketStream) -> None:
    async with stream:
        await stream.send_all(f"{peer_uid(stream.socket)}\n".encode())


async def test_socket_is_private_replaces_a_stale_socket_and_is_removed_after(tmp_path: Path) -> None:
    path = tmp_path / "run" / "admin.sock"
    path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # left behind by a process that died
    stale.close()
    async with trio.open_nursery() as nursery:
        assert await nursery.start(lambda task_status: serve_admin_socket(
            path, _echo_uid, refuse=Refused, task_status=task_status)) == path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stream = await trio.open_unix_socket(str(path))
        async with stream:
            assert await LineReader(stream, 100).next_line() == str(os.getuid()).encode()
        nursery.cancel_scope.cancel()
    assert not path.exists()


async def test_a_new_folder_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "admin.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_admin_socket(
            path, _echo_uid, refuse=Refused, task_status=task_status))
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", ["file", "symlink"])
async def test_anything_but_a_socket_at_the_path_is_refused_and_kept(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "admin.sock"
    if kind == "file":
        path.write_text("keep me")
    else:
        path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(Refused, match="exists and is not a socket"):
        await serve_admin_socket(path, _echo_uid, refuse=Refused)
    assert path.is_symlink() or path.read_text() == "keep me"


def test_only_our_user_and_root_are_allowed() -> None:
    assert allowed(os.getuid()) and allowed(0)
    assert not allowed(None)
    assert not allowed(os.getuid() + 12345)


async def test_lines_are_split_across_and_within_chunks_and_bounded() -> None:
    send, receive = trio.testing.memory_stream_pair()
    lines = LineReader(receive, 10)
    await send.send_all(b"one\ntw")
    assert await lines.next_line() == b"one"
    await send.send_all(b"o\nthree\n")
    assert await lines.next_line() == b"two"
    assert await lines.next_line() == b"three"
    await send.send_all(b"x" * 11)
    assert await lines.next_line() is None  # too long without a newline
    await send.aclose()
    assert await LineReader(receive, 10).next_line() is None  # EOF
