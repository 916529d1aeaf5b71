"""Supervision as an operator meets it (issue 11, items 2 and 3, and the node lock of item 16):

- Ctrl-C on `bulkhead run` reaches the node alone; the node drains, signs its links off, then stops its cells,
  which stop in order (exit 0, never restarted), and the last log line says the node stopped;
- a cell whose node is killed while the cell is still starting does not outlive it;
- a stray cell left by a dead node is stopped by the next node before it serves, never served through;
- a second node on the same var_dir is refused before it touches the database; a taken port names the
  listener and the address.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio
from sqlalchemy import create_engine, inspect

from processors.cell.config import CellsConfig
from processors.cell.section import cells_of
from switch.cli.common import first_leaf
from switch.config import parse_config
from switch.infra.lifeline import Lifeline
from switch.infra.lockfile import holder, is_held
from switch.infra.procsup import StrayProcessError
from switch.runtime.links.inbound import ListenError
from switch.runtime.node import Node, NodeRunningError
from tests.integration.cells_harness import cell_supervisor, write_cells_config
from tests.integration.harness import ROUTES_ONE, write_config
from tests.switch.infra.test_lifeline import _alive, _wait_gone

pytestmark = pytest.mark.slow

BULKHEAD = [sys.executable, "-c", "from switch.cli.main import main; main()"]
CELL_RUN = [sys.executable, "-m", "switch.cli.cell", "run", "--conf"]


class LogReader:
    """Collects a process's JSON log lines (stderr) in a thread; waits for a line that matches."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[dict[str, object]] = []
        self.raw: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.raw.append(line.rstrip("\n"))
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    self.lines.append(json.loads(line))

    def messages(self) -> list[str]:
        return [str(entry.get("msg", "")) for entry in list(self.lines)]

    def wait_for(self, *needles: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not all(any(n in m for m in self.messages()) for n in needles):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise AssertionError(f"never logged {needles}:\n" + "\n".join(self.raw[-40:]))
            time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(timeout=10)


def _index(messages: list[str], needle: str) -> int:
    found = [k for k, m in enumerate(messages) if needle in m]
    assert found, f"no log line with {needle!r}"
    return found[0]


def test_ctrl_c_reaches_the_node_alone_which_stops_its_cells_after_draining(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=2)
    # Its own session, so the test can send SIGINT to the whole process group, as a terminal's Ctrl-C does.
    node = subprocess.Popen([*BULKHEAD, "run", "--conf", str(cfg.file)], cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    logs = LogReader(node)
    try:
        logs.wait_for("cell-00: connected -> signed_on", "cell-01: connected -> signed_on")
        os.killpg(node.pid, signal.SIGINT)
        assert node.wait(timeout=60) == 0
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
    logs.join()
    messages = logs.messages()
    for cell in (0, 1):
        # The cell stopped when the node told it to (after its link went down), in order, and was not restarted.
        # (Lines from different processes interleave only as they reach the pipe: the sign-off is compared, which
        # the node finishes before it stops the cells.)
        signed_off = _index(messages, f"link cell-{cell:02d}: connected -> draining")
        assert signed_off < _index(messages, f"cell {cell}: stopping on signal")
        assert f"cell {cell}: stopped (exit code 0)" in messages
    assert not [m for m in messages if "restarting" in m or "second signal" in m or "lost with" in m], messages
    assert messages[-1] == "node cells-itest: stopped"


def test_a_cell_does_not_outlive_a_node_killed_while_it_starts(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=1)
    cells = cells_of(cfg.sections)
    assert cells is not None
    # A stand-in for the node: it starts the cell exactly as the supervisor does (its lifeline's read end passed
    # as --lifeline), then is killed at once, while the cell is still importing and loading (the window a poll
    # after loading missed).
    starter = (
        "import subprocess, sys, time\n"
        "from switch.infra.lifeline import Lifeline\n"
        "line = Lifeline()\n"
        "p = subprocess.Popen(sys.argv[1:] + ['--lifeline', str(line.fd)], pass_fds=(line.fd,),\n"
        "                     start_new_session=True)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    fake_node = subprocess.Popen([sys.executable, "-c", starter, *CELL_RUN, str(cfg.file), "--cell", "0"],
                                 stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    assert fake_node.stdout is not None
    cell_pid = int(fake_node.stdout.readline())
    fake_node.send_signal(signal.SIGKILL)
    fake_node.wait()
    try:
        assert _wait_gone(cell_pid, 30), "the cell outlived its node"
    finally:
        if _alive(cell_pid):
            os.kill(cell_pid, signal.SIGKILL)
    assert not is_held(cells.lock_file(0))


async def _holding(cells: CellsConfig, pid: int) -> None:
    with trio.fail_after(60):
        while not is_held(cells.lock_file(0)) or holder(cells.lock_file(0)).pid != pid:
            await trio.sleep(0.05)


async def test_a_stray_cell_left_by_a_dead_node_is_stopped_before_the_next_node_serves(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=1)
    cells = cells_of(cfg.sections)
    assert cells is not None
    # A supervised cell that outlived its node: its lifeline is held here, so it was never told to stop (a cell
    # stuck in its stop looks the same to the next node). It serves the cell's port and holds its lock.
    line = Lifeline()
    stray = subprocess.Popen([*CELL_RUN, str(cfg.file), "--cell", "0", "--lifeline", str(line.fd)], cwd=tmp_path,
                             pass_fds=(line.fd,), stderr=subprocess.DEVNULL)
    try:
        await _holding(cells, stray.pid)
        node = Node(cfg)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            supervisor = cell_supervisor(node)
            assert supervisor is not None
            with trio.fail_after(60):
                while not node.link_is_up("cell-00"):
                    await trio.sleep(0.05)
            # The stray was stopped (SIGTERM after the grace it was given to stop by itself) before the node's
            # own cell took the lock and the port.
            assert stray.poll() in (0, 1, -signal.SIGTERM)
            own = supervisor.pid(0)
            assert own is not None and own != stray.pid
            assert holder(cells.lock_file(0)).pid == own
            node.stop()
    finally:
        line.close()
        if stray.poll() is None:
            stray.kill()
        stray.wait()


async def test_a_cell_run_by_hand_is_not_served_through_the_node_refuses_to_start(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=1)
    cells = cells_of(cfg.sections)
    assert cells is not None
    by_hand = subprocess.Popen([*CELL_RUN, str(cfg.file), "--cell", "0"], cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        await _holding(cells, by_hand.pid)
        with pytest.raises(BaseException) as raised:
            with trio.fail_after(60):
                await Node(cfg).run()
        leaf = first_leaf(raised.value)
        assert isinstance(leaf, StrayProcessError)
        assert str(leaf) == (f"cell 0 is already running outside this node (pid {by_hand.pid}, started by hand?); "
                             "stop it, then start the node")
        assert by_hand.poll() is None  # someone's process: left alone
    finally:
        by_hand.kill()
        by_hand.wait()


async def test_a_second_node_on_the_same_var_dir_is_refused_before_it_touches_the_database(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=1)
    first = Node(cfg)
    other_db = tmp_path / "var" / "other.db"
    second_cfg = parse_config(cfg.file.read_text().replace("node.db", "other.db"), cfg.file)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        with pytest.raises(NodeRunningError, match=rf"node 'cells-itest' is already running \(.*node.lock is held "
                                                   rf"by pid {os.getpid()} \(node cells-itest\)\); not started"):
            await Node(second_cfg).run()
        other = create_engine(f"sqlite:///{other_db}")
        try:
            assert inspect(other).get_table_names() == []  # not migrated
        finally:
            other.dispose()
        first.stop()


async def test_a_taken_port_names_the_listener_and_the_address(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        conf = write_config(tmp_path, f"sqlite:///{tmp_path / 'node.db'}", {"issuer-a": port},
                            ROUTES_ONE.format(link="issuer-a"))
        conf.write_text(conf.read_text().replace("port = 0", f"port = {port}", 1))
        node = Node(parse_config(conf.read_text(), conf))
        with pytest.raises(BaseException) as raised:  # out of the node's nurseries, in a group
            with trio.fail_after(30):
                await node.run()
        leaf = first_leaf(raised.value)  # what `bulkhead run` prints as its one line
        assert isinstance(leaf, ListenError)
        assert str(leaf) == f"listener acquirer: cannot listen on 127.0.0.1:{port}: Address already in use"
    finally:
        taken.close()
