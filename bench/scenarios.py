"""The benchmark's scenarios: small declarative objects (what to start, what to send, which answers are right).

A scenario is a :class:`Scenario`: a request mix (message factories with weights), whether the requests go
through a node or straight to the issuer simulator, TOML appended to the benchmark's node configuration, and
the response codes a correct run may produce. :mod:`bench.harness` turns it into processes and load; adding a
scenario means adding one object to :data:`SCENARIOS`.

Messages follow the ``generic`` scheme (ISO 8583:1987, ASCII fields, binary bitmap, 2-byte length framing):
- purchases are 0200 with processing code 000000 (ISO 8583:1987 DE 3: 00 goods and services, from and to the
  default account), keyed PAN (DE 22 "012"), POS condition "00";
- balance inquiries are 0200 with processing code 310000 (DE 3: 31 balance inquiry) and a zero amount, since
  DE 4 is mandatory in a 0200 (:mod:`schemes.base`); the issuer simulator answers them with DE 54 balances;
- echo tests are 0800 with DE 70 "301" (ISO 8583:1987 network management information code: echo test).

A node answers an acquirer's 0800 itself (:func:`switch.pipeline._decide`: network management from a peer is
answered by the switch, not forwarded) and journals it like any exchange, so ``nonfin-echo`` measures the
node's inbound path, codec and journal without an upstream leg.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from switch.message import Message

PAN = "4761739001010010"  # a demo card (routes to the issuer; the simulator approves it)
MERCHANT = "BULKHEADBENCH01"

MessageFactory = Callable[[str, time.struct_time], Message]


@dataclass(frozen=True)
class Mix:
    """One kind of request in a scenario: ``build(terminal_id, run_start)`` returns it without STAN and RRN
    (the generator stamps those per request)."""

    label: str
    build: MessageFactory
    weight: int = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    mix: tuple[Mix, ...]
    expected_codes: frozenset[str]
    through_node: bool = True  # False: the generator drives the issuer simulator directly (the echo path)
    # Appended to the benchmark node.toml (e.g. a [cells] table); "{var}" is the run's temporary folder.
    node_toml: str = ""
    routes_toml: str | None = None  # None: everything to the issuer simulator (connector "issuer")

    def sequence(self) -> list[Mix]:
        """The mix expanded by weight and interleaved, so every connection sends the same proportions."""
        remaining = {m.label: m.weight for m in self.mix}
        out: list[Mix] = []
        while any(remaining.values()):
            for m in self.mix:
                if remaining[m.label]:
                    out.append(m)
                    remaining[m.label] -= 1
        return out


def _times(now: time.struct_time) -> dict[int, str]:
    # DE 7 transmission date and time MMDDhhmmss (UTC), DE 12 local time hhmmss, DE 13 local date MMDD.
    return {7: time.strftime("%m%d%H%M%S", now), 12: time.strftime("%H%M%S", now),
            13: time.strftime("%m%d", now)}


def purchase(terminal_id: str, now: time.struct_time) -> Message:
    """A 0200 purchase of 10.00 USD with a keyed PAN."""
    return Message("0200", {
        2: PAN, 3: "000000", 4: "000000001000", **_times(now), 18: "5999", 22: "012", 25: "00",
        41: terminal_id, 42: MERCHANT, 49: "840",
    })


def balance_inquiry(terminal_id: str, now: time.struct_time) -> Message:
    """A 0200 balance inquiry (processing code 31, zero amount)."""
    return Message("0200", {
        2: PAN, 3: "310000", 4: "000000000000", **_times(now), 18: "6011", 22: "012", 25: "00",
        41: terminal_id, 42: MERCHANT, 49: "840",
    })


def echo_test(terminal_id: str, now: time.struct_time) -> Message:
    """A 0800 echo test (DE 70 301). DE 41 is not part of an 0800; the generator matches by STAN per
    connection."""
    return Message("0800", {7: _times(now)[7], 70: "301"})


PURCHASE = Mix("purchase 0200", purchase)
BALANCE = Mix("balance 0200/31", balance_inquiry)
ECHO = Mix("echo 0800", echo_test)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("echo-path", "0200 purchases straight to the issuer simulator: the generator's own ceiling",
             (PURCHASE,), frozenset({"00"}), through_node=False),
    Scenario("nonfin-echo", "0800 echo tests answered by the node itself (inbound path, codec, journal)",
             (ECHO,), frozenset({"00"})),
    Scenario("nonfin-balance", "0200 balance inquiries through the node to the issuer simulator",
             (BALANCE,), frozenset({"00"})),
    Scenario("fin-sim", "0200 purchases through the node to the issuer simulator, durable journal",
             (PURCHASE,), frozenset({"00"})),
    Scenario("mixed", "purchases, balance inquiries and echo tests 6:3:1 through the node",
             (Mix(PURCHASE.label, purchase, 6), Mix(BALANCE.label, balance_inquiry, 3), Mix(ECHO.label, echo_test, 1)),
             frozenset({"00"})),
)}

DEFAULT_ORDER = ("echo-path", "nonfin-echo", "nonfin-balance", "fin-sim", "mixed")
