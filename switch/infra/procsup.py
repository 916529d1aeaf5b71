"""Keep a set of child processes running: start each, restart one that dies, stop them all when cancelled.

Used for the processor cells (processors.cell.supervisor) and for the node's extra processes (switch.runtime.workers).
Restarts back off exponentially (``backoff_s`` doubling up to ``backoff_max_s``), and the delay resets once a
process has stayed up for a while, so a process that crashes at start does not spin while one that crashed
once after hours comes back at once. Stopping is SIGTERM (the child finishes what is in flight), then SIGKILL
after ``STOP_GRACE_S``.

Every child gets the read end of the supervisor's lifeline (``--lifeline FD``) and ties its life to it
(switch.infra.lifeline), and runs in a session of its own: the terminal's Ctrl-C reaches the supervisor alone,
which stops its children when it is ready to (a node after draining, issue 11 item 3).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from switch.infra.lifeline import LIFELINE_OPTION, Lifeline
from switch.infra.lockfile import holder, is_held
from switch.model.errors import BulkheadError

log = logging.getLogger("bulkhead.supervisor")
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL after this long
STABLE_AFTER_S = 10.0  # up this long: the process has recovered, the next crash restarts it without delay growth


@dataclass
class ChildProcess:
    """What the supervisor knows about one child (for ``status``, ``links status`` and tests)."""

    index: int
    name: str
    state: str = "stopped"  # starting | running | restarting | stopped
    pid: int | None = None
    starts: int = 0
    last_exit: int | None = None  # exit code of the previous process (negative: killed by that signal)
    started_at: float | None = None

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "process": self.state, "pid": self.pid, "restarts": max(0, self.starts - 1),
                "last_exit": self.last_exit}


class ProcessSupervisor:
    """Subclasses say how to start child ``index`` (:meth:`command`) and may talk to it while it runs
    (:meth:`attached`)."""

    what = "process"  # how log lines name a child: "cell 3", "node process 1"
    pipes = False  # give each child a stdin and stdout pipe (a control channel)

    def __init__(self, names: dict[int, str], *, backoff_s: float, backoff_max_s: float,
                 stop_grace_s: float | None = None) -> None:
        self.processes = {index: ChildProcess(index, name) for index, name in names.items()}
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.stop_grace_s = stop_grace_s  # None: STOP_GRACE_S
        self._running: dict[int, trio.Process] = {}
        self._terminated: set[int] = set()  # pids already sent SIGTERM
        self._stopping = False

    def terminate(self) -> None:
        """SIGTERM every child now and restart none from here on (the owner is stopping: its children stop
        beside it rather than after it); cancelling :meth:`run` then waits for them as usual."""
        self._stopping = True
        for process in self._running.values():
            self._terminate(process)

    def _terminate(self, process: trio.Process) -> None:
        """SIGTERM, once per process: a second one means "stop now" to a node process or a cell."""
        if process.returncode is None and process.pid not in self._terminated:
            self._terminated.add(process.pid)
            process.send_signal(signal.SIGTERM)

    def command(self, index: int) -> list[str]:
        """The command line that starts child ``index`` (the supervisor adds ``--lifeline FD``)."""
        raise NotImplementedError

    async def attached(self, index: int, process: trio.Process) -> None:
        """Runs beside child ``index`` while it is up (cancelled when it ends); nothing by default."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep every child running until cancelled; then stop them (SIGTERM, then SIGKILL)."""
        lifeline = Lifeline()
        try:
            async with trio.open_nursery() as nursery:
                for index in self.processes:
                    nursery.start_soon(self._keep, index, lifeline.fd)
                task_status.started()
        finally:
            lifeline.close()  # every child has stopped (or is beyond our reach): nothing left to hold

    async def _keep(self, index: int, lifeline: int) -> None:
        info = self.processes[index]
        delay = self.backoff_s
        pipe = subprocess.PIPE if self.pipes else subprocess.DEVNULL
        while True:
            info.state = "starting"
            try:
                process = await trio.lowlevel.open_process(
                    [*self.command(index), LIFELINE_OPTION, str(lifeline)], stdin=pipe,
                    stdout=pipe if self.pipes else None, start_new_session=True, pass_fds=(lifeline,))
            except OSError as exc:
                log.error("%s %d: cannot start: %s; retrying in %.1fs", self.what, index, exc, delay)
                info.state = "restarting"
                await trio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            info.pid, info.started_at, info.state = process.pid, time.monotonic(), "running"
            info.starts += 1
            self._running[index] = process
            log.info("%s %d: started (pid %d)", self.what, index, process.pid)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.attached, index, process)
                    code = await process.wait()
                    nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await self._stop(index, process)
                self._running.pop(index, None)
                info.pid, info.last_exit = None, process.returncode
                info.state = "stopped"
            if self._stopping:
                await trio.sleep_forever()  # no restart: the owner is stopping and will cancel run()
            up_for = time.monotonic() - (info.started_at or 0)
            if up_for >= STABLE_AFTER_S:
                delay = self.backoff_s
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            log.warning("%s %d: process %d ended (%s) after %.1fs; restarting in %.1fs", self.what, index,
                        process.pid, how, up_for, delay)
            info.state = "restarting"
            await trio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _stop(self, index: int, process: trio.Process) -> None:
        """SIGTERM (the child answers what is in flight and exits), SIGKILL if it takes too long."""
        if process.returncode is not None:
            return
        self._terminate(process)
        grace = STOP_GRACE_S if self.stop_grace_s is None else self.stop_grace_s
        with trio.move_on_after(grace):
            await process.wait()
            log.info("%s %d: stopped (exit code %s)", self.what, index, process.returncode)
            return
        log.warning("%s %d: did not stop within %.0fs of SIGTERM; killing it", self.what, index, grace)
        process.kill()
        await process.wait()

    def pid(self, index: int) -> int | None:
        return self.processes[index].pid

    def running(self, index: int) -> trio.Process | None:
        return self._running.get(index)

    def status(self) -> list[dict[str, Any]]:
        return [p.status() for p in self.processes.values()]


