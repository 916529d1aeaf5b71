"""Typed errors of the switch node's storage (journal, store-and-forward), all :class:`StorageError`.

Callers outside :mod:`switch.storage` never import SQLAlchemy, so every database failure that leaves this
package is one of these classes, with the driver's exception kept as ``__cause__`` for the logs. Engines
are created with ``hide_parameters=True``, so neither the message nor the cause carries bound values.
"""

from __future__ import annotations

from switch.infra.db.errors import StorageError


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
    """The store-and-forward entry's status does not allow the action (an attempt or a failure of an entry no
    longer pending; an operator's resend, cancel or expire of an entry already finished)."""

    def __init__(self, item_id: int, action: str, status: str = "not pending") -> None:
        self.item_id = item_id
        self.action = action
        self.status = status
        where = status if status in ("not pending", "changed meanwhile") else f"is {status}"
        super().__init__(f"{action}: SAF entry {item_id} {where}")


class SafLaterEntryError(SafStateError):
    """A resend refused: a later entry for the same original (say the reversal of this advice) may already have
    reached the destination, so this one would arrive after it. ``saf resend --force`` overrides it."""

    def __init__(self, item_id: int, later_id: int, later_mti: str, later_status: str) -> None:
        self.later_id = later_id
        self.later_mti = later_mti
        self.later_status = later_status
        StorageError.__init__(
            self, f"SAF resend: entry {item_id} would arrive after entry {later_id} ({later_mti}, {later_status}) "
            f"for the same original, which may have reached the destination already; --force to resend anyway")
        self.item_id, self.action, self.status = item_id, "SAF resend", later_status


__all__ = ["JournalClosedError", "JournalTimeoutError", "JournalWriteError", "SafItemNotFoundError",
           "SafLaterEntryError", "SafStateError", "StorageError"]
