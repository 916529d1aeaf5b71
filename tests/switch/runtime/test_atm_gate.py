"""The ATMP's gate before a terminal's request is routed (switch.runtime.atmhost.AtmGate.prepare): the surcharge
goes only to networks that carry an acquirer's fee, only on cards that are not the bank's own; the terminal's own
fields never go upstream."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from atmp.model import Cassette, KeySet, Owner, Terminal
from schemes.amex import NETWORK as AMEX
from schemes.atm import SCHEME as ATM
from schemes.visa import NETWORK as VISA
from switch.model.message import Message
from switch.runtime.atmhost import KSN, AtmGate

TERMINAL = Terminal(id="ATM00001", location="Main St", institution="412345", owner=Owner.OWN, currency="840",
                    keys=KeySet(), cassettes=(Cassette(1, "840", 2000, 10),), surcharge=250)


def _gate() -> AtmGate:
    host: Any = SimpleNamespace(terminal=lambda request: TERMINAL, own_destinations=frozenset({"cell-00"}))
    return AtmGate(host, "atm", ATM)


def _link(name: str, network: Any) -> Any:
    return SimpleNamespace(name=name, network=network)


def _withdrawal() -> Message:
    return Message("0200", {3: "011000", 4: "000000005000", 41: "ATM00001", 53: "FFFF9876543210E00001",
                            63: "D0001000000000000"})


def test_a_foreign_card_pays_the_surcharge_where_its_network_carries_one() -> None:
    request = _withdrawal()
    taken = _gate().prepare(request, _link("visa", VISA))
    assert request[28] == "D00000250"
    assert taken == {53: "FFFF9876543210E00001", 63: "D0001000000000000"}
    assert 53 not in request.fields and 63 not in request.fields
    assert request.meta.extra[KSN] == "FFFF9876543210E00001"  # for the PIN translation, and no further


def test_no_surcharge_on_the_banks_own_cards_nor_to_a_network_without_an_acquirer_fee() -> None:
    for link in (_link("cell-00", VISA), _link("amex", AMEX)):
        request = _withdrawal()
        _gate().prepare(request, link)
        assert 28 not in request.fields
