"""The BIN index: for a PAN, every route whose BINs match it, longest match first.

BIN prefixes and ranges are grouped by length. For each length the entries are cut into disjoint segments
(an interval sweep), and each segment carries the routes that cover it, in file order. A lookup is then one
slice and one binary search per distinct length present in the table, however many entries there are: with
thousands of account ranges that is a handful of ``bisect`` calls instead of a scan over every route.
A prefix is the one-value range ``p..p`` of its own length, so prefixes and ranges share one structure.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Generic, TypeVar

from switch.routing.model import BinEntry

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BinLevel(Generic[T]):
    """All entries of one length: disjoint segments ``starts[i]..ends[i]`` covered by ``members[i]``."""

    length: int
    starts: tuple[str, ...]
    ends: tuple[str, ...]
    members: tuple[tuple[T, ...], ...]

    def lookup(self, pan: str) -> tuple[T, ...]:
        """Members whose entries of this length match ``pan`` (a digit string at least ``length`` long)."""
        key = pan[: self.length]
        i = bisect_right(self.starts, key) - 1
        if i >= 0 and key <= self.ends[i]:
            return self.members[i]
        return ()


def build_levels(entries: Iterable[tuple[BinEntry, int]], members: Sequence[T]) -> tuple[BinLevel[T], ...]:
    """Index ``(entry, position)`` pairs; ``members[position]`` is what a lookup returns for that route.

    Levels come longest first, and each segment's members in ascending position, so the first member that
    also passes the other criteria is the winner (longest match, then first listed).
    """
    by_length: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for entry, position in entries:
        by_length[entry.length].append((int(entry.low), int(entry.high), position))
    return tuple(
        _level(length, by_length[length], members) for length in sorted(by_length, reverse=True)
    )


def _level(length: int, spans: list[tuple[int, int, int]], members: Sequence[T]) -> BinLevel[T]:
    opening: dict[int, list[int]] = defaultdict(list)
    closing: dict[int, list[int]] = defaultdict(list)
    for low, high, position in spans:
        opening[low].append(position)
        closing[high + 1].append(position)
    points = sorted(opening.keys() | closing.keys())
    active: Counter[int] = Counter()  # a route may hold several overlapping entries of one length
    starts: list[str] = []
    ends: list[str] = []
    groups: list[tuple[int, ...]] = []
    for point, following in pairwise(points):
        for position in closing.get(point, ()):
            active[position] -= 1
            if not active[position]:
                del active[position]
        for position in opening.get(point, ()):
            active[position] += 1
        if not active:
            continue
        group = tuple(sorted(active))
        if groups and groups[-1] == group and int(ends[-1]) == point - 1:
            ends[-1] = f"{following - 1:0{length}d}"  # same routes on both sides: one segment
            continue
        starts.append(f"{point:0{length}d}")
        ends.append(f"{following - 1:0{length}d}")
        groups.append(group)
    return BinLevel(
        length,
        tuple(starts),
        tuple(ends),
        tuple(tuple(members[p] for p in group) for group in groups),
    )


def first_overlap(entries: Sequence[tuple[BinEntry, int, int]]) -> tuple[int, int, int, int] | None:
    """Find two entries of equal length that overlap and belong to different routes.

    ``entries`` are ``(entry, route position, index in the route's bins)``. Returns
    ``(position, index, other position, other index)`` where ``position`` is the later route (the one that
    would never win on the overlap), or None.
    """
    by_length: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    for entry, position, index in entries:
        by_length[entry.length].append((int(entry.low), int(entry.high), position, index))
    found: list[tuple[int, int, int, int]] = []
    for spans in by_length.values():
        spans.sort()
        reach: tuple[int, int, int, int] | None = None  # the span reaching furthest right so far
        for span in spans:
            if reach is not None and span[0] <= reach[1] and span[2] != reach[2]:
                later, earlier = (span, reach) if span[2] > reach[2] else (reach, span)
                found.append((later[2], later[3], earlier[2], earlier[3]))
            if reach is None or span[1] > reach[1]:
                reach = span
    return min(found) if found else None
