"""The cell process: ``bulkhead cell run`` (:func:`main`), which the node's supervisor starts for each cell. It locks
the cell, loads its state from its database, opens its HSM, serves it (:class:`~processors.cell.server.CellHost`:
the internal link and the admin socket, every answer released once its decision has committed), does the
housekeeping, stops on SIGTERM, and turns every way out into an exit code the supervisor acts on.
"""

from __future__ import annotations

import functools
import gc
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from processors.cell.config import CELL_PROCESS, CellsConfig
from processors.cell.server import (
    CellFailedError,
    CellHost,
    CommandsLike,
    DecisionLike,
    EngineFailedError,
    EngineLike,
    stack_frames,
)
from processors.storage.writer import CommitFailedError, WriterClosedError
from switch.model.errors import BulkheadError

if TYPE_CHECKING:
    from processors.engine import CellEngine

__all__ = [
    "EXIT_CONFIG", "EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "CellFailedError", "CellHost", "CommandsLike",
    "DecisionLike", "EngineFailedError", "EngineLike", "main", "run_cell", "tune_gc",
]

log = logging.getLogger("bulkhead.cells.host")
HOUSEKEEPING_S = 60.0  # how often the housekeeping runs (hold expiry, pruning, purging)

EXIT_OK = 0
EXIT_FAILED = 1  # fail-stop after a failed commit, or an unexpected error
EXIT_CONFIG = 2  # configuration, catalogue or database unusable: a restart will not help until someone acts
EXIT_LOCKED = 3  # another process holds the cell's lock


