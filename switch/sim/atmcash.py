"""A simulated ATM's own cash: its cassettes, the notes it would pick for an amount, and what went out.

A terminal knows its cassettes the way a real one does: position (1..4, DE 63's order), denomination and notes
loaded; it counts the notes that leave each cassette, and of those the ones retracted (presented, not taken). The
note mix is the usual dispenser rule, largest denomination first from the cassettes that still have notes (the rule
the host uses too when a confirmation carries no counts: atm-interface.md); an amount it cannot make is one the
terminal does not offer. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from switch.sim.atmfields import POSITIONS, NoteCounts

# The demo fleet's cassettes (`bulkhead atm seed`): 2,000 notes each of 20.00, 50.00, 10.00 and 100.00 USD.
DEFAULT_CASSETTES = "1:2000:2000,2:5000:2000,3:1000:2000,4:10000:2000"
# Withdrawal amounts a customer picks from (minor units), as an ATM's fast-cash screen offers them.
DEFAULT_AMOUNTS = (2000, 4000, 5000, 6000, 10000, 20000)


@dataclass
class Cassette:
    position: int
    denomination: int  # minor units of the terminal's currency
    loaded: int
    out: int = 0  # notes that left the cassette (dispensed or presented and retracted)
    retracted: int = 0  # of those, notes taken back into the retract bin

    @property
    def remaining(self) -> int:
        return self.loaded - self.out


@dataclass
class Cassettes:
    """One terminal's cassettes by position."""

    cassettes: list[Cassette] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str) -> Cassettes:
        """``POS:DENOMINATION:COUNT,...`` (denomination in minor units), positions 1..4 each at most once."""
        out: list[Cassette] = []
        for part in spec.split(","):
            items = part.strip().split(":")
            if len(items) != 3 or not all(item.isdigit() for item in items):
                raise ValueError(f"{part.strip()!r}: expected POSITION:DENOMINATION:COUNT (digits)")
            position, denomination, count = (int(item) for item in items)
            if not 1 <= position <= POSITIONS:
                raise ValueError(f"{part.strip()!r}: position 1 to {POSITIONS}")
            if denomination <= 0 or not 0 <= count <= 9999:
                raise ValueError(f"{part.strip()!r}: a denomination above 0 and 0 to 9999 notes")
            if any(c.position == position for c in out):
                raise ValueError(f"position {position} given twice")
            out.append(Cassette(position, denomination, count))
        return cls(sorted(out, key=lambda c: c.position))

    def copy(self) -> Cassettes:
        return Cassettes([Cassette(c.position, c.denomination, c.loaded, c.out, c.retracted) for c in self.cassettes])

    def mix(self, amount: int) -> list[int] | None:
        """Notes per position (index 0 = position 1) for ``amount``, largest denomination first from cassettes with
        notes left; None when the amount cannot be made. Greedy, as dispensers do, stepping back from the greedy
        choice only when it leaves a remainder the smaller notes cannot cover (50.00 and 20.00 make 60.00 as
        3 x 20.00)."""
        order = sorted((c for c in self.cassettes if c.remaining > 0), key=lambda c: -c.denomination)
        return _mix(order, amount, [0] * POSITIONS)

    def offers(self, amounts: Sequence[int]) -> list[int]:
        """The amounts of ``amounts`` the terminal can dispense now."""
        return [amount for amount in amounts if self.mix(amount) is not None]

    def take(self, notes: Sequence[int], *, retracted: bool = False) -> None:
        """Notes left the cassettes (``notes`` per position); ``retracted``: presented, not taken, retracted."""
        for c in self.cassettes:
            n = notes[c.position - 1]
            if n > c.remaining:
                raise ValueError(f"cassette {c.position} has {c.remaining} notes, not {n}")
        for c in self.cassettes:
            n = notes[c.position - 1]
            c.out += n
            if retracted:
                c.retracted += n

    def amount(self, notes: Sequence[int]) -> int:
        """What ``notes`` per position are worth."""
        by_position = {c.position: c.denomination for c in self.cassettes}
        return sum(n * by_position.get(position, 0) for position, n in enumerate(notes, start=1) if n)

    def first_notes(self, notes: Sequence[int], count: int) -> list[int]:
        """The first ``count`` notes of a mix in the order the dispenser picks them (largest denomination first):
        what a dispenser that jammed after ``count`` notes presented."""
        out = [0] * POSITIONS
        left = count
        for c in sorted(self.cassettes, key=lambda c: -c.denomination):
            n = min(notes[c.position - 1], left)
            out[c.position - 1] = n
            left -= n
        return out


def _mix(order: list[Cassette], amount: int, notes: list[int]) -> list[int] | None:
    if amount == 0:
        return notes
    if not order:
        return None
    first, rest = order[0], order[1:]
    most = min(amount // first.denomination, first.remaining)
    for n in range(most, -1, -1):  # greedy first, then fewer of this note if the rest cannot be made
        tried = list(notes)
        tried[first.position - 1] = n
        found = _mix(rest, amount - n * first.denomination, tried)
        if found is not None:
            return found
    return None


def note_counts(notes: Sequence[int]) -> NoteCounts:
    """DE 63 of a dispense: the notes per position (no rejects: the simulator's dispenser rejects none)."""
    return NoteCounts(tuple(notes))
