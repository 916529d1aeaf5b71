"""Cash in a terminal's cassettes: the note mix for an amount, applying a dispense, low cash, replenishment.

Pure functions over :class:`~atmp.model.Cassette` values; the storage applies what they return in the same
transaction as the dispense record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from atmp.errors import CashError
from atmp.model import CASSETTE_POSITIONS, MAX_NOTES, Cassette

Counts = tuple[int, int, int, int]  # notes per cassette position 1..4
ZERO: Counts = (0, 0, 0, 0)


def counts(per_position: Mapping[int, int]) -> Counts:
    """``{2: 3}`` -> ``(0, 3, 0, 0)``."""
    if any(p not in CASSETTE_POSITIONS for p in per_position):
        raise CashError("position", "cassette positions are 1 to 4")
    a, b, c, d = (per_position.get(p, 0) for p in CASSETTE_POSITIONS)
    return (a, b, c, d)


def _add(x: Counts, y: Counts, sign: int = 1) -> Counts:
    a, b, c, d = (i + sign * j for i, j in zip(x, y, strict=True))
    return (a, b, c, d)


@dataclass(frozen=True, slots=True)
class Movement:
    """Notes that left the cassettes in one withdrawal, per position: handed out (``dispensed``), diverted to the
    reject bin (``rejected``), or presented and pulled back into the retract bin (``retracted``)."""

    dispensed: Counts = ZERO
    rejected: Counts = ZERO
    retracted: Counts = ZERO

    def __sub__(self, other: Movement) -> Movement:
        return Movement(_add(self.dispensed, other.dispensed, -1), _add(self.rejected, other.rejected, -1),
                        _add(self.retracted, other.retracted, -1))

    @property
    def is_zero(self) -> bool:
        return self.dispensed == self.rejected == self.retracted == ZERO

    @property
    def positions(self) -> tuple[int, ...]:
        """Positions this movement touches."""
        return tuple(p for i, p in enumerate(CASSETTE_POSITIONS)
                     if self.dispensed[i] or self.rejected[i] or self.retracted[i])

    def value(self, cassettes: Iterable[Cassette], which: str = "dispensed") -> int:
        """The money in ``which`` notes (``dispensed``, ``rejected``, ``retracted``) by the cassettes' denominations."""
        notes: Counts = getattr(self, which)
        return sum(notes[c.position - 1] * c.denomination for c in cassettes)


