"""Lifecycle commands for a cell, from the CLI (or a test): one implementation, two transports.

When the cell process runs (its lock is held), commands go over its admin socket and run against the live
state, committed through the cell's writer. When it does not, the command takes the lock itself, loads the
state from the database in-process, runs :class:`processors.commands.CellCommands` and writes the effects
synchronously in one transaction, so a cell that starts meanwhile waits for the lock (and is restarted by its
supervisor) instead of loading a state that is about to change.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from processors.cell.config import CellsConfig
from processors.cell.loading import CellLock, CellLockedError, LoadedCell, load_cell, lock_is_held, open_hsm
from processors.model import Effects
from processors.storage.writer import write_now
from switch.model.errors import BulkheadError

Command = tuple[str, dict[str, Any]]
CONNECT_WAIT_S = 15.0  # a cell that holds its lock is loading its state; its socket appears when it is ready


class CellCommandError(BulkheadError):
    """The cell refused a command (the message is the cell's own, e.g. a CommandError's text)."""


def run_command(cells: CellsConfig, cell: int, name: str, args: dict[str, Any], *, timeout: float = 30.0) -> Any:
    """Run one command on ``cell`` and return its (JSON-able) result; blocking."""
    return run_commands(cells, cell, [(name, args)], timeout=timeout)[0]


def run_commands(cells: CellsConfig, cell: int, commands: Sequence[Command], *, timeout: float = 30.0,
                 atomic: bool = False) -> list[Any]:
    """Run several commands in order (one connection, or one load of the state); blocking. Stops at the first
    refused command and raises its error; the commands before it are committed, unless ``atomic``: then all of
    them are written in one transaction or none (only possible while the cell is stopped)."""
    cells.check_cell(cell)
    if not lock_is_held(cells.lock_file(cell)):
        lock = CellLock(cells.lock_file(cell), f"command on cell {cell}")
        try:
            lock.acquire()
        except CellLockedError:
            pass  # the cell (or another command) took it just now: go through the socket
        else:
            try:
                return _in_process(cells, cell, commands, atomic=atomic)
            finally:
                lock.release()
    if atomic:
        raise CellCommandError(f"cell {cell:02d} is running: stop it to run these commands as one transaction")
    return _via_socket(cells.admin_socket(cell), commands, timeout)


def _in_process(cells: CellsConfig, cell: int, commands: Sequence[Command], *, atomic: bool) -> list[Any]:
    loaded = load_cell(cells, cell)
    try:
        results: list[Any] = []
        effects: list[Effects] = []
        done = False
        try:
            trio.run(_run_all, cells, loaded, commands, results, effects)
            done = True
        finally:
            # What ran before a refused command is kept, as it would be on the running cell (unless atomic).
            if done or not atomic:
                write_now(loaded.db, effects)
        return results
    finally:
        loaded.db.dispose()


async def _run_all(cells: CellsConfig, loaded: LoadedCell, commands: Sequence[Command], results: list[Any],
                   effects: list[Effects]) -> None:
    from processors.commands import CellCommands

    async with open_hsm(cells.hsm) as hsm:
        runner = CellCommands(loaded.state, loaded.catalog, cell_count=cells.count, hsm=hsm,
                              pan_hash=loaded.pan_hash, seal=loaded.seal, unseal=loaded.unseal)
        for name, args in commands:
            result, changed = await runner.run(name, args)
            results.append(result)
            effects.append(changed)


def _via_socket(path: Path, commands: Sequence[Command], timeout: float) -> list[Any]:
    with _connect(path, timeout) as sock:
        sock.settimeout(timeout)
        reader = sock.makefile("rb")
        results = []
        for name, args in commands:
            sock.sendall(json.dumps({"cmd": name, "args": args}).encode() + b"\n")
            line = reader.readline()
            if not line:
                raise CellCommandError(f"the cell closed its admin connection without answering {name}")
            answer = json.loads(line)
            if not answer.get("ok"):
                raise CellCommandError(str(answer.get("error")))
            results.append(answer["result"])
        return results


def _connect(path: Path, timeout: float) -> socket.socket:
    deadline = time.monotonic() + min(timeout, CONNECT_WAIT_S)
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise CellCommandError(f"the cell holds its lock but does not answer on {path}") from None
            time.sleep(0.1)
        except PermissionError:
            sock.close()
            raise CellCommandError(f"permission denied on {path}: only the cell's user may use it") from None