class StrayProcessError(BulkheadError):
    """A process left by an earlier supervisor holds a child's lock and could not be stopped."""


async def stop_stray(lock: Path, what: str, is_stray: Callable[[int, str], bool], *,
                     grace_s: float = STOP_GRACE_S) -> None:
    """Before starting child ``what``: if a process left behind by an earlier supervisor still holds the
    child's ``lock``, see that it stops, so the new child never has to work around it.

    The caller holds its own node's lock, so no live node owns such a process. ``is_stray(pid, what_line)``
    recognises it from its command line (/proc) or, without /proc, from the lock file's line. A process whose
    supervisor died has already been told to stop by its lifeline, so it gets ``grace_s`` to finish in order
    first. Only then does it get SIGTERM (a second signal: stop at once), and SIGKILL 2 s later. A holder that
    is something else (a CLI command writing the cell's database) is left alone, and the child waits for the
    lock as usual. A stray process that does not go away raises :class:`StrayProcessError`."""
    if not is_held(lock):
        return
    found = holder(lock)
    if found.pid is None or not is_stray(found.pid, found.what):
        log.warning("%s: its lock %s is held by %s (%s); it starts when the lock is free", what, lock,
                    f"pid {found.pid}" if found.pid else "another process", found.what or "unknown")
        return
    log.warning("%s: a stray process (pid %d, left by a node that died) holds its lock %s; waiting %.0fs for it "
                "to stop", what, found.pid, lock, grace_s)
    for sig, wait_s in ((None, grace_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        if sig is not None:
            log.warning("%s: stray process %d still holds %s; sending %s", what, found.pid, lock, sig.name)
            try:
                os.kill(found.pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError as exc:
                raise StrayProcessError(f"{what}: stray process pid {found.pid} holds {lock} and cannot be "
                                        f"stopped ({exc.strerror}); stop it, then start the node") from None
        with trio.move_on_after(wait_s):
            while is_held(lock):
                await trio.sleep(0.05)
            log.info("%s: stray process %d stopped", what, found.pid)
            return
    raise StrayProcessError(f"{what}: stray process pid {found.pid} holds {lock} and did not stop; not started")


def command_line(pid: int) -> list[str] | None:
    """The arguments ``pid`` was started with, from /proc (Linux); None where /proc does not say."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None
