"""The command client's two transports: in-process (lock free: load, run, write in one transaction) and the
running cell's admin socket (lock held), against the real commands and storage."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from processors.cell.client import CellCommandError, run_command, run_commands
from processors.cell.config import CellsConfig
from processors.cell.loading import CellLock, CellLockedError, lock_is_held
from processors.cell.section import cells_of
from processors.commands import CommandError
from processors.model import Account, Card, Customer
from processors.state import CellState
from processors.storage import load_rows, make_engine
from tests.integration.cells_harness import ref_for_cell, seed_cell, write_cells_config


def rows(url: str, cell: int) -> CellState:
    engine = make_engine(url)
    try:
        return CellState.from_rows(cell, load_rows(engine, cell, datetime.now(UTC), 35))
    finally:
        engine.dispose()


def test_in_process_commands_write_to_the_cells_database(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=4)
    cells = cells_of(cfg.sections)
    assert cells is not None
    seeded = [seed_cell(cells, k) for k in range(4)]
    for card in seeded:
        assert card.pan.startswith(f"476173{card.cell:02d}") and len(card.pan) == 16
        state = rows(cells.url(card.cell), card.cell)
        assert [c.external_ref for c in state.customers.values()] == [ref_for_cell(card.cell, 4)]
        (account,) = state.accounts.values()
        assert isinstance(account, Account) and account.ledger_balance == 100_000_000
        (stored,) = state.cards.values()
        assert isinstance(stored, Card) and stored.status == "active" and card.pan not in repr(stored)
    assert not lock_is_held(cells.lock_file(0))  # released after the command
    with pytest.raises(CommandError, match="belongs to cell"):
        run_command(cells, 0, "customer.open", {"name": "x", "external_ref": ref_for_cell(1, 4)})
    # a refused command changed nothing
    assert len(rows(cells.url(0), 0).customers) == 1
    assert all(isinstance(c, Customer) for c in rows(cells.url(0), 0).customers.values())


def test_atomic_commands_write_all_or_nothing(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=2)
    cells = cells_of(cfg.sections)
    assert cells is not None
    ref = ref_for_cell(0, 2)
    steps = [("customer.open", {"name": "Ann", "external_ref": ref}),
             ("account.open", {"customer": f"ref:{ref}", "kind": "checking", "product": "no-such-product"})]
    with pytest.raises(CommandError):
        run_commands(cells, 0, steps, atomic=True)
    assert not rows(cells.url(0), 0).customers  # the first command's customer was not written either
    with pytest.raises(CommandError):
        run_commands(cells, 0, steps)  # not atomic: what ran before the refused command is kept
    assert len(rows(cells.url(0), 0).customers) == 1


def test_lock_is_exclusive_between_processes_and_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "cell.lock"
    first = CellLock(path)
    first.acquire()
    try:
        assert lock_is_held(path)
        with pytest.raises(CellLockedError):
            CellLock(path).acquire()
    finally:
        first.release()
    assert not lock_is_held(path)


async def test_commands_go_through_the_socket_when_the_cell_runs(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import processors.cell.host
    from processors.cell.host import run_cell

    monkeypatch.setattr(processors.cell.host, "HOUSEKEEPING_S", 0.05)  # hold expiry + pruning run meanwhile

    cfg = write_cells_config(tmp_path, count=2)
    cells = cells_of(cfg.sections)
    assert cells is not None
    await trio.to_thread.run_sync(seed_cell, cells, 1)
    # run_cell tunes this process's garbage collector as a cell process's (processors.cell.host.tune_gc): undone
    # afterwards, or later tests (tests/bench/test_cell.py checks the GC settings it restores) inherit it.
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        await _commands_through_the_socket(cells, run_cell)
    finally:
        if not frozen:
            gc.unfreeze()
        gc.set_threshold(*threshold)


async def _commands_through_the_socket(cells: CellsConfig, run_cell: Callable[..., Awaitable[None]]) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_cell(cells, 1, signals=False, task_status=task_status))
        assert lock_is_held(cells.lock_file(1))
        ref = ref_for_cell(1, 2, start=100)
        opened = await trio.to_thread.run_sync(
            run_command, cells, 1, "customer.open", {"name": "Live", "external_ref": ref})
        stats = await trio.to_thread.run_sync(run_command, cells, 1, "stats", {})
        assert stats["state"]["customers"] == 2  # the live state saw the command
        assert stats["state"]["early_reversals"] == stats["state"]["early_reversals_refused"] == 0
        assert stats["writer"]["decisions"] == 1
        with pytest.raises(CellCommandError, match="unknown command"):
            await trio.to_thread.run_sync(run_command, cells, 1, "customer.shut", {})
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    assert not lock_is_held(cells.lock_file(1))
    assert opened["customer"] in rows(cells.url(1), 1).customers  # committed by the cell's writer


def test_cell_run_exit_codes_for_a_bad_cell_and_a_held_lock(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from switch.cli.main import main

    cfg = write_cells_config(tmp_path, count=2)
    cells = cells_of(cfg.sections)
    assert cells is not None
    conf = str(tmp_path / "node.toml")
    result = CliRunner().invoke(main, ["cell", "run", "--conf", conf, "--cell", "7", "--plain-logs"])
    assert result.exit_code == 2  # no such cell: a configuration error, restarting will not help
    lock = CellLock(cells.lock_file(0))
    lock.acquire()
    try:
        result = CliRunner().invoke(main, ["cell", "run", "--conf", conf, "--cell", "0", "--plain-logs"])
    finally:
        lock.release()
    assert result.exit_code == 3  # another process owns the cell
