"""What a cell needs before it can decide anything, shared by the cell process (:mod:`processors.cell.host`) and
the CLI's in-process path (:mod:`processors.cell.client`): the migrated database, the product catalogue, the data
key, the state loaded from the database, the HSM, and the lock that says "this cell's state is in use".
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hsm.settings import HsmSettings
from processors.cell.config import PAN_SEAL_CONTEXT, CellsConfig
from switch.infra.datakey import DataKeys, load_or_create
from switch.model.errors import BulkheadError

if TYPE_CHECKING:
    from hsm.api import Hsm
    from processors.catalog import Catalog
    from processors.state import CellState
    from processors.storage import Engine

log = logging.getLogger("bulkhead.cells")


class CellLockedError(BulkheadError):
    """Another process (the running cell, or a CLI command working without it) holds the cell's lock."""


class CellLock:
    """An exclusive ``flock`` on the cell's lock file, held while a process owns the cell's state.

    The kernel drops the lock when the process dies, however it dies, so a crashed cell never leaves a stale
    lock behind (unlike a PID file). The CLI tests it to choose between the admin socket and working directly
    on the database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`CellLockedError` at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CellLockedError(f"cell lock {self.path} is held by another process") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # informational only: the flock is what counts
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_is_held(path: Path) -> bool:
    """True when some process holds the cell's lock (the cell is running, or a command is writing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our shared lock, if we got it
    return False


@dataclass
class LoadedCell:
    cell: int
    db: Engine
    catalog: Catalog
    keys: DataKeys
    state: CellState

    def pan_hash(self, pan: str) -> str:
        return self.keys.pan_hash(pan)

    @property
    def seal(self) -> Callable[[bytes], bytes]:
        return functools.partial(self.keys.seal, context=PAN_SEAL_CONTEXT)

    @property
    def unseal(self) -> Callable[[bytes], bytes]:
        return functools.partial(self.keys.open, context=PAN_SEAL_CONTEXT)


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_cell(cells: CellsConfig, cell: int) -> LoadedCell:
    """Migrate the cell's database, read the catalogue and the data key, load the state (blocking: run it in a
    thread from trio). The caller holds the cell's lock."""
    from processors.catalog_file import load_catalog
    from processors.storage import load_state, purge_early_reversals, upgrade
    from switch.infra.db.engine import ensure_sqlite_folder, make_engine

    cells.check_cell(cell)
    url = cells.url(cell)
    ensure_sqlite_folder(url)
    upgrade(url)
    catalog = load_catalog(cells.products)
    keys = load_or_create(cells.hash_key_file)
    db = make_engine(url)
    try:
        now = utcnow()
        purge_early_reversals(db, now)  # those past their retention are not loaded: their rows go too
        state = load_state(db, cell, now, catalog.bank.txn_retention_days)
    except BaseException:
        db.dispose()
        raise
    return LoadedCell(cell, db, catalog, keys, state)


@asynccontextmanager
async def open_hsm(cfg: HsmSettings | None) -> AsyncIterator[Hsm | None]:
    """The cell's HSM for the time of the block (None when ``[cells]`` names none: requests that need one
    are then declined by the engine). A thales HSM that is down does not stop the cell from starting."""
    if cfg is None:
        yield None
        return
    from hsm.open import open_hsm as open_configured

    async with open_configured(cfg) as hsm:
        yield hsm
