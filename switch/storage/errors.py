"""Typed errors of the storage layer.

Callers outside :mod:`switch.storage` never import SQLAlchemy, so every database failure that leaves this
package is one of these classes, with the driver's exception kept as ``__cause__`` for the logs. Engines
are created with ``hide_parameters=True``, so neither the message nor the cause carries bound values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from switch.errors import BulkheadError


class StorageError(BulkheadError):
    """A database operation failed (connection lost, constraint violated, disk full, ...)."""


class JournalWriteError(StorageError):
    """The batch holding a journal record could not be committed; the record is not durable."""


class JournalClosedError(StorageError):
    """A record was submitted to a journal writer that is closed (or closing)."""


class JournalTimeoutError(StorageError):
    """The journal writer did not flush and stop within the time given to ``close``."""


class SafItemNotFoundError(StorageError):
    """No store-and-forward entry has this id."""

    def __init__(self, item_id: int) -> None:
        self.item_id = item_id
        super().__init__(f"no SAF entry with id {item_id}")


class SafStateError(StorageError):
    """The store-and-forward entry is no longer pending (acked, expired or failed), so it cannot be
    attempted or failed again."""

    def __init__(self, item_id: int, action: str) -> None:
        self.item_id = item_id
        self.action = action
        super().__init__(f"{action}: SAF entry {item_id} is not pending")


def describe(exc: BaseException) -> str:
    """A one-line description of a database failure: the driver's error class and first message line."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Re-raise SQLAlchemy errors as :class:`StorageError` naming the action that failed."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"{action}: {describe(exc)}") from exc
