"""What the terminals of a fleet share: the cards their customers carry (:class:`CardPool`), when the next customer
walks up (:class:`Customers`), the measured window, and how every terminal behaves (:class:`TerminalSettings`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import trio

from switch.sim.atmcash import DEFAULT_AMOUNTS
from switch.sim.atmfields import DEFAULT_MIX, Kind
from switch.sim.atmmsgs import Card, Rates

DEPOSIT_AMOUNTS = (2000, 5000, 10000)  # what customers put in (minor units)
TRANSFER_AMOUNTS = (1000, 2500, 5000)


@dataclass
class SimCard:
    """A card of the fleet's pool: its PAN and track 2 (test data, kept out of ``repr``) and the PIN it has now."""

    card: Card
    pin: str = field(repr=False)
    original_pin: str = field(repr=False)

    def __repr__(self) -> str:
        return f"SimCard(last4={self.card.pan[-4:]})"


class CardPool:
    """The cards the fleet's customers carry. A card is in one ATM at a time (a customer's transactions on one card
    never cross, so a PIN change and the next withdrawal on it happen in order); a captured card leaves the pool."""

    def __init__(self, cards: list[SimCard], rng: random.Random) -> None:
        self.free = list(cards)
        self.busy = 0
        self.captured: list[SimCard] = []
        self.retired: list[SimCard] = []  # a PIN change left unanswered: its PIN is not known for sure
        self._rng = rng
        self._returned = trio.Event()

    async def take(self) -> SimCard | None:
        """A free card (waiting for one when every card is in an ATM); None when none is left at all."""
        while not self.free:
            if not self.busy:
                return None
            await self._returned.wait()
        card = self.free.pop(self._rng.randrange(len(self.free)))
        self.busy += 1
        return card

    def give_back(self, card: SimCard, *, captured: bool = False, retired: bool = False) -> None:
        self.busy -= 1
        if captured:
            self.captured.append(card)
        elif retired:
            self.retired.append(card)
        else:
            self.free.append(card)
        self._returned.set()
        self._returned = trio.Event()


class Customers(Protocol):
    """When the next customer walks up: True, or False once the run is over."""

    async def next(self) -> bool: ...


@dataclass
class Window:
    """The measured window in trio time (after the warm-up)."""

    start: float = math.inf
    end: float = math.inf

    def inside(self, when: float) -> bool:
        return self.start <= when < self.end


@dataclass(frozen=True)
class TerminalSettings:
    currency: str = "840"
    timeout_s: float = 30.0  # how long a terminal waits for a 0210 before it reverses
    advice_timeout_s: float = 5.0  # how long it waits for a 0230/0430 before it sends the advice again
    retry_s: float = 1.0  # pause before an advice the host answered "not now" (58, 63, 91, 96) goes again
    echo_every_s: float = 30.0  # 0800/301 (0: never); the host's RK rides on its answers
    reconnect_max_s: float = 2.0  # backoff ceiling between connection attempts
    rates: Rates = field(default_factory=Rates)
    mix: Mapping[Kind, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    amounts: tuple[int, ...] = DEFAULT_AMOUNTS
    new_pin: str | None = field(default=None, repr=False)  # a PIN change alternates the card's PIN with this one
