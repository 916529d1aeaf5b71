"""The benchmark's scenarios: small declarative objects (what to start, what to send, which answers are right).

A scenario is a :class:`Scenario`: a request mix (message factories with weights), whether the requests go
through a node or straight to the issuer simulator, TOML appended to the benchmark's node configuration, and
the response codes a correct run may produce. :mod:`bench.harness` turns it into processes and load; adding a
scenario means adding one object to :data:`SCENARIOS`.

Messages follow the ``generic`` scheme (ISO 8583:1987, ASCII fields, binary bitmap, 2-byte length framing):
- purchases are 0200 with processing code 000000 (ISO 8583:1987 DE 3: 00 goods and services, from and to the
  default account), keyed PAN (DE 22 "012"), POS condition "00";
- balance inquiries are 0200 with processing code 310000 (DE 3: 31 balance inquiry) and a zero amount, since
  DE 4 is mandatory in a 0200 (:mod:`schemes.iso87`); the issuer simulator answers them with DE 54 balances;
- echo tests are 0800 with DE 70 "301" (ISO 8583:1987 network management information code: echo test).

A node answers an acquirer's 0800 itself (:func:`switch.exchange.pipeline._decide`: network management from a peer is
answered by the switch, not forwarded) and journals it like any exchange, so ``nonfin-echo`` measures the
node's inbound path, codec and journal without an upstream leg.

Scenarios through the processor cells (``cells=True``) run against cards the harness seeds into the cells
before the node starts (:mod:`bench.cells`): every request is built for one of those cards (:class:`BenchCard`)
and approved by the card's cell, which posts it durably before answering:
- purchases are the scheme-style 0200 above on the ``acquirer`` listener (generic scheme), keyed PAN;
- ATM withdrawals are 0200 with processing code 010000 (01 withdrawal, default account) on the ``atm``
  listener: DE 18 "6011" (ATM), DE 22 "021" (magnetic stripe, PIN entered), DE 35 the card's track 2 with a
  real CVV, DE 52 an ISO 9564 format 0 PIN block under the ATM listener's TPK, which the node translates
  (HSM) to the cells' ZPK and the cell verifies (HSM), and the cell verifies the CVV (HSM) too;
- balance inquiries are 0200 with processing code 300000 (30 balance inquiry, default account: the bench
  cards have one account each, and ISO 8583:1987 account type 10 would name a savings account they do not
  have), answered by the cell with DE 54.

The network scenarios in the acquirer direction (``net-visa``, ``net-unionpay``, ``net-mastercard``, ``net-amex``)
send those ATM withdrawals on other banks' cards of the network (``foreign_cards``: VISA BIN 400000, UnionPay BIN
625094, Mastercard BIN 541333, American Express BIN 371449 (15 digits), as the demo's 4000000000000002,
6250946000000016, 5413330000000019 and 371449635398431) to the node's ATM listener: track 2 and PIN block as
``bulkhead sim acquirer --atm --test-card`` builds them for such a card (:func:`switch.sim.cards.test_card`: CVV
000, since the card's issuer keys are not ours, and the demo PIN under the listener's TPK). The node routes them to
its connector to the network's issuer simulator, translates the PIN block TPK -> the link's ZPK (HSM), and sends
them in the network's dialect (:class:`Upstream`); the simulator approves them.

The ATM fleet (``atm-fleet``, :mod:`bench.atmfleet`) is the bank's own ATMs through the node's ATMP: the load is
``bulkhead sim atm``, a fleet of terminals each with its own connection, TMK and key exchange, sending the ATM
interface's withdrawals, inquiries, mini statements and PIN changes on the seeded cards and confirming or reversing
every withdrawal's cash (0220/0420) through its own store and forward; it runs only on a node with an ATMP (the
scenario checks and is skipped otherwise).

The issuer direction (``origin``: ``net-visa-issuer``, ``net-unionpay-issuer``, ``net-mastercard-issuer``,
``net-amex-issuer``) turns this around: the network is the server the node's connector connects to, so the load
comes from the network's simulator (``bulkhead sim network``), which originates purchases on the seeded cards down
that connection in its dialect, through the compiled codec (BCD/EBCDIC and the BASE I header; the 46-byte CUPS
header; Mastercard's EBCDIC with DE 48, 61 and 63; American Express's ISO 8583:1993 in EBCDIC, translated to and
from ISO 8583:1987). They are fin-cells' purchases: 0200, processing code 000000, 10.00 USD (``PURCHASE_AMOUNT``,
the simulator's ``--amount``), keyed PAN (DE 22 012), no PIN; DE 32/33 and the network's own fields are the
simulator's (:mod:`switch.sim.originate`). The scenario's ``mix`` is then only the purchase each cell is probed with
before the network starts (:mod:`bench.origin`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from processors.cardnumber import luhn_check_digit
from switch.model.message import Message

PAN = "4761739001010010"  # a demo card (routes to the issuer; the simulator approves it)
MERCHANT = "BULKHEADBENCH01"

ACQUIRER = "acquirer"  # the benchmark node's generic listener (scheme-style traffic)
ATM = "atm"  # the benchmark node's ATM listener (scheme "atm", PIN blocks under its TPK)
PURCHASE_AMOUNT = 1000  # minor units: 10.00 USD
WITHDRAWAL_AMOUNT = 2000  # 20.00 USD


@dataclass(frozen=True)
class BenchCard:
    """A card seeded into a cell for the benchmark, or another bank's card of a network (``kind`` "foreign",
    ``cell`` -1). ``track2`` and ``pin_block`` are test data under the public test LMK (kept in memory only;
    never printed or written)."""

    cell: int
    kind: str  # "debit", "credit" or "foreign"
    pan: str
    track2: str  # ISO 7813 track 2 with the CVV computed from the catalogue's CVK (CVV 000: a foreign card)
    pin_block: bytes  # DE 52: the card's PIN, ISO format 0 under the ATM listener's TPK

    def __repr__(self) -> str:  # never a clear PAN, track or PIN block in a traceback or log
        return f"BenchCard(cell={self.cell}, kind={self.kind}, last4={self.pan[-4:]})"


# ``build(terminal_id, run_start, card)``: the request without STAN and RRN (the generator stamps those per
# request); ``card`` is None for scenarios without cells.
MessageFactory = Callable[[str, time.struct_time, BenchCard | None], Message]


@dataclass(frozen=True)
class Mix:
    """One kind of request in a scenario, sent on ``listener`` of the node."""

    label: str
    build: MessageFactory
    weight: int = 1
    listener: str = ACQUIRER
    needs_card: bool = False  # built per seeded card (cells scenarios)
    at_cell: bool = False  # answered by a cell, which records an approved Txn row for every "00"


@dataclass(frozen=True)
class Flood:
    """Hostile connections beside the scenario's load (bench.flood): ``rate`` malformed frames a second over
    ``connections`` connections to the acquirer listener, for the warm-up and the measured window."""

    connections: int = 3
    rate: float = 2300.0
    step: float = 0.01  # seconds between a connection's writes (bench.flood.FloodSpec.step)


@dataclass(frozen=True)
class Upstream:
    """The network the issuer simulator speaks and the node's connector to it: its scheme, the connector's framing
    (a TOML inline table) and the simulator's (``--framing`` and ``--framing-opt`` values)."""

    scheme: str = "generic"
    connector_framing: str = '{ kind = "binary2" }'
    sim_framing: str = "binary2"
    sim_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class FleetLoad:
    """The ATM fleet simulator as the load (bench.atmfleet): its transaction mix (``--mix``), how often a withdrawal's
    cash does not go out as planned, how often a confirmation's first transmission is lost (sent again as 0221), and
    every how many terminals one MACs. The mix leaves out transfers and deposits: the bench cards have one account
    each (transfers between two accounts would be declined 53) and credit cards take no deposits. No card capture:
    a captured card is blocked and would turn the rest of the run into declines."""

    mix: str = "withdrawal=75,inquiry=15,statement=5,pinchange=5"
    partial_rate: float = 0.02
    no_take_rate: float = 0.01
    lost_confirm_rate: float = 0.02
    advice_timeout_s: float = 2.0
    mac_every: int = 4


