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
import trio

from switch.infra.lockfile import LockHeldError, ProcessLock, holder, is_held
from switch.infra.procsup import ProcessSupervisor


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


# A child that holds its lifeline, writes its pid to argv[2], then sleeps (it is stopped by SIGTERM).
CHILD = textwrap.dedent("""
    import os, sys, time
    from switch.infra.lifeline import hold_lifeline
    hold_lifeline(int(sys.argv[1]), "test child")
    open(sys.argv[2], "w").write(str(os.getpid()))
    time.sleep(60)
""")


def _started_pid(pid_file: Path, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    return int(pid_file.read_text())


def test_a_child_dies_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    # A middle process (the "node") starts a child on its lifeline, then is killed with SIGKILL, which gives it
    # no chance to stop the child: the kernel closes the lifeline's write end and the child stops.
    pid_file = tmp_path / "child.pid"
    middle = textwrap.dedent(f"""
        import subprocess, sys, time
        from switch.infra.lifeline import Lifeline
        line = Lifeline()
        subprocess.Popen([sys.executable, "-c", {CHILD!r}, str(line.fd), {str(pid_file)!r}],
                         pass_fds=(line.fd,), start_new_session=True)
        time.sleep(60)
    """)
    node = subprocess.Popen([sys.executable, "-c", middle])
    try:
        child_pid = _started_pid(pid_file)
        assert _alive(child_pid)
    finally:
        node.send_signal(signal.SIGKILL)
        node.wait()
    assert _wait_gone(child_pid, 10), "the child outlived its supervisor"


def test_a_child_whose_supervisor_died_before_it_started_watching_stops_too(tmp_path: Path) -> None:
    # The supervisor exits right after starting the child, long before the child's interpreter has even imported
    # the lifeline: the end of file is waiting for it.
    pid_file = tmp_path / "child.pid"
    middle = textwrap.dedent(f"""
        import os, subprocess, sys
        from switch.infra.lifeline import Lifeline
        line = Lifeline()
        child = subprocess.Popen([sys.executable, "-c", {CHILD!r}, str(line.fd), {str(pid_file)!r}],
                                 pass_fds=(line.fd,), start_new_session=True)
        print(child.pid, flush=True)
        os._exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", middle], check=True, timeout=30, capture_output=True, text=True)
    child_pid = int(done.stdout)
    assert _wait_gone(child_pid, 10), "the child outlived its supervisor"


async def test_a_supervised_child_outlives_the_thread_that_started_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # trio forks children from a worker thread, which exits when idle (10 s; here 0.2 s). A parent-death signal
    # would fire then and stop every cell 10 s after its start; the lifeline belongs to the process.
    from trio._core import _thread_cache

    monkeypatch.setattr(_thread_cache, "IDLE_TIMEOUT", 0.2)
    pid_file = tmp_path / "child.pid"

    class OneChild(ProcessSupervisor):
        def command(self, index: int) -> list[str]:
            # The supervisor appends --lifeline FD; the child reads FD from argv[1].
            return [sys.executable, "-c", "import sys; sys.argv[1:] = [sys.argv[-1], sys.argv[1]]\n" + CHILD,
                    str(pid_file)]

    supervisor = OneChild({0: "child"}, backoff_s=0.1, backoff_max_s=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with trio.fail_after(30):
            while not pid_file.exists() or not pid_file.read_text():
                await trio.sleep(0.02)
        child_pid = int(pid_file.read_text())
        await trio.sleep(2.0)  # ten times the worker thread's idle timeout
        assert supervisor.pid(0) == child_pid and _alive(child_pid)
        assert supervisor.processes[0].starts == 1
        nursery.cancel_scope.cancel()
    assert _wait_gone(child_pid, 10)


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
