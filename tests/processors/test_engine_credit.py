"""Credit cards: the customer-level open-to-buy shared by all cards, the cash sub-limit, holds, refunds."""

from __future__ import annotations

import dataclasses

import pytest

from processors.commands import CellCommands
from processors.credit import PAYMENT_ALLOCATIONS, payment_cash_part
from processors.ledger import GL_FEES, GL_SETTLEMENT
from processors.model import CreditLine
from tests.processors.engine_kit import (
    CATALOG,
    CREDIT,
    CREDIT_PAN_1,
    CREDIT_PAN_2,
    World,
    atm,
    de54,
    de90,
    drive,
    make_world,
    pan_hash,
    request,
    reversal_of,
)

LINE = "0100000031"
ACCOUNT_A = "0100000032"
ACCOUNT_B = "0100000033"


@pytest.fixture
def world() -> World:
    return make_world()


def line(world: World) -> CreditLine:
    return world.state.credit_lines[LINE]


def test_purchase_owes_and_reports_open_to_buy(world: World) -> None:
    decision = world.handle(request("0200", "000000", 30_000, pan=CREDIT_PAN_1))
    response = decision.response
    assert response is not None and response[39] == "00"
    assert world.account(ACCOUNT_A).ledger_balance == -30_000
    assert line(world).owed == 30_000 and line(world).open_to_buy == 70_000
    # DE 54 of a credit account: account type 30, ledger in debit, available = open-to-buy.
    assert de54(response) == [("30", "01", "USD", -30_000), ("30", "02", "USD", 70_000)]
    assert {e.account: e.amount for e in world.postings[-1].entries} == {ACCOUNT_A: -30_000, GL_SETTLEMENT: 30_000}


def test_open_to_buy_is_shared_by_the_customers_cards(world: World) -> None:
    assert world.handle(request("0200", "000000", 60_000, pan=CREDIT_PAN_1)).response[39] == "00"  # type: ignore[index]
    decision = world.handle(request("0200", "000000", 40_001, pan=CREDIT_PAN_2))
    assert decision.response is not None and decision.response[39] == "51"
    assert world.handle(request("0200", "000000", 40_000, pan=CREDIT_PAN_2)).response[39] == "00"  # type: ignore[index]
    assert line(world).owed == 100_000 and line(world).open_to_buy == 0
    assert world.account(ACCOUNT_B).ledger_balance == -40_000


def test_cash_advance_sub_limit_is_61_and_open_to_buy_is_51(world: World) -> None:
    # 20 000 cash limit; the cash-advance fee (100, pricing item) counts on the open-to-buy only.
    decision = world.handle(atm("013000", 20_001, pan=CREDIT_PAN_1))
    assert decision.response is not None and decision.response[39] == "61"
    ok = world.handle(atm("013000", 20_000, pan=CREDIT_PAN_1))
    assert ok.response is not None and ok.response[39] == "00" and ok.response[28] == "D00000100"
    assert line(world).cash_owed == 20_000 and line(world).owed == 20_100
    assert {e.account: e.amount for e in world.postings[-1].entries} == {
        ACCOUNT_A: -20_100, GL_SETTLEMENT: 20_000, GL_FEES: 100}
    assert world.handle(atm("013000", 1, pan=CREDIT_PAN_2)).response[39] == "61"  # type: ignore[index]
    # A purchase beyond the open-to-buy is 51.
    assert world.handle(request("0200", "000000", 80_000, pan=CREDIT_PAN_2)).response[39] == "51"  # type: ignore[index]


def test_cash_advance_reversal_gives_cash_limit_back(world: World) -> None:
    advance = atm("013000", 15_000, pan=CREDIT_PAN_1)
    world.handle(advance)
    world.handle(reversal_of(advance))
    assert (line(world).owed, line(world).cash_owed) == (0, 0)
    assert world.account(ACCOUNT_A).ledger_balance == 0


def test_credit_hold_then_completion(world: World) -> None:
    auth = request("0100", "000000", 50_000, pan=CREDIT_PAN_1)
    assert world.handle(auth).response[39] == "00"  # type: ignore[index]
    assert line(world).held == 50_000 and world.account(ACCOUNT_A).held == 50_000
    assert world.handle(request("0200", "000000", 50_001, pan=CREDIT_PAN_2)).response[39] == "51"  # type: ignore[index]
    done = world.handle(request("0220", "000000", 45_000, pan=CREDIT_PAN_1,
                                f90=de90(auth)))
    assert done.response[39] == "00"  # type: ignore[index]
    assert (line(world).held, line(world).owed) == (0, 45_000)
    assert world.account(ACCOUNT_A).held == 0 and world.account(ACCOUNT_A).ledger_balance == -45_000


def test_cash_hold_counts_on_cash_limit(world: World) -> None:
    world.handle(request("0100", "010000", 15_000, pan=CREDIT_PAN_1, f18="6011"))
    assert line(world).cash_held == 15_000
    assert world.handle(atm("013000", 5_001, pan=CREDIT_PAN_2)).response[39] == "61"  # type: ignore[index]


def _ledger_owed(world: World) -> int:
    """The ledger check's rule: owed == -(sum of the line's card account balances) (no plans here)."""
    return -sum(a.ledger_balance for a in world.state.accounts.values() if a.credit_line_id == line(world).id)


