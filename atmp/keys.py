"""Which key a terminal's PIN blocks arrive under: the seam the ATMP issue grows into per-terminal keys.

Today every terminal behind a listener shares that listener's key (``pin_key`` on the ATM listener: a TPK), as
configured; the engine asks :meth:`TerminalKeys.key_for` for the key of each request with a PIN block, so one
terminal key per ATM (from the terminal registry, changed by key exchange, DUKPT per transaction) can come in
here without the engine changing.
"""

from __future__ import annotations

from collections.abc import Callable

from hsm.api import PinKey
from switch.model.message import Message


class TerminalKeys:
    """The PIN key of a request: today the key of the link it came in on (``link_key``: the link's current key,
    changed by the link's key exchange)."""

    def __init__(self, link_key: Callable[[str], PinKey | None]) -> None:
        self._link_key = link_key

    def key_for(self, source: str, request: Message) -> PinKey | None:
        """The key DE 52 of ``request``, received on link ``source``, is encrypted under; None: the link has no
        key configured, and DE 52 goes on as it came (source and destination share the zone key)."""
        return self._link_key(source)