def note_mix(cassettes: Sequence[Cassette], amount: int, currency: str | None = None, *,
             max_notes: int | None = None) -> Counts | None:
    """The notes per cassette that make ``amount`` (minor units), or None when the cassettes cannot make it.

    Largest denomination first (the fewest notes: a dispenser's default mix), and of two cassettes with the same
    denomination the fuller one first (they empty evenly). Only cassettes of ``currency`` (when given) with notes
    left take part, at most their remaining notes each and ``max_notes`` in all. When the largest-first choice
    cannot finish (60.00 from 50.00 and 20.00 notes), fewer large notes are tried, so None means no mix exists.
    """
    if amount < 0:
        raise CashError("amount", "cannot be negative")
    usable = sorted((c for c in cassettes if c.remaining > 0 and (currency is None or c.currency == currency)),
                    key=lambda c: (-c.denomination, -c.remaining, c.position))
    # What the cassettes from i on can still pay at most, and the step every amount they make is a multiple of:
    # a rest above the first or off the second is refused without trying counts.
    capacity = [sum(c.remaining * c.denomination for c in usable[i:]) for i in range(len(usable) + 1)]
    step = [math.gcd(*(c.denomination for c in usable[i:])) for i in range(len(usable) + 1)]
    bounded = max_notes is not None
    failed: set[tuple[int, int, int]] = set()

    def search(i: int, rest: int, notes_left: int) -> list[int] | None:
        if rest == 0:
            return [0] * (len(usable) - i)
        if (i == len(usable) or notes_left <= 0 or rest > capacity[i] or rest % step[i]
                or (i, rest, notes_left) in failed):
            return None
        cassette = usable[i]
        most = min(cassette.remaining, rest // cassette.denomination, notes_left)
        least = max(0, -(-(rest - capacity[i + 1]) // cassette.denomination))
        for taken in range(most, least - 1, -1):
            # Without a note limit the notes left never bind (they are the cassettes' own): keeping them constant
            # lets one failed rest stand for every path that reaches it.
            found = search(i + 1, rest - taken * cassette.denomination, notes_left - taken if bounded else notes_left)
            if found is not None:
                return [taken, *found]
        failed.add((i, rest, notes_left))
        return None

    limit = max_notes if max_notes is not None else sum(c.remaining for c in usable)
    found = search(0, amount, limit)
    if found is None:
        return None
    return counts({c.position: n for c, n in zip(usable, found, strict=True) if n})


def apply_movement(cassettes: Sequence[Cassette], movement: Movement) -> tuple[Cassette, ...]:
    """The cassettes after ``movement`` (which may be negative: a correction giving notes back). A count for a
    position the terminal has no cassette in is refused: the notes cannot have come from anywhere."""
    present = {c.position for c in cassettes}
    for position in movement.positions:
        if position not in present:
            raise CashError(f"cassette {position}", "the terminal has no cassette in this position")
    out = []
    for c in cassettes:
        i = c.position - 1
        out.append(replace(c, dispensed=c.dispensed + movement.dispensed[i],
                           rejected=c.rejected + movement.rejected[i], retracted=c.retracted + movement.retracted[i]))
    return tuple(out)


def low_cash(cassettes: Iterable[Cassette], threshold: int) -> tuple[int, ...]:
    """Positions of the cassettes with fewer than ``threshold`` notes left (none when ``threshold`` is 0)."""
    return tuple(c.position for c in cassettes if c.remaining < threshold)


@dataclass(frozen=True, slots=True)
class CassetteCount:
    """One cassette at replenishment: what the host expected to find, what the custodian counted, the difference
    (positive: more notes than expected, the terminal paid out less than the host recorded), and the new load."""

    position: int
    currency: str
    denomination: int
    expected: int
    removed: int
    loaded: int

    @property
    def difference(self) -> int:
        return self.removed - self.expected

    @property
    def difference_value(self) -> int:
        return self.difference * self.denomination


@dataclass(frozen=True, slots=True)
class Replenishment:
    counts: tuple[CassetteCount, ...]
    cassettes: tuple[Cassette, ...]  # as loaded: the counts start again from zero

    @property
    def balanced(self) -> bool:
        return all(c.difference == 0 for c in self.counts)

    def difference_by_currency(self) -> dict[str, int]:
        """The discrepancy in money, per currency (a dual-currency terminal has two)."""
        out: dict[str, int] = {}
        for c in self.counts:
            out[c.currency] = out.get(c.currency, 0) + c.difference_value
        return out


def replenish(cassettes: Sequence[Cassette], removed: Mapping[int, int], loaded: Mapping[int, int]) -> Replenishment:
    """A replenishment: the notes counted in each cassette taken out (``removed``) against the host's remaining
    count, and the notes in each cassette put in (``loaded``). Every cassette of the terminal must be in both,
    and nothing else: a replenishment the host cannot match cassette by cassette settles nothing."""
    present = [c.position for c in cassettes]
    for argument, given in (("removed", removed), ("loaded", loaded)):
        extra = sorted(set(given) - set(present))
        if extra:
            raise CashError(argument, f"the terminal has no cassette {extra[0]}")
        missing = [p for p in present if p not in given]
        if missing:
            raise CashError(argument, f"no count for cassette {missing[0]}")
        for position, notes in given.items():
            if not 0 <= notes <= MAX_NOTES:
                raise CashError(argument, f"cassette {position}: a count is 0 to {MAX_NOTES} notes")
    out_counts = tuple(CassetteCount(c.position, c.currency, c.denomination, c.remaining, removed[c.position],
                                     loaded[c.position]) for c in cassettes)
    new = tuple(Cassette(c.position, c.currency, c.denomination, loaded[c.position]) for c in cassettes)
    return Replenishment(out_counts, new)
