"""DE 28 (transaction fee) as the cell takes it: in the transaction currency, scaled like the amount; an advice
is never declined for it; a stand-in advice carries it; a product may say its network includes it in DE 4.

Every case checks the balances, that every posting balances (World.record) and, on the credit card, the line's
owed and cash_owed.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from processors.catalog import Product
from processors.ledger import GL_FEES, GL_SETTLEMENT
from processors.model import CreditLine
from switch.exchange.reversal import build_stand_in_advice
from switch.model.message import Message
from tests.processors.engine_kit import (
    CATALOG,
    CREDIT_PAN_1,
    DEBIT,
    DEBIT_PAN,
    FOREIGN_ACQUIRER,
    World,
    atm,
    make_world,
    reversal_of,
)

CHECKING = "0100000011"
ACCOUNT_A = "0100000032"
LINE = "0100000031"


@pytest.fixture
def world() -> World:
    return make_world()


def line(world: World) -> CreditLine:
    return world.state.credit_lines[LINE]


def entries(world: World) -> dict[str, int]:
    return {e.account: e.amount for e in world.postings[-1].entries}


def with_product(world: World, product: Product) -> None:
    world.engine.catalog = dataclasses.replace(CATALOG, products={**CATALOG.products, product.code: product})


# -- DE 28 is in DE 49's currency ---------------------------------------------------------------------------

@pytest.mark.parametrize(("de49", "de4", "de6", "de28", "fee"), [
    # JPY (0 decimals) on a USD account: 10,000 yen billed 67.00 USD; the 250 yen fee is 167.5 cents -> 168.
    ("392", 10_000, 6_700, 250, 168),
    # BHD (3 decimals) on a USD account: 10.000 BHD billed 26.53 USD; the 0.500 BHD fee is 132.65 cents -> 133.
    ("048", 10_000, 2_653, 500, 133),
    # Half up, not away from zero everywhere: 0.100 BHD is 26.53 cents -> 27; 0.001 BHD is 0.2653 -> 0.
    ("048", 10_000, 2_653, 100, 27),
    ("048", 10_000, 2_653, 1, 0),
])
def test_de28_in_a_foreign_currency_is_converted_by_the_amounts_rate(
    world: World, de49: str, de4: int, de6: int, de28: int, fee: int,
) -> None:
    # A foreign acquirer's ATM: the product would charge 250 cents; the request states its own fee.
    decision = world.handle(atm("010000", de4, f32=FOREIGN_ACQUIRER, f49=de49, f6=f"{de6:012d}", f51="840",
                                f28=f"D{de28:08d}"))
    assert decision.response is not None and decision.response[39] == "00"
    # The answer's DE 28 is in DE 49's currency too: the request's own, not the fee in cents.
    assert decision.response[28] == f"D{de28:08d}"
    assert world.account(CHECKING).ledger_balance == 100_000 - de6 - fee
    assert entries(world) == {CHECKING: -de6 - fee, GL_SETTLEMENT: de6, **({GL_FEES: fee} if fee else {})}
    txn = world.state.txns_by_dup_key[next(reversed(world.state.txns_by_dup_key))]
    assert (txn.amount, txn.fee, txn.request_amount) == (de6, fee, de4)


def test_the_same_currency_takes_de28_as_it_is(world: World) -> None:
    decision = world.handle(atm("010000", 10_000, f32=FOREIGN_ACQUIRER, f28="D00000250", f6="000000006700",
                                f51="392"))  # DE 49 is the account's: DE 6 and DE 51 say nothing here
    assert decision.response is not None and decision.response[28] == "D00000250"
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_250


def test_a_foreign_cash_advance_on_a_credit_card_owes_the_converted_fee(world: World) -> None:
    advance = atm("013000", 20_000, pan=CREDIT_PAN_1, f49="392", f6="000000013400", f51="840", f28="D00000250")
    decision = world.handle(advance)
    assert decision.response is not None and (decision.response[39], decision.response[28]) == ("00", "D00000250")
    assert world.account(ACCOUNT_A).ledger_balance == -13_568
    assert (line(world).owed, line(world).cash_owed) == (13_568, 13_400)
    assert entries(world) == {ACCOUNT_A: -13_568, GL_SETTLEMENT: 13_400, GL_FEES: 168}
    # The full reversal takes back exactly what was posted, fee included.
    assert world.handle(reversal_of(advance)).response[39] == "00"  # type: ignore[index]
    assert world.account(ACCOUNT_A).ledger_balance == 0
    assert (line(world).owed, line(world).cash_owed) == (0, 0)


def test_a_foreign_de28_without_de4_to_convert_it_by_is_declined_13(world: World) -> None:
    decision = world.handle(atm("010000", 0, f49="392", f6="000000006700", f51="840", f28="D00000250"))
    assert decision.response is not None and decision.response[39] == "13"
    assert world.account(CHECKING).ledger_balance == 100_000 and world.postings == []


# -- an advice is never declined for its DE 28 ----------------------------------------------------------------

@pytest.mark.parametrize("de28", ["C00000005", "D1", "X00000001", "D0000001A"])
def test_an_advice_with_an_unusable_de28_is_posted_with_the_products_fee(world: World, de28: str) -> None:
    advice = atm("010000", 10_000, f32=FOREIGN_ACQUIRER, f28=de28)
    advice.mti = "0220"
    decision = world.handle(advice)
    assert decision.response is not None and (decision.response[39], decision.response[28]) == ("00", "D00000250")
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_250
    assert entries(world) == {CHECKING: -10_250, GL_SETTLEMENT: 10_000, GL_FEES: 250}
    assert decision.note.startswith("DE 28 not taken (") and "product's or account's fee applies" in decision.note
    assert DEBIT_PAN not in decision.note and DEBIT_PAN[6:12] not in decision.note
    # A repeat is answered the same and posts nothing more.
    assert world.handle(Message("0221", dict(advice.fields))).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_250


def test_an_authorization_advice_with_a_credited_de28_holds_on_the_credit_line(world: World) -> None:
    advice = atm("013000", 10_000, pan=CREDIT_PAN_1, f28="C00000040")
    advice.mti = "0120"
    decision = world.handle(advice)
    assert decision.response is not None and decision.response[39] == "00"
    assert (line(world).held, line(world).cash_held, line(world).owed, line(world).cash_owed) == (10_000, 10_000, 0, 0)
    assert world.account(ACCOUNT_A).held == 10_000 and world.account(ACCOUNT_A).ledger_balance == 0
    assert "DE 28 not taken" in decision.note


def test_a_request_with_an_unusable_de28_is_still_declined(world: World) -> None:
    decision = world.handle(atm("010000", 10_000, f28="C00000005"))
    assert decision.response is not None and decision.response[39] == "13" and decision.note == ""
    assert world.account(CHECKING).ledger_balance == 100_000 and world.postings == []


def test_the_cell_host_logs_the_note_without_card_data(caplog: pytest.LogCaptureFixture) -> None:
    from processors.cell.host import CellHost

    host = CellHost.__new__(CellHost)
    host.cell = 1
    advice = atm("010000", 10_000, f28="C00000005")
    advice.mti = "0220"
    decision = make_world().handle(advice)
    with caplog.at_level(logging.WARNING, logger="bulkhead.cells.host"):
        host._log_note(decision, advice)
    assert [r.getMessage() for r in caplog.records] == [f"cell 1: 0220 stan {advice[11]}: {decision.note}"]
    assert DEBIT_PAN not in caplog.text


# -- the switch's stand-in advice carries the fee and the billing amount ---------------------------------------

def test_a_stand_in_advice_posts_the_fee_the_acquirer_disclosed(world: World) -> None:
    original = atm("010000", 10_000, f32=FOREIGN_ACQUIRER, f28="D00000100")
    advice = build_stand_in_advice(original, "S00001", repeat=False)
    assert advice.mti == "0220" and advice[28] == "D00000100"
    decision = world.handle(advice)
    assert decision.response is not None and (decision.response[39], decision.response[28]) == ("00", "D00000100")
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_100
    assert entries(world) == {CHECKING: -10_100, GL_SETTLEMENT: 10_000, GL_FEES: 100}
    # The late original (or its repeat) finds the applied advice: the same answer, nothing posted twice.
    original.mti = "0201"
    assert world.handle(original).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_100


def test_a_stand_in_advice_in_a_foreign_currency_is_posted_in_the_accounts(world: World) -> None:
    original = atm("013000", 20_000, pan=CREDIT_PAN_1, f49="392", f6="000000013400", f51="840", f28="D00000250",
                   f19="392")
    advice = build_stand_in_advice(original, "S00002", repeat=True)
    assert (advice[6], advice[51], advice[19], advice[25]) == ("000000013400", "840", "392", "00")
    decision = world.handle(advice)
    assert decision.response is not None and (decision.response[39], decision.response[28]) == ("00", "D00000250")
    assert world.account(ACCOUNT_A).ledger_balance == -13_568
    assert (line(world).owed, line(world).cash_owed) == (13_568, 13_400)
    assert entries(world) == {ACCOUNT_A: -13_568, GL_SETTLEMENT: 13_400, GL_FEES: 168}


# -- a product whose network includes DE 28 in DE 4 ------------------------------------------------------------

def test_a_product_with_de28_ignore_takes_its_own_fee(world: World) -> None:
    with_product(world, dataclasses.replace(DEBIT, de28="ignore"))
    # DE 4 already includes the acquirer's 1.00 access fee; the issuer charges its own 2.50 for a foreign ATM.
    decision = world.handle(atm("010000", 10_100, f32=FOREIGN_ACQUIRER, f28="D00000100"))
    assert decision.response is not None and (decision.response[39], decision.response[28]) == ("00", "D00000250")
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_350
    assert entries(world) == {CHECKING: -10_350, GL_SETTLEMENT: 10_100, GL_FEES: 250}
    # Nothing of DE 28 is taken, so a DE 28 the cell could not read does not decline the request either.
    own = world.handle(atm("010000", 1_000, f28="C00000005"))
    assert own.response is not None and own.response[39] == "00"
    assert own.response[28] == "C00000005"  # echoed as it came: no fee of the issuer's to state
    assert entries(world) == {CHECKING: -1_000, GL_SETTLEMENT: 1_000}
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_350 - 1_000
