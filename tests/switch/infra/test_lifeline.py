"""A supervised process dies with its supervisor in every window (switch.infra.lifeline), and process locks name
their holder (switch.infra.lockfile)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from switch.infra.lifeline import EXIT_ORPHANED
from switch.infra.lockfile import LockHeldError, ProcessLock, holder, is_held

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not reaped by its reparented init yet) still answers kill 0: read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_a_child_whose_supervisor_is_already_gone_exits_at_once() -> None:
    # The pid given is not this process's parent: the supervisor died before the child could attach to it.
    code = textwrap.dedent("""
        from switch.infra.lifeline import die_with_parent
        die_with_parent(1, "test child")
        print("still running")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == EXIT_ORPHANED
    assert "still running" not in done.stdout
    assert "supervising process (pid 1) is gone" in done.stderr


@linux_only
def test_a_child_dies_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    # A middle process (the "node") starts a child that attaches to it and then sleeps; the middle is killed with
    # SIGKILL, which gives it no chance to stop the child. The kernel's parent-death signal stops the child.
    child = textwrap.dedent("""
        import os, sys, time
        from switch.infra.lifeline import die_with_parent
        die_with_parent(int(sys.argv[1]), "test child")
        open(sys.argv[2], "w").write(str(os.getpid()))
        time.sleep(60)
    """)
    pid_file = tmp_path / "child.pid"
    middle = textwrap.dedent(f"""
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", {child!r}, str(os.getpid()), {str(pid_file)!r}],
                         start_new_session=True)
        time.sleep(60)
    """)
    node = subprocess.Popen([sys.executable, "-c", middle])
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.02)
        child_pid = int(pid_file.read_text())
        assert _alive(child_pid)
    finally:
        node.send_signal(signal.SIGKILL)
        node.wait()
    assert _wait_gone(child_pid, 10), "the child outlived its supervisor"


def test_a_process_lock_names_its_holder_and_frees_on_release(tmp_path: Path) -> None:
    path = tmp_path / "var" / "node.lock"
    first = ProcessLock(path, "node demo")
    first.acquire()
    try:
        assert is_held(path) and first.held
        assert holder(path).pid == os.getpid() and holder(path).what == "node demo"
        with pytest.raises(LockHeldError, match=rf"{path} is held by pid {os.getpid()} \(node demo\)"):
            ProcessLock(path, "node other").acquire()
    finally:
        first.release()
    assert not is_held(path) and not first.held
    second = ProcessLock(path, "node other")
    second.acquire()
    second.release()
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_a_lock_held_by_a_process_that_died_is_free(tmp_path: Path) -> None:
    # The kernel drops a flock with its process, however it dies: no stale lock after a SIGKILL.
    path = tmp_path / "cell.lock"
    code = textwrap.dedent(f"""
        import pathlib, time
        from switch.infra.lockfile import ProcessLock
        lock = ProcessLock(pathlib.Path({str(path)!r}), "cell process 0")
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        assert is_held(path) and holder(path).pid == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert not is_held(path)
