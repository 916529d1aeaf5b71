"""What the ATMP's store modules share: the engine, one transaction per call with a retry on a lost race, and
reading a terminal whole."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from atmp.errors import TerminalNotFoundError
from atmp.model import Terminal
from atmp.storage.rows import cassette_of, terminal_of
from atmp.storage.tables import CASSETTES, EVENTS, KEYS, TERMINALS
from switch.infra.db.errors import StorageError, storage_errors

T = TypeVar("T")
# A call that lost a race (two threads inserting the same withdrawal, a replacement that found the row changed
# under it) is run again from the start, in a new transaction, and then sees what the winner wrote.
ATTEMPTS = 5


class Conflict(Exception):
    """The row changed between our read and our guarded write: run the transaction again."""


def now() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _transact(self, action: str, body: Callable[[Connection], T]) -> T:
        """Run ``body`` in one transaction; again (up to :data:`ATTEMPTS` times) when it lost a race."""
        with storage_errors(action):
            for attempt in range(ATTEMPTS):
                try:
                    with self._engine.begin() as connection:
                        return body(connection)
                except (IntegrityError, Conflict):
                    if attempt == ATTEMPTS - 1:
                        raise
        raise StorageError(f"{action}: lost {ATTEMPTS} races in a row")

    def _read(self, action: str, body: Callable[[Connection], T]) -> T:
        with storage_errors(action), self._engine.connect() as connection:
            return body(connection)


def load_terminal(connection: Connection, terminal_id: str) -> Terminal | None:
    row = connection.execute(select(TERMINALS).where(TERMINALS.c.id == terminal_id)).mappings().first()
    if row is None:
        return None
    cassettes = [cassette_of(r) for r in connection.execute(
        select(CASSETTES).where(CASSETTES.c.terminal_id == terminal_id).order_by(CASSETTES.c.position)).mappings()]
    keys = connection.execute(select(KEYS).where(KEYS.c.terminal_id == terminal_id)).mappings().first()
    return terminal_of(row, cassettes, keys)


def need_terminal(connection: Connection, terminal_id: str) -> Terminal:
    terminal = load_terminal(connection, terminal_id)
    if terminal is None:
        raise TerminalNotFoundError(terminal_id)
    return terminal


def insert_event(connection: Connection, terminal_id: str, kind: str, detail: str, at: datetime, actor: str) -> int:
    result = connection.execute(EVENTS.insert().values(terminal_id=terminal_id, kind=kind, detail=detail, at=at,
                                                       actor=actor).returning(EVENTS.c.id))
    return int(result.scalar_one())
