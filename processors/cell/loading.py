"""What a cell needs before it can decide anything, shared by the cell process (:mod:`processors.cell.host`) and
the CLI's in-process path (:mod:`processors.cell.client`): the migrated database, the product catalogue, the data
key, the state loaded from the database, the HSM, and the lock that says "this cell's state is in use".
"""

from __future__ import annotations

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
from switch.infra.lockfile import ProcessLock, is_held
from switch.model.errors import BulkheadError

if TYPE_CHECKING:
    from hsm.api import Hsm
    from processors.catalog import Catalog
    from processors.state import CellState
    from processors.storage import Engine

log = logging.getLogger("bulkhead.cells")


class CellLockedError(BulkheadError):
    """Another process (the running cell, or a CLI command working without it) holds the cell's lock."""


class CellLock(ProcessLock):
    """The exclusive lock held while a process owns the cell's state (switch.infra.lockfile): the running cell,
    or a CLI command working on the database without it. The CLI tests it to choose between the admin socket and
    working directly on the database; a starting node reads its holder to find a stray cell."""

    def __init__(self, path: Path, what: str = "") -> None:
        super().__init__(path, what or f"cell lock, pid {os.getpid()}", CellLockedError)


def lock_is_held(path: Path) -> bool:
    """True when some process holds the cell's lock (the cell is running, or a command is writing)."""
    return is_held(path)


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
