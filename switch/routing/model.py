"""Values of the routing table: what a route says, what a query asks, what the table answers.

Everything here is frozen. A table is built once from a validated file and never changes; a reload builds a
new one and the node swaps the reference (DESIGN.md section 5), so a transaction routed on the old table
finishes on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from switch.model.codes import ResponseCode
from switch.model.masking import mask_pan

Strategy = Literal["single", "primary_secondary", "round_robin"]
STRATEGIES: Final[tuple[Strategy, ...]] = ("single", "primary_secondary", "round_robin")

Action = Literal["forward", "reject"]
ACTIONS: Final[tuple[Action, ...]] = ("forward", "reject")

# ISO 8583:1987 answers "92: financial institution or intermediate network facility cannot be found for
# routing" when the switch has nowhere to send a request.
NO_ROUTE_CODE: Final[str] = ResponseCode.NO_ROUTE.value

# Names a decision carries when no route matched. Route names cannot contain parentheses, so these never
# collide with a configured route.
DEFAULT_ROUTE: Final[str] = "(default)"
UNROUTED: Final[str] = "(no route)"


@dataclass(frozen=True, slots=True, repr=False)
class RouteQuery:
    """The facts of one request that routing looks at.

    ``pan`` is field 2 (or the PAN of track 2); ``processing_code`` is field 3; ``mti`` the four-digit MTI;
    ``currency`` field 49 (ISO 4217 numeric); ``amount`` field 4 in minor units. ``repr`` masks the PAN.
    """

    pan: str | None
    processing_code: str | None
    mti: str
    source_link: str
    currency: str | None = None
    amount: int | None = None

    def __repr__(self) -> str:
        pan = mask_pan(self.pan) if self.pan else self.pan
        return (
            f"RouteQuery(pan={pan!r}, processing_code={self.processing_code!r}, mti={self.mti!r}, "
            f"source_link={self.source_link!r}, currency={self.currency!r}, amount={self.amount!r})"
        )


# Stand-in covers only the two request MTIs that have an advice to report it with (ISO 8583:1987 MTI
# function digit 2): 0100 -> 0120 authorization advice, 0200 -> 0220 financial transaction advice.
STAND_IN_MTIS: Final[tuple[str, ...]] = ("0100", "0200")


@dataclass(frozen=True, slots=True)
class StandIn:
    """A destination's stand-in (STIP) policy: what the switch may approve on the issuer's behalf when the
    destination is down or silent past its timeout (DESIGN.md section 5).

    A request is covered when its MTI is in ``mtis``, the transaction type (field 3, first two digits) in
    ``processing_codes``, field 49 equals ``currency`` and field 4 is at most ``max_amount`` minor units of that
    currency. A request carrying a PIN block (field 52) is never covered: the switch holds no PIN verification
    data for the issuer, and approving an unverified PIN would turn every wrong PIN into an approval.
    """

    max_amount: int
    mtis: tuple[str, ...]
    processing_codes: tuple[str, ...]
    currency: str

    def covers(self, mti: str, processing_code: str | None, currency: str | None, amount: int | None,
               has_pin: bool) -> bool:
        """Pure: whether this policy lets the switch approve the request itself."""
        return (
            not has_pin
            and mti in self.mtis
            and processing_code is not None
            and processing_code[:2] in self.processing_codes
            and currency == self.currency
            and amount is not None
            and 0 <= amount <= self.max_amount
        )

    def text(self) -> str:
        """One line for ``routes show`` and the reload diff."""
        return (f"stand-in {', '.join(self.mtis)} type {', '.join(self.processing_codes)} up to "
                f"{self.max_amount} (minor units of {self.currency})")


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a route sends requests: one link, or a pool of links chosen by ``strategy``; ``stand_in`` is
    the policy for when none of them answers (None: no stand-in, the switch answers 91)."""

    name: str
    links: tuple[str, ...]
    strategy: Strategy
    timeout_ms: int | None = None
    stand_in: StandIn | None = None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The table's answer. ``destination`` is None exactly when the request is to be answered
    ``response_code`` (92) by the switch itself."""

    route: str
    destination: Destination | None
    response_code: str | None


@dataclass(frozen=True, slots=True)
class BinEntry:
    """One entry of a route's ``bins``: a prefix (``low == high``) or a range of equal-length bounds.

    A PAN matches when its first ``length`` digits lie in ``low..high``; the match is ``length`` digits long,
    so ``"400000-400999"`` is as specific as the six-digit prefix ``"400000"``.
    """

    low: str
    high: str

    @property
    def length(self) -> int:
        return len(self.low)

    @property
    def text(self) -> str:
        """The canonical spelling: a lone prefix for ``low == high``, otherwise ``low-high``."""
        return self.low if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True, slots=True)
class Route:
    """One ``[[routes]]`` entry, validated. ``None`` for a criterion means "any".

    ``position`` is the route's index in the file (ties between equally long BIN matches go to the lower
    one); ``line`` is where its ``[[routes]]`` header is. Neither takes part in equality, so two tables with
    the same routes compare equal route by route whatever their layout.
    """

    name: str
    bins: tuple[BinEntry, ...] | None
    processing_codes: tuple[str, ...] | None
    mti_classes: tuple[str, ...] | None
    source_links: tuple[str, ...] | None
    currencies: tuple[str, ...] | None
    amount_min: int | None
    amount_max: int | None
    action: Action
    destination: str | None
    position: int = field(default=0, compare=False)
    line: int | None = field(default=None, compare=False)

    def criteria_key(self) -> tuple[object, ...]:
        """Every criterion except the BINs, order-insensitive: two routes with equal keys and overlapping
        BINs of one length are ambiguous (the later one could never be chosen there)."""

        def norm(values: tuple[str, ...] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return (
            norm(self.processing_codes),
            norm(self.mti_classes),
            norm(self.source_links),
            norm(self.currencies),
            self.amount_min,
            self.amount_max,
        )