async def run_cell(cells: CellsConfig, cell: int, *, supervised: bool = False, signals: bool = True,
                   task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Lock the cell, load it, and serve until SIGTERM/SIGINT (or cancellation); ``started(port)``. A cell
    supervised by the node stops on SIGTERM only (its lifeline sends one when the node goes away,
    switch.infra.lifeline): the terminal's Ctrl-C is the node's, which stops its cells after draining."""
    from processors.cell.loading import CellLock, load_cell, open_hsm
    from processors.commands import CellCommands
    from processors.engine import CellEngine

    cells.check_cell(cell)
    lock = CellLock(cells.lock_file(cell), f"{CELL_PROCESS} {cell}")
    lock.acquire()  # before loading: nobody may write the cell's database behind the state we load
    try:
        loaded = await trio.to_thread.run_sync(load_cell, cells, cell)
        state = loaded.state
        tune_gc()
        try:
            async with open_hsm(cells.hsm) as hsm:
                engine = CellEngine(state, loaded.catalog, hsm=hsm, pan_hash=loaded.pan_hash)
                commands = CellCommands(state, loaded.catalog, cell_count=cells.count, hsm=hsm,
                                        pan_hash=loaded.pan_hash, seal=loaded.seal, unseal=loaded.unseal)
                host = CellHost(
                    cell, engine, loaded.db, commands=commands, host=cells.host, port=cells.port(cell),
                    admin_socket=cells.admin_socket(cell), max_batch=cells.max_batch,
                    max_wait=cells.max_wait_ms / 1000,
                    describe_state=lambda: {"customers": len(state.customers), "accounts": len(state.accounts),
                                            "cards": len(state.cards), "open_holds": len(state.holds),
                                            "txns": len(state.txns), **engine.early_counts(),
                                            "open_exceptions": sum(1 for x in state.exceptions.values()
                                                                   if x.status == "open")},
                )
                async with trio.open_nursery() as nursery:
                    if signals:
                        nursery.start_soon(_stop_on_signals, host, not supervised)
                    nursery.start_soon(_housekeeping, host, engine)
                    try:
                        await host.serve(task_status=task_status)
                    finally:
                        nursery.cancel_scope.cancel()  # the cell has stopped: stop the watchers
        finally:
            loaded.db.dispose()
    finally:
        lock.release()


# Young-generation threshold of the cyclic garbage collector in a running cell (CPython's default is 700).
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the decision path (issue #5). A decision allocates dozens of
    short-lived containers (message, snapshots, effects), so with CPython's default threshold a young collection
    ran every ~20 decisions and older ones rescanned the whole state: 11 us of CPU per 0200 in a cell serving
    6k/s (gc.callbacks timing), 2 us with a young threshold of 10,000. The state just loaded lives as long as
    the process, so it is frozen out of every collection (gc.freeze). Cycles are still collected, less often;
    the decision path makes few (rows, effects and messages form none)."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


async def _housekeeping(host: CellHost, engine: CellEngine) -> None:
    """Now and then: release expired holds (requests release them lazily too, but a card nobody uses would
    keep its funds held), forget decided transactions past the retention (memory only), report the counts of
    rate-limited warnings (a burst that stopped is still told), and forget remembered early reversals past
    theirs, deleting their rows (processors.early: the table stays bounded)."""
    from processors.storage import StorageError, purge_early_reversals

    while True:
        await trio.sleep(HOUSEKEEPING_S)
        if host.stopping:
            return
        effects = engine.expire_holds()
        if effects:
            try:
                await host.commit(effects)
            except (WriterClosedError, CommitFailedError):
                return  # the cell is stopping (a failure already took it down)
        engine.prune()
        engine.flush_logs()
        if engine.forget_expired_reversals():
            # Off the event loop; only rows already past their expiry go, which no decision reads any more.
            try:
                await trio.to_thread.run_sync(purge_early_reversals, host.db, engine.clock())
            except StorageError as exc:
                # Not worth stopping the cell for: the rows are ignored once expired, and the next start purges.
                log.warning("cell %d: expired early reversals not purged: %s", host.cell, exc)


async def _stop_on_signals(host: CellHost, interactive: bool) -> None:
    """First SIGTERM (and SIGINT when run from a terminal): orderly stop; a second one: stop at once (by
    cancelling the cell's scope)."""
    with trio.open_signal_receiver(*((signal.SIGTERM, signal.SIGINT) if interactive else (signal.SIGTERM,))) \
            as signals:
        async for _ in signals:
            if host.stopping:
                raise KeyboardInterrupt
            log.info("cell %d: stopping on signal", host.cell)
            host.stop()


def main(load: Callable[[], CellsConfig], cell: int, *, log_level: str = "info", json_logs: bool = True,
         supervised: bool = False) -> int:
    """The cell process (``bulkhead cell run``, which the node's supervisor starts); returns the exit code.
    ``load`` reads the cells' configuration (a :class:`BulkheadError` is a configuration error: exit code 2)."""
    from switch.infra import logs

    logs.setup(log_level, json_lines=json_logs)
    try:
        cells = load()
        cells.check_cell(cell)
    except BulkheadError as exc:
        log.error("cell %d: %s", cell, exc)
        return EXIT_CONFIG
    try:
        trio.run(functools.partial(run_cell, cells, cell, supervised=supervised))
    except BaseException as exc:  # every way out of the cell becomes an exit code
        return _exit_code(cell, _first_leaf(exc))
    log.info("cell %d: stopped", cell)
    return EXIT_OK


def _exit_code(cell: int, exc: BaseException) -> int:
    from processors.cell.loading import CellLockedError

    if isinstance(exc, CellLockedError):
        log.error("cell %d: not started: %s (is it running already?)", cell, exc)
        return EXIT_LOCKED
    if isinstance(exc, CellFailedError):
        log.critical("%s", exc)
        return EXIT_FAILED
    if isinstance(exc, KeyboardInterrupt):
        log.warning("cell %d: stopped at once on a second signal", cell)
        return EXIT_FAILED
    if isinstance(exc, (BulkheadError, OSError)):
        log.critical("cell %d: cannot run: %s: %s", cell, type(exc).__name__, exc)
        return EXIT_CONFIG
    log.critical("cell %d: stopped by %s\n%s", cell, type(exc).__name__, stack_frames(exc))
    return EXIT_FAILED


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
