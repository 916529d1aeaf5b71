"""Typed database errors.

Callers outside the storage modules never import SQLAlchemy, so every database failure that leaves one is a
:class:`StorageError` (or a subclass), with the driver's exception kept as ``__cause__`` for the logs. Engines
are created with ``hide_parameters=True``, so neither the message nor the cause carries bound values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from switch.model.errors import BulkheadError


class StorageError(BulkheadError):
    """A database operation failed (connection lost, constraint violated, disk full, ...)."""


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
