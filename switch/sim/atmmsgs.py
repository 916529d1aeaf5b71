"""The messages a simulated ATM sends, built as the ATM interface lays them out (README "ATM interface",
atm-interface.md), and the dispense outcome of an approved withdrawal. Pure: the caller passes the time, the
terminal's numbering, its PIN blocks and a random generator.

Every message carries DE 41 (the terminal id) and DE 11 (the terminal's own STAN); requests and advices carry DE 7
(transmission time, UTC), DE 12/13 (local time and date) and DE 37 (retrieval reference number).

- 0200 (:func:`request`): DE 3 per :class:`~switch.sim.atmfields.Kind`, DE 4 (zeros for an inquiry or a statement),
  DE 18 6011 (ATM), DE 22 021 (magnetic stripe read, PIN entered), DE 35 track 2, DE 49, DE 52 the PIN block under
  the terminal's TPK; a PIN change also DE 125, the new PIN block as 16 hex characters under the same key.
- 0220 (:func:`confirmation`): the dispense confirmation: DE 2, 3 and 4 of the withdrawal, DE 90 naming it (its MTI,
  STAN and DE 7), DE 63 the notes per cassette, DE 60 ``C`` when the card was captured in the session.
- 0420 (:func:`reversal`): the terminal's report that the cash did not go out, wholly or partly: DE 39 the reason
  (22 dispenser fault, RT presented and retracted, 68 no answer from the host), DE 90, DE 95 with the amount
  dispensed on a partial dispense, DE 63 the notes that left the cassettes. The card travels as its PAN (DE 2): a
  terminal keeps no track data once the request is answered.
- Repeats (0221, 0421) are the same message under the repeat MTI: same STAN, same DE 90.
- 0800 (:func:`network_management`): DE 7, 11, 41, 70 (and DE 48 for a key confirmation or a device status).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from switch.model.message import Message
from switch.sim.atmcash import Cassettes
from switch.sim.atmfields import (
    REASON_DISPENSER_FAULT,
    REASON_RETRACTED,
    Kind,
    NoteCounts,
    original_data,
    replacement_amounts,
)

STAN_MODULO = 999_999  # STANs run 000001..999999
CAPTURED = "C"  # DE 60 of a confirmation: the card was retained in the session


class Numbering:
    """A terminal's STAN sequence (from a random start, so two runs in a day do not reuse the pairs a host's
    duplicate check keys on) and its retrieval reference numbers: the day of the year (3) and the hour (2) of the
    transaction, the terminal's STAN (6) and one digit of the terminal's number."""

    def __init__(self, rng: random.Random, terminal_number: int) -> None:
        self._next = rng.randrange(STAN_MODULO)
        self._digit = terminal_number % 10

    def stan(self) -> str:
        self._next = self._next % STAN_MODULO + 1
        return f"{self._next:06d}"

    def rrn(self, stan: str, now: datetime) -> str:
        return f"{now.timetuple().tm_yday:03d}{now.hour:02d}{stan}{self._digit}"


@dataclass(frozen=True)
class Card:
    """A card as the terminal reads it: the PAN (kept out of ``repr``) and track 2."""

    pan: str
    track2: str

    def __repr__(self) -> str:
        return f"Card(last4={self.pan[-4:]})"


def _times(now: datetime) -> dict[int, str]:
    local = now.astimezone()
    return {7: now.strftime("%m%d%H%M%S"), 12: local.strftime("%H%M%S"), 13: local.strftime("%m%d")}


def request(kind: Kind, terminal_id: str, stan: str, rrn: str, now: datetime, card: Card, *, amount: int,
            currency: str, pin_block: bytes, new_pin_block: bytes | None = None) -> Message:
    """The customer's 0200."""
    if (kind is Kind.PINCHANGE) != (new_pin_block is not None):
        raise ValueError("a PIN change, and only a PIN change, carries a new PIN block")
    if amount and kind in (Kind.INQUIRY, Kind.STATEMENT, Kind.PINCHANGE):
        raise ValueError(f"a {kind.value} carries a zero amount")
    fields: dict[int, str | bytes] = {
        3: kind.processing_code, 4: f"{amount:012d}",
        **_times(now), 11: stan, 18: "6011", 22: "021", 35: card.track2, 37: rrn, 41: terminal_id,
        49: currency, 52: pin_block,
    }
    if new_pin_block is not None:
        fields[125] = new_pin_block.hex().upper()
    return Message("0200", fields)


