"""Choosing a link inside a destination: the only mutable part of routing.

The table is immutable and shared by every transaction; the round-robin position is not, so it lives here,
owned by the node and kept across table reloads (a reload does not restart every rotation at its first
link). Link health comes from the caller (``is_up``), so this stays free of I/O and clocks.
"""

from __future__ import annotations

from collections.abc import Callable

from switch.routing.model import Destination


class PoolSelector:
    """Picks the link for a request to a destination.

    - ``single``: its one link if it is up.
    - ``primary_secondary``: the first link that is up, in the order configured (failover, and back to the
      primary as soon as it is up again).
    - ``round_robin``: the next link in rotation that is up; links that are down are skipped without losing
      the rotation of the others.

    Returns None when no link is up; the caller then answers as for an unreachable destination (stand-in or
    91). Rotation state is kept per destination name.

    With ``avoid`` (the node passes "the link is degraded": connected but not answering), a pool picks by the
    same rule among its links that are up and not avoided, and falls back to an avoided one only when no other
    is up: a degraded link may still answer, which is better than no link. A destination with one link always
    gets it while it is up, degraded or not: its answers (or an echo's) are what clears the degradation.
    """

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def choose(self, destination: Destination, is_up: Callable[[str], bool],
               avoid: Callable[[str], bool] | None = None) -> str | None:
        links = destination.links
        if len(links) == 1:  # most destinations: one link, whatever the strategy (no generator, no rotation)
            link = links[0]
            return link if is_up(link) else None
        if avoid is not None:
            preferred = self.choose(destination, lambda name: is_up(name) and not avoid(name))
            return preferred if preferred is not None else self.choose(destination, is_up)
        if destination.strategy != "round_robin":
            return next((link for link in links if is_up(link)), None)
        count = len(links)
        start = self._next.get(destination.name, 0) % count
        for step in range(count):
            index = (start + step) % count
            if is_up(links[index]):
                self._next[destination.name] = index + 1
                return links[index]
        return None

    def forget(self, names: frozenset[str] | set[str]) -> None:
        """Drop the rotation state of destinations that no longer exist (after a reload)."""
        for name in names:
            self._next.pop(name, None)
