"""The stand-in card status cache (DESIGN §5): what the switch learned about cards from their issuers' answers.

When a destination with a stand-in policy answers a card-level decline (04 pick up: a card retained by an ATM,
14 no such card, 41 lost, 43 stolen, 54 expired, 57 not permitted, 62 restricted, 75 PIN tries exceeded), the
switch remembers it for that card, by keyed PAN hash only; an approval for the card forgets it. While the
destination is away, the switch does not stand in for a card it knows is declined there: without this, a lost
card would be approved in stand-in up to the policy's limit as soon as its issuer is down.

Memory only and bounded (least recently updated cards leave first): after a restart the cache is empty, and a
card blocked at the issuer but not used since is not known. A production switch would also take the issuers'
negative-card files; this is the part the switch can learn by itself.
"""

from __future__ import annotations

from collections import OrderedDict

# ISO 8583:1987 field 39 answers that are about the card itself, not this transaction's amount or PIN.
CARD_LEVEL_DECLINES = frozenset({"04", "14", "41", "43", "54", "57", "62", "75"})
APPROVALS = frozenset({"00", "08", "10", "11", "16"})


class CardStatusCache:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._declined: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._declined)

    def record(self, pan_hash: str, code: str | None) -> None:
        """Learn from an issuer's answer ``code`` for the card with this keyed PAN hash."""
        if code in CARD_LEVEL_DECLINES:
            self._declined[pan_hash] = code
            self._declined.move_to_end(pan_hash)
            if len(self._declined) > self.capacity:
                self._declined.popitem(last=False)
        elif code in APPROVALS:
            self._declined.pop(pan_hash, None)

    def declined(self, pan_hash: str) -> str | None:
        """The card-level decline the issuer last gave this card, or None."""
        return self._declined.get(pan_hash)
