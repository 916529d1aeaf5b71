"""The README's demo cards go where the README says, by the demo's own routing table: the bank's own cards to
the cell their digits 7-8 name, the "other banks'" cards to the issuer simulator (or the reject rule)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from switch.routing import RouteQuery
from switch.routing.parse import load_routes

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
TABLE = load_routes(ROOT / "conf" / "demo" / "routes.toml")


def _cards(after: str) -> list[str]:
    """The PANs in the first column of the first table after the line starting with ``after``."""
    text = README[README.index(after):]
    table = text[text.index("\n|"):text.index("\n\n", text.index("\n|"))]
    return sorted({m.group(1) for m in re.finditer(r"^\| (\d{13,19}) \|", table, re.M)})


OWN = _cards("The bank's own demo cards live in the cells")
OTHER = _cards("Other demo cards belong to \"other banks\"")
NETWORK = _cards("Cards of other banks on the card networks")


def test_the_readme_lists_both_kinds_of_demo_card() -> None:
    assert len(OWN) >= 5 and len(OTHER) >= 7
    assert "5201230000000009" in OTHER


@pytest.mark.parametrize("pan", OWN)
def test_the_banks_own_demo_cards_route_to_their_cell(pan: str) -> None:
    decision = TABLE.route(RouteQuery(pan=pan, processing_code="000000", mti="0200", source_link="acquirer"))
    assert decision.destination is not None and decision.destination.name == f"cell-{pan[6:8]}"


@pytest.mark.parametrize("pan", OTHER)
def test_other_banks_demo_cards_never_reach_a_cell(pan: str) -> None:
    decision = TABLE.route(RouteQuery(pan=pan, processing_code="000000", mti="0200", source_link="acquirer"))
    if pan.startswith("999999"):
        assert (decision.route, decision.destination, decision.response_code) == ("blocked-bin", None, "92")
    else:
        assert decision.destination is not None and decision.destination.name == "issuer"
        assert decision.route == "demo-cards"


@pytest.mark.parametrize("pan", NETWORK)
def test_other_banks_network_cards_go_to_the_network_of_their_bin(pan: str) -> None:
    decision = TABLE.route(RouteQuery(pan=pan, processing_code="000000", mti="0200", source_link="acquirer"))
    network = {"4": "visa", "62": "unionpay", "5": "mastercard", "3": "amex"}[
        pan[:2] if pan.startswith("62") else pan[0]]
    assert decision.destination is not None and decision.destination.name == network
    assert decision.route == f"{network}-cards"


def test_the_readme_lists_a_card_of_each_network() -> None:
    assert {pan[0] for pan in NETWORK} >= {"4", "6", "5"}
