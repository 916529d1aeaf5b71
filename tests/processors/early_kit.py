"""Helpers shared by the early-reversal tests (processors.early): purchases from a given terminal, and what a
decision answered and remembered."""

from __future__ import annotations

from dataclasses import replace

from processors.catalog import Catalog
from processors.model import EarlyReversal
from switch.model.message import Message
from tests.processors.engine_kit import CATALOG, DEBIT_PAN, World, request

CHECKING = "0100000011"  # DEBIT_PAN's account
START = 100_000
AMOUNT = 5_000


def at(terminal: str, stan: str, pan: str = DEBIT_PAN) -> Message:
    """A purchase from ``terminal``: ATMs under one acquirer id number their STANs each on their own."""
    return request("0200", "000000", AMOUNT, pan, f11=stan, f41=terminal)


def without_pan(message: Message) -> Message:
    copy = message.copy()
    del copy.fields[2]
    return copy


def answer_code(world: World, message: Message) -> str:
    response = world.handle(message.copy()).response
    assert response is not None
    return str(response[39])


def remembered_rows(world: World, message: Message) -> tuple[str, list[object]]:
    """The decision's response code and the early reversals it remembered."""
    decision = world.handle(message.copy())
    assert decision.response is not None
    return str(decision.response[39]), [row for kind, row in decision.effects.rows if kind is EarlyReversal]


def catalog_with(**bank: int) -> Catalog:
    """The test catalogue with these [bank] settings."""
    return replace(CATALOG, bank=replace(CATALOG.bank, **bank))