def test_refund_beyond_owed_leaves_the_line_in_credit_by_the_ledger_rule(world: World) -> None:
    world.handle(request("0200", "000000", 10_000, pan=CREDIT_PAN_1))
    world.handle(request("0200", "200000", 15_000, pan=CREDIT_PAN_1))
    assert world.account(ACCOUNT_A).ledger_balance == 5_000
    # Signed owed, as the storage ledger check requires; the credit balance adds no open-to-buy.
    assert line(world).owed == -5_000 == _ledger_owed(world) and line(world).open_to_buy == 100_000
    world.handle(request("0200", "000000", 7_000, pan=CREDIT_PAN_1))
    assert line(world).owed == 2_000 == _ledger_owed(world)


def test_credit_on_one_card_account_offsets_debt_on_the_other(world: World) -> None:
    world.handle(request("0200", "000000", 10_000, pan=CREDIT_PAN_1))
    world.handle(request("0200", "200000", 15_000, pan=CREDIT_PAN_1))  # account A in credit by 5 000
    world.handle(request("0200", "000000", 7_000, pan=CREDIT_PAN_2))  # account B owes 7 000
    assert line(world).owed == 2_000 == _ledger_owed(world)
    assert line(world).open_to_buy == 98_000


def test_credit_product_does_not_allow_transfers_or_deposits(world: World) -> None:
    assert world.handle(atm("403020", 100, pan=CREDIT_PAN_1)).response[39] == "57"  # type: ignore[index]
    assert world.handle(atm("210030", 100, pan=CREDIT_PAN_1)).response[39] == "57"  # type: ignore[index]


def test_blocked_line_62(world: World) -> None:
    line(world).status = "blocked"
    assert world.handle(request("0200", "000000", 100, pan=CREDIT_PAN_1)).response[39] == "62"  # type: ignore[index]


@pytest.mark.parametrize(("rule", "cash_after"), [
    ("cash_first", 10_000),  # 20,000 cash owed - the whole 10,000 payment
    ("purchases_first", 20_000),  # the 30,100 of purchases and fee absorb the payment
    ("pro_rata", 20_000 - 10_000 * 20_000 // 50_100),  # cash is 20,000 of the 50,100 owed
])
def test_a_payment_frees_the_cash_sub_limit_by_the_products_rule(world: World, rule: str, cash_after: int) -> None:
    products = {**CATALOG.products, "credit": dataclasses.replace(CREDIT, payment_allocation=rule)}
    world.engine.catalog = dataclasses.replace(CATALOG, products=products)
    commands = CellCommands(world.state, world.engine.catalog, cell_count=2, hsm=None, pan_hash=pan_hash,
                            seal=lambda data: data, clock=world.clock)
    assert world.handle(atm("013000", 20_000, pan=CREDIT_PAN_1)).response[39] == "00"  # type: ignore[index]
    assert world.handle(request("0200", "000000", 30_000, pan=CREDIT_PAN_2)).response[39] == "00"  # type: ignore[index]
    assert (line(world).owed, line(world).cash_owed) == (50_100, 20_000)
    assert world.handle(atm("013000", 1, pan=CREDIT_PAN_1)).response[39] == "61"  # type: ignore[index]

    result, effects = drive(commands.run("credit.payment", {"account": ACCOUNT_A, "amount": 10_000,
                                                            "reference": "PAY-1"}))
    world.record(effects)  # checks that every posting balances
    assert (result["owed"], result["cash_owed"], result["cash_open_to_buy"]) == (40_100, cash_after,
                                                                                  20_000 - cash_after)
    room = 20_000 - cash_after
    assert world.handle(atm("013000", room + 1, pan=CREDIT_PAN_1)).response[39] == "61"  # type: ignore[index]
    if room:
        assert world.handle(atm("013000", room, pan=CREDIT_PAN_1)).response[39] == "00"  # type: ignore[index]
    # The line rule still holds: owed == -(the card accounts' balances).
    assert line(world).owed == -(world.account(ACCOUNT_A).ledger_balance + world.account(ACCOUNT_B).ledger_balance)


def test_payment_allocation_rules() -> None:
    owed = CreditLine("L", "C", "USD", limit=100_000, cash_limit=50_000, owed=50_000, cash_owed=20_000)
    assert [payment_cash_part(owed, 10_000, rule) for rule in PAYMENT_ALLOCATIONS] == [10_000, 0, 4_000]
    assert [payment_cash_part(owed, 40_000, rule) for rule in PAYMENT_ALLOCATIONS] == [20_000, 10_000, 16_000]
    assert [payment_cash_part(owed, 90_000, rule) for rule in PAYMENT_ALLOCATIONS] == [20_000] * 3
    in_credit = CreditLine("L", "C", "USD", limit=100_000, cash_limit=50_000, owed=-5_000, cash_owed=0)
    assert [payment_cash_part(in_credit, 1_000, rule) for rule in PAYMENT_ALLOCATIONS] == [0, 0, 0]
    with pytest.raises(ValueError, match="unknown payment allocation 'lifo'"):
        payment_cash_part(owed, 1, "lifo")


def test_a_cash_advance_takes_the_transaction_level_fee(world: World) -> None:
    # The product's cash_advance.fee is 100; the request's DE 28 says 40.
    decision = world.handle(atm("013000", 10_000, pan=CREDIT_PAN_1, f28="D00000040"))
    assert decision.response is not None and (decision.response[39], decision.response[28]) == ("00", "D00000040")
    assert (line(world).owed, line(world).cash_owed) == (10_040, 10_000)
    assert {e.account: e.amount for e in world.postings[-1].entries} == {
        ACCOUNT_A: -10_040, GL_SETTLEMENT: 10_000, GL_FEES: 40}
    reversed_ = world.handle(reversal_of(atm("013000", 10_000, pan=CREDIT_PAN_1, f28="D00000040")))
    assert reversed_.response is not None