GENERIC = Upstream()
# The demo's identities (conf/demo/node.toml): the bank's station/id on one side, the network's on the other.
VISA = Upstream("visa", '{ kind = "visa", source_station = "123456", destination_station = "400000" }', "visa",
                ('source_station="400000"', 'destination_station="123456"'))
UNIONPAY = Upstream("unionpay", '{ kind = "unionpay", source_id = "04071234", destination_id = "00010000" }',
                    "unionpay", ('source_id="00010000"', 'destination_id="04071234"'))
MASTERCARD = Upstream("mastercard", '{ kind = "binary2" }', "binary2")
AMEX = Upstream("amex", '{ kind = "binary2" }', "binary2", ("length_includes_prefix=true",))


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
    cells: bool = False  # seed cards into processor cells and route to them (no issuer simulator)
    flood: Flood | None = None  # a hostile peer flooding the acquirer listener with malformed frames
    upstream: Upstream = GENERIC  # the network between the node and the issuer simulator
    origin: Upstream | None = None  # issuer direction: this network's simulator originates the load (bench.origin)
    # Other banks' cards the mix's ATM withdrawals are built for (no cells): out over ``upstream``, PIN translated.
    foreign_cards: tuple[str, ...] = ()
    # The ATM fleet simulator is the load (bench.atmfleet); the mix is then only the purchase each cell is probed with.
    fleet: FleetLoad | None = None

    def sequence(self, listener: str | None = None) -> list[Mix]:
        """The mix (of one ``listener``, or all of it) expanded by weight and interleaved, so every connection
        sends the same proportions."""
        mix = [m for m in self.mix if listener is None or m.listener == listener]
        remaining = {m.label: m.weight for m in mix}
        out: list[Mix] = []
        while any(remaining.values()):
            for m in mix:
                if remaining[m.label]:
                    out.append(m)
                    remaining[m.label] -= 1
        return out

    def listeners(self) -> list[str]:
        """The node listeners this scenario sends to, in the order of first use."""
        return list(dict.fromkeys(m.listener for m in self.mix))


