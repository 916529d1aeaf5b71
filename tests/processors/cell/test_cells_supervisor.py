"""The node's cell supervisor: starts one process per cell, restarts a process that dies (with back-off),
and stops them all (SIGTERM, then SIGKILL) when it is cancelled. Real processes; a stand-in cell program."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import trio

from processors.cell.section import cells_of
from processors.cell.supervisor import CellSupervisor
from switch.config import parse_config
from tests.integration.cells_harness import PRODUCTS

NODE = """
[node]
name = "sup"
var_dir = "{var}"

[cells]
count = 2
base_port = 19700
restart_backoff_ms = 50
restart_backoff_max_ms = 400
"""

# Stands in for `python -m processors.cell`: runs until killed; ignores SIGTERM when told to (a hung cell).
STAND_IN = """
import signal, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


class StandInSupervisor(CellSupervisor):
    def __init__(self, *args: object, stubborn: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stubborn = stubborn

    def command(self, cell: int) -> list[str]:
        return [sys.executable, "-c", STAND_IN, "stubborn" if self.stubborn else "polite"]


def _config(tmp_path: Path) -> object:
    file = tmp_path / "node.toml"
    file.write_text(NODE.format(var=tmp_path / "var"))
    (tmp_path / "products.toml").write_text(PRODUCTS)  # the supervisor reads the catalogue before starting
    cfg = parse_config(file.read_text(), file)
    assert cells_of(cfg.sections) is not None
    return cells_of(cfg.sections)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose: trio reaps it once wait() returns
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


async def _wait_for(predicate: object, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.02)


async def test_starts_every_cell_restarts_a_killed_one_and_stops_all(tmp_path: Path) -> None:
    sup = StandInSupervisor(_config(tmp_path))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await _wait_for(lambda: all(sup.pid(k) for k in (0, 1)))
        first, other = sup.pid(0), sup.pid(1)
        assert first is not None and other is not None
        os.kill(first, signal.SIGKILL)
        await _wait_for(lambda: sup.pid(0) not in (None, first))
        status = {s["name"]: s for s in sup.status()}
        assert status["cell-00"]["restarts"] == 1 and status["cell-00"]["last_exit"] == -signal.SIGKILL
        assert status["cell-01"]["restarts"] == 0 and sup.pid(1) == other  # the other cell is untouched
        pids = [sup.pid(0), sup.pid(1)]
        nursery.cancel_scope.cancel()
    assert not any(_alive(p) for p in pids if p)
    assert {s["process"] for s in sup.status()} == {"stopped"}


async def test_a_cell_that_ignores_sigterm_is_killed(tmp_path: Path, monkeypatch: object) -> None:
    import switch.infra.procsup as supervisor

    monkeypatch.setattr(supervisor, "STOP_GRACE_S", 0.3)  # type: ignore[attr-defined]
    sup = StandInSupervisor(_config(tmp_path), stubborn=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await _wait_for(lambda: all(sup.pid(k) for k in (0, 1)))
        await trio.sleep(0.3)  # let the stand-ins install their SIGTERM handler
        pids = [sup.pid(0), sup.pid(1)]
        start = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - start < 3
    assert not any(_alive(p) for p in pids if p)
