"""The node's side of the cells: start every cell as its own OS process, restart one that dies, stop them
all when the node stops.

A cell is a separate process so that one cell's crash, hang or memory blow-up cannot touch the others or the
node (the bulkhead): the node only sees the ``cell-NN`` link go down and answers that cell's cards 91 until
the cell is back. Restarts back off exponentially (``restart_backoff_ms`` doubling up to
``restart_backoff_max_ms``), and the delay resets once a cell has stayed up for a while, so a cell that
crashes at start does not spin while a cell that crashed once after hours comes back at once.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import trio

from processors.cell.config import CELL_PROCESS, CellsConfig, check_catalogue
from switch.infra import logs
from switch.infra.lifeline import LIFELINE_OPTION
from switch.infra.procsup import ProcessSupervisor, StrayProcessError, command_line, stop_stray


class CellSupervisor(ProcessSupervisor):
    """The cells' supervisor, a service the ``[cells]`` section gives the node (switch.contracts.section)."""

    what = "cell"

    def __init__(self, cells: CellsConfig, *, python: str = sys.executable) -> None:
        check_catalogue(cells)  # a bad catalogue is a configuration error now, not a crash loop later
        super().__init__({k: cells.name(k) for k in range(cells.count)},
                         backoff_s=cells.restart_backoff_ms / 1000, backoff_max_s=cells.restart_backoff_max_ms / 1000)
        self.cells = cells
        self.python = python

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stop any cell process a node that died left behind (it would hold the cell's lock and port, and the
        node's links would sign on to it), then keep every cell running."""
        for cell in range(self.cells.count):
            await stop_stray(self.cells.lock_file(cell), f"cell {cell}", functools.partial(_stray_cell, cell))
        await super().run(task_status=task_status)

    def command(self, cell: int) -> list[str]:
        # Through the command line's cell group (`bulkhead cell run`), which reads node.toml as the node does.
        return [self.python, "-m", "switch.cli.cell", "run", "--conf", str(self.cells.node_file),
                "--cell", str(cell), *logs.child_args()]  # the node's --log-level/--plain-logs

    def status(self) -> list[dict[str, Any]]:
        return [{"cell": index, **p.status()} for index, p in self.processes.items()]

    def describe(self) -> list[str]:
        return [f"  cells     {self.cells.count} on {self.cells.host}:{self.cells.base_port}.."
                f"{self.cells.port(self.cells.count - 1)}  (supervised processes, databases {self.cells.url(0)} ...)"]


def _stray_cell(cell: int, pid: int, what: str) -> bool:
    """Whether ``pid``, the holder of cell ``cell``'s lock, is a cell process a dead node left behind.

    Its command line decides where /proc exists: a cell run by a supervisor carries ``--lifeline``. A cell run
    by hand (``bulkhead cell run``) is not a stray but another owner: the node refuses to start rather than serve
    through it or stop someone's process. Anything else (a CLI command working on the cell's database, or a
    stale line whose pid now runs something else) is left alone. Without /proc, the lock file's line is all there
    is to go on."""
    argv = command_line(pid)
    if argv is None:
        return not Path("/proc/self").exists() and what == f"{CELL_PROCESS} {cell}"
    if "run" not in argv or not ({"switch.cli.cell", "cell"} & set(argv)):
        return False
    index = argv.index("--cell") if "--cell" in argv else -1
    if argv[index + 1:index + 2] != [str(cell)] and f"--cell={cell}" not in argv:
        return False
    if LIFELINE_OPTION not in argv:
        raise StrayProcessError(f"cell {cell} is already running outside this node (pid {pid}, started by hand?); "
                                "stop it, then start the node")
    return True