def foreign_pans(bin_: str, first: str, count: int, length: int = 16) -> tuple[str, ...]:
    """``count`` PANs of ``length`` digits of another bank's BIN: ``bin_``, then digits counting up from ``first``,
    then the Luhn check digit (ISO/IEC 7812-1 annex B)."""
    width = length - len(bin_) - 1
    payloads = [f"{bin_}{int(first) + i:0{width}d}" for i in range(count)]
    return tuple(p + luhn_check_digit(p) for p in payloads)


# Other banks' cards the demo routes to its networks (conf/demo/routes.toml); the first of each is the demo's own
# (README "Networks": 4000000000000002, 6250946000000016). Eight each: enough that the PAN is not one constant.
VISA_CARDS = foreign_pans("400000", "000000000", 8)
UNIONPAY_CARDS = foreign_pans("625094", "600000001", 8)
MASTERCARD_CARDS = foreign_pans("541333", "000000001", 8)
AMEX_CARDS = foreign_pans("371449", "63539843", 8, length=15)


def _times(now: time.struct_time) -> dict[int, str]:
    # DE 7 transmission date and time MMDDhhmmss (UTC), DE 12 local time hhmmss, DE 13 local date MMDD.
    return {7: time.strftime("%m%d%H%M%S", now), 12: time.strftime("%H%M%S", now),
            13: time.strftime("%m%d", now)}


def _pan(card: BenchCard | None) -> str:
    return card.pan if card is not None else PAN


def purchase(terminal_id: str, now: time.struct_time, card: BenchCard | None = None) -> Message:
    """A 0200 purchase of 10.00 USD with a keyed PAN (the demo card, or ``card``)."""
    return Message("0200", {
        2: _pan(card), 3: "000000", 4: f"{PURCHASE_AMOUNT:012d}", **_times(now), 18: "5999", 22: "012",
        25: "00", 41: terminal_id, 42: MERCHANT, 49: "840",
    })


