"""The node's side of the cells: start every cell as its own OS process, restart one that dies, stop them
all when the node stops.

A cell is a separate process so that one cell's crash, hang or memory blow-up cannot touch the others or the
node (the bulkhead): the node only sees the ``cell-NN`` link go down and answers that cell's cards 91 until
the cell is back. Restarts back off exponentially (``restart_backoff_ms`` doubling up to
``restart_backoff_max_ms``), and the delay resets once a cell has stayed up for a while, so a cell that
crashes at start does not spin while a cell that crashed once after hours comes back at once.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import trio

from switch.cells.config import CellsConfig, check_catalogue

log = logging.getLogger("bulkhead.cells.supervisor")
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL after this long
STABLE_AFTER_S = 10.0  # a cell up this long has recovered: the next crash restarts it without delay growth


@dataclass
class CellProcess:
    """What the supervisor knows about one cell process (for ``links status``, ``status`` and tests)."""

    cell: int
    name: str
    state: str = "stopped"  # starting | running | restarting | stopped
    pid: int | None = None
    starts: int = 0
    last_exit: int | None = None  # exit code of the previous process (negative: killed by that signal)
    started_at: float | None = None

    def status(self) -> dict[str, Any]:
        return {"cell": self.cell, "name": self.name, "process": self.state, "pid": self.pid,
                "restarts": max(0, self.starts - 1), "last_exit": self.last_exit}


class CellSupervisor:
    def __init__(self, cells: CellsConfig, *, python: str = sys.executable) -> None:
        check_catalogue(cells)  # a bad catalogue is a configuration error now, not a crash loop later
        self.cells = cells
        self.python = python
        self.processes = {k: CellProcess(k, cells.name(k)) for k in range(cells.count)}
        self._running: dict[int, trio.Process] = {}

    def command(self, cell: int) -> list[str]:
        return [self.python, "-m", "switch.cells", "--conf", str(self.cells.node_file), "--cell", str(cell),
                "--watch-parent"]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep every cell running until cancelled; then stop them (SIGTERM, then SIGKILL)."""
        async with trio.open_nursery() as nursery:
            for cell in self.processes:
                nursery.start_soon(self._keep, cell)
            task_status.started()

    async def _keep(self, cell: int) -> None:
        info = self.processes[cell]
        delay = self.cells.restart_backoff_ms / 1000
        while True:
            info.state = "starting"
            try:
                process = await trio.lowlevel.open_process(self.command(cell), stdin=subprocess.DEVNULL)
            except OSError as exc:
                log.error("cell %d: cannot start: %s; retrying in %.1fs", cell, exc, delay)
                info.state = "restarting"
                await trio.sleep(delay)
                delay = min(delay * 2, self.cells.restart_backoff_max_ms / 1000)
                continue
            info.pid, info.started_at, info.state = process.pid, time.monotonic(), "running"
            info.starts += 1
            self._running[cell] = process
            log.info("cell %d: started (pid %d)", cell, process.pid)
            try:
                code = await process.wait()
            finally:
                with trio.CancelScope(shield=True):
                    await _stop(cell, process)
                self._running.pop(cell, None)
                info.pid, info.last_exit = None, process.returncode
                info.state = "stopped"
            up_for = time.monotonic() - (info.started_at or 0)
            if up_for >= STABLE_AFTER_S:
                delay = self.cells.restart_backoff_ms / 1000
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            log.warning("cell %d: process %d ended (%s) after %.1fs; restarting in %.1fs", cell, process.pid, how,
                        up_for, delay)
            info.state = "restarting"
            await trio.sleep(delay)
            delay = min(delay * 2, self.cells.restart_backoff_max_ms / 1000)

    def pid(self, cell: int) -> int | None:
        return self.processes[cell].pid

    def status(self) -> list[dict[str, Any]]:
        return [p.status() for p in self.processes.values()]


async def _stop(cell: int, process: trio.Process) -> None:
    """SIGTERM (the cell answers what is in flight, flushes its writer and exits), SIGKILL if it takes too long."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    with trio.move_on_after(STOP_GRACE_S):
        await process.wait()
        log.info("cell %d: stopped (exit code %s)", cell, process.returncode)
        return
    log.warning("cell %d: did not stop within %.0fs of SIGTERM; killing it", cell, STOP_GRACE_S)
    process.kill()
    await process.wait()