def _advice(mti: str, original: Message, terminal_id: str, stan: str, now: datetime, card: Card) -> Message:
    fields: dict[int, str | bytes] = {
        2: card.pan, 3: original[3], 4: original[4], 7: now.strftime("%m%d%H%M%S"), 11: stan,
        12: original[12], 13: original[13], 37: original[37], 41: terminal_id, 49: original[49],
        90: original_data(original.mti, str(original[11]), str(original[7])),
    }
    return Message(mti, fields)


def confirmation(original: Message, terminal_id: str, stan: str, now: datetime, card: Card, notes: NoteCounts, *,
                 captured: bool = False) -> Message:
    """The 0220 dispense confirmation of an approved withdrawal: the notes went out and were taken."""
    msg = _advice("0220", original, terminal_id, stan, now, card)
    msg[63] = notes.to_de63()
    if captured:
        msg[60] = CAPTURED
    return msg


def reversal(original: Message, terminal_id: str, stan: str, now: datetime, card: Card, *, reason: str,
             dispensed: int = 0, notes: NoteCounts | None = None) -> Message:
    """The 0420 reversal advice: ``dispensed`` (minor units) went out to the customer (DE 95 when above zero)."""
    msg = _advice("0420", original, terminal_id, stan, now, card)
    msg[39] = reason
    if dispensed:
        msg[95] = replacement_amounts(dispensed)
    if notes is not None:
        msg[63] = notes.to_de63()
    return msg


def repeat(msg: Message) -> Message:
    """The repeat of an advice (0220 -> 0221, 0420 -> 0421): the same message, the same STAN."""
    if msg.mti[2] not in "24" or msg.mti[3] not in "01":
        raise ValueError(f"{msg.mti} is no advice")
    out = msg.copy()
    out.mti = msg.mti[:3] + "1"
    return out


def network_management(code: str, terminal_id: str, stan: str, now: datetime, de48: str | None = None) -> Message:
    fields: dict[int, str | bytes] = {7: now.strftime("%m%d%H%M%S"), 11: stan, 41: terminal_id, 70: code}
    if de48 is not None:
        fields[48] = de48
    return Message("0800", fields)


@dataclass(frozen=True)
class Rates:
    """How often each dispense outcome happens to an approved withdrawal (each 0..1)."""

    partial: float = 0.0  # the dispenser jams: part or none of the cash went out (0420 reason 22)
    no_take: float = 0.0  # presented, not taken, retracted (0420 reason RT)
    capture: float = 0.0  # the card is retained (DE 60 C on the confirmation)
    lost_confirm: float = 0.0  # the confirmation's first transmission is lost (sent again as 0221)

    def __post_init__(self) -> None:
        for name in ("partial", "no_take", "capture", "lost_confirm"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} rate: 0 to 1")
        if self.partial + self.no_take > 1.0:
            raise ValueError("partial and no-take rates add up to more than 1")


@dataclass(frozen=True)
class Dispense:
    """What the dispenser did with an approved withdrawal's notes: ``kind`` dispensed (all taken), partial (some
    went out), none (the dispenser failed before the first note) or retracted (presented, not taken); ``notes`` per
    cassette that left the cassettes, ``amount`` what the customer got."""

    kind: str
    notes: list[int]
    amount: int
    captured: bool = False
    lost: bool = False

    @property
    def reason(self) -> str | None:
        """DE 39 of the 0420 this outcome is reported with; None: a confirmation (0220)."""
        return {"partial": REASON_DISPENSER_FAULT, "none": REASON_DISPENSER_FAULT,
                "retracted": REASON_RETRACTED}.get(self.kind)


def dispense(rng: random.Random, rates: Rates, cassettes: Cassettes, notes: list[int]) -> Dispense:
    """Draw the outcome of dispensing ``notes`` (the mix for the approved amount)."""
    draw = rng.random()
    total = sum(notes)
    if draw < rates.partial:
        presented = cassettes.first_notes(notes, rng.randrange(total))  # 0 .. total-1 notes before the jam
        return Dispense("partial" if sum(presented) else "none", presented, cassettes.amount(presented))
    if draw < rates.partial + rates.no_take:
        return Dispense("retracted", list(notes), 0)
    return Dispense("dispensed", list(notes), cassettes.amount(notes), captured=rng.random() < rates.capture,
                    lost=rng.random() < rates.lost_confirm)