def balance_inquiry(terminal_id: str, now: time.struct_time, card: BenchCard | None = None) -> Message:
    """A 0200 balance inquiry (processing code 31, zero amount) for the issuer simulator."""
    return Message("0200", {
        2: _pan(card), 3: "310000", 4: "000000000000", **_times(now), 18: "6011", 22: "012", 25: "00",
        41: terminal_id, 42: MERCHANT, 49: "840",
    })


def cell_balance_inquiry(terminal_id: str, now: time.struct_time, card: BenchCard | None = None) -> Message:
    """A 0200 balance inquiry of the card's default account (processing code 300000) for its cell."""
    if card is None:
        raise ValueError("a cell balance inquiry is built for a seeded card")
    return Message("0200", {
        2: card.pan, 3: "300000", 4: "000000000000", **_times(now), 18: "5999", 22: "012", 25: "00",
        41: terminal_id, 42: MERCHANT, 49: "840",
    })


def atm_withdrawal(terminal_id: str, now: time.struct_time, card: BenchCard | None = None) -> Message:
    """An ATM 0200 withdrawal of 20.00 USD (ATM scheme: the PAN comes from track 2) with the card's PIN."""
    if card is None:
        raise ValueError("an ATM withdrawal is built for a seeded card (track 2 and PIN block)")
    return Message("0200", {
        3: "010000", 4: f"{WITHDRAWAL_AMOUNT:012d}", **_times(now), 18: "6011", 22: "021", 35: card.track2,
        41: terminal_id, 49: "840", 52: card.pin_block,
    })


def echo_test(terminal_id: str, now: time.struct_time, card: BenchCard | None = None) -> Message:
    """A 0800 echo test (DE 70 301). DE 41 is not part of an 0800; the generator matches by STAN per
    connection."""
    return Message("0800", {7: _times(now)[7], 70: "301"})


PURCHASE = Mix("purchase 0200", purchase)
BALANCE = Mix("balance 0200/31", balance_inquiry)
ECHO = Mix("echo 0800", echo_test)
CELL_PURCHASE = Mix("purchase 0200", purchase, needs_card=True, at_cell=True)
CELL_WITHDRAWAL = Mix("ATM withdrawal 0200/01+PIN", atm_withdrawal, listener=ATM, needs_card=True, at_cell=True)
FOREIGN_WITHDRAWAL = Mix("ATM withdrawal 0200/01+PIN", atm_withdrawal, listener=ATM, needs_card=True)
CELL_BALANCE = Mix("balance 0200/30", cell_balance_inquiry, needs_card=True, at_cell=True)

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
    Scenario("net-visa", "ATM withdrawals on VISA cards (track 2, PIN): PIN TPK->ZPK, out over a VISA link (BASE I "
             "header, BCD/EBCDIC) to a VISA issuer simulator and back", (FOREIGN_WITHDRAWAL,), frozenset({"00"}),
             upstream=VISA, foreign_cards=VISA_CARDS),
    Scenario("net-unionpay", "ATM withdrawals on UnionPay cards (track 2, PIN): PIN TPK->ZPK, out over a UnionPay "
             "link (46-byte CUPS header) to a UnionPay issuer simulator and back", (FOREIGN_WITHDRAWAL,),
             frozenset({"00"}), upstream=UNIONPAY, foreign_cards=UNIONPAY_CARDS),
    Scenario("net-mastercard", "ATM withdrawals on Mastercard cards (track 2, PIN): PIN TPK->ZPK, out over a "
             "Mastercard link (EBCDIC, DE 48 TCC and DE 61 added) to a Mastercard issuer simulator and back",
             (FOREIGN_WITHDRAWAL,), frozenset({"00"}), upstream=MASTERCARD, foreign_cards=MASTERCARD_CARDS),
    Scenario("net-amex", "ATM withdrawals on American Express cards (track 2, PIN): PIN TPK->ZPK, out over an "
             "American Express link (ISO 8583:1993 in EBCDIC) to an American Express issuer simulator and back",
             (FOREIGN_WITHDRAWAL,), frozenset({"00"}), upstream=AMEX, foreign_cards=AMEX_CARDS),
    Scenario("flood", "fin-sim's purchases while 3 connections send 2,300 malformed 0200s a second (each "
             "answered 30); compare its p99 with fin-sim at the same --rate", (PURCHASE,), frozenset({"00"}),
             flood=Flood()),
    Scenario("flood-burst", "as flood, but each hostile connection writes a quarter second's garbage at once "
             "(about 190 frames per write)", (PURCHASE,), frozenset({"00"}), flood=Flood(step=0.25)),
    Scenario("fin-cells", "0200 purchases (generic listener) approved and posted by the debit/credit cells",
             (CELL_PURCHASE,), frozenset({"00"}), cells=True),
    Scenario("net-visa-issuer", "0200 purchases VISA originates (BASE I header, BCD/EBCDIC) down the node's "
             "connector, approved and posted by the cells (keyed, no PIN, as fin-cells)", (CELL_PURCHASE,),
             frozenset({"00"}), cells=True, origin=VISA),
    Scenario("net-unionpay-issuer", "0200 purchases UnionPay originates (46-byte CUPS header) down the node's "
             "connector, approved and posted by the cells (keyed, no PIN, as fin-cells)", (CELL_PURCHASE,),
             frozenset({"00"}), cells=True, origin=UNIONPAY),
    Scenario("net-mastercard-issuer", "0200 purchases Mastercard originates (EBCDIC, DE 48/61/63) down the node's "
             "connector, approved and posted by the cells (keyed, no PIN, as fin-cells)", (CELL_PURCHASE,),
             frozenset({"00"}), cells=True, origin=MASTERCARD),
    Scenario("net-amex-issuer", "1200 purchases American Express originates (ISO 8583:1993, EBCDIC) down the node's "
             "connector, approved and posted by the cells (keyed, no PIN, as fin-cells)", (CELL_PURCHASE,),
             frozenset({"00"}), cells=True, origin=AMEX),
    Scenario("atm-fleet", "a fleet of simulated ATMs, each with its own keys (key exchange, MAC on every 4th): "
             "withdrawals, inquiries, statements, PIN changes through the ATMP to the cells; dispense confirmations, "
             "partial dispenses, retracts and lost confirmations through the terminals' store and forward; the "
             "host's cassette counts checked against the terminals'", (CELL_PURCHASE,), frozenset({"00"}), cells=True,
             fleet=FleetLoad()),
    Scenario("atm-pin", "ATM 0200 withdrawals, track 2 CVV + PIN: node translates TPK->ZPK, cell verifies",
             (CELL_WITHDRAWAL,), frozenset({"00"}), cells=True),
    Scenario("balance-cells", "0200 balance inquiries (30) answered by the cells (non-financial, DE 54)",
             (CELL_BALANCE,), frozenset({"00"}), cells=True),
    Scenario("mixed-cells", "cells: purchases, ATM withdrawals with PIN, balance inquiries, echo 5:2:2:1",
             (Mix(CELL_PURCHASE.label, purchase, 5, needs_card=True, at_cell=True),
              Mix(CELL_WITHDRAWAL.label, atm_withdrawal, 2, listener=ATM, needs_card=True, at_cell=True),
              Mix(CELL_BALANCE.label, cell_balance_inquiry, 2, needs_card=True, at_cell=True),
              Mix(ECHO.label, echo_test, 1)),
             frozenset({"00"}), cells=True),
)}

DEFAULT_ORDER = ("echo-path", "nonfin-echo", "nonfin-balance", "fin-sim", "net-visa", "net-unionpay",
                 "net-mastercard", "net-amex", "net-visa-issuer", "net-unionpay-issuer", "net-mastercard-issuer",
                 "net-amex-issuer", "mixed", "fin-cells", "atm-pin", "atm-fleet")
