"""Payments into a credit line: ``owed`` falls by the payment, ``cash_owed`` by the product's allocation only once.

Three ways in, one rule (processors.credit): the ``credit.payment`` command, a card deposit (DE 3 "21") to the
credit card account, and a transfer (DE 3 "40") from a deposit account to it. Every case checks the balances,
that every posting balances (World.record), the ledger rule owed == -(card accounts), owed and cash_owed, and
that the cash sub-limit then allows exactly the cash that was repaid.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import Engine

from processors.commands import CellCommands
from processors.ledger import GL_SETTLEMENT
from processors.model import CreditLine, Effects
from processors.storage import ledger_check, load_state, write_batch
from tests.processors.engine_kit import (
    CATALOG,
    CREDIT,
    CREDIT_PAN_1,
    CREDIT_PAN_2,
    DEBIT_PAN,
    World,
    atm,
    drive,
    make_world,
    pan_hash,
    request,
    reversal_of,
)

LINE = "0100000031"
ACCOUNT_A = "0100000032"
ACCOUNT_B = "0100000033"
CHECKING = "0100000011"

# (cash advanced, purchases, payment) -> cash owed after the payment, by rule. Worked by hand:
#   A: owed 50,000 of which cash 20,000; pays 40,000 (more than the 30,000 of purchases); owed after 10,000.
#      cash_first: all 20,000 of cash repaid -> 0. purchases_first: 30,000 to purchases, 10,000 to cash ->
#      10,000. pro_rata: 40,000 * 20,000 // 50,000 = 16,000 to cash -> 4,000.
#   B: owed 50,000 of which cash 40,000; pays 20,000 (more than the 10,000 of purchases); owed after 30,000.
#      cash_first: 20,000 to cash -> 20,000. purchases_first: 10,000 to cash -> 30,000. pro_rata:
#      20,000 * 40,000 // 50,000 = 16,000 to cash -> 24,000.
CASES = [
    ("cash_first", 20_000, 30_000, 40_000, 0),
    ("purchases_first", 20_000, 30_000, 40_000, 10_000),
    ("pro_rata", 20_000, 30_000, 40_000, 4_000),
    ("cash_first", 40_000, 10_000, 20_000, 20_000),
    ("purchases_first", 40_000, 10_000, 20_000, 30_000),
    ("pro_rata", 40_000, 10_000, 20_000, 24_000),
]


def line(world: World) -> CreditLine:
    return world.state.credit_lines[LINE]


def owing(rule: str, cash: int, purchases: int) -> World:
    """A line of 100,000 with a 40,000 cash sub-limit, owing ``cash`` of cash advances (fee waived by DE 28) on
    card account A and ``purchases`` on card account B; the product pays by ``rule`` and accepts deposits."""
    world = make_world()
    product = dataclasses.replace(CREDIT, payment_allocation=rule, allowed=CREDIT.allowed | {"deposit"})
    world.engine.catalog = dataclasses.replace(CATALOG, products={**CATALOG.products, "credit": product})
    line(world).cash_limit = 40_000
    assert world.handle(atm("013000", cash, pan=CREDIT_PAN_1, f28="C00000000")).response[39] == "00"  # type: ignore[index]
    assert world.handle(request("0200", "000000", purchases, pan=CREDIT_PAN_2)).response[39] == "00"  # type: ignore[index]
    assert (line(world).owed, line(world).cash_owed) == (cash + purchases, cash)
    return world


def check_line(world: World, owed: int, cash_owed: int) -> None:
    """owed and cash_owed, the ledger rule, and the cash sub-limit: exactly its room is still allowed."""
    assert (line(world).owed, line(world).cash_owed) == (owed, cash_owed)
    accounts = world.account(ACCOUNT_A).ledger_balance + world.account(ACCOUNT_B).ledger_balance
    assert line(world).owed == -accounts
    room = line(world).cash_limit - cash_owed
    assert world.handle(atm("013000", room + 1, pan=CREDIT_PAN_1, f28="C00000000")).response[39] == "61"  # type: ignore[index]
    assert world.handle(atm("013000", room, pan=CREDIT_PAN_1, f28="C00000000")).response[39] == "00"  # type: ignore[index]
    # A cash advance drawn while the line is in credit is partly the cardholder's own money: only what it
    # leaves owed counts as cash owed (0 <= cash_owed <= owed, processors.credit).
    assert line(world).cash_owed == min(line(world).cash_limit, line(world).owed)


@pytest.mark.parametrize(("rule", "cash", "purchases", "paid", "cash_after"), CASES)
def test_a_payment_command_lowers_the_cash_owed_once(
    rule: str, cash: int, purchases: int, paid: int, cash_after: int,
) -> None:
    world = owing(rule, cash, purchases)
    commands = CellCommands(world.state, world.engine.catalog, cell_count=2, hsm=None, pan_hash=pan_hash,
                            seal=lambda data: data, clock=world.clock)
    result: dict[str, Any]
    result, effects = drive(commands.run("credit.payment", {"account": ACCOUNT_A, "amount": paid,
                                                            "reference": "PAY-1"}))
    world.record(effects)  # every posting balances
    owed = cash + purchases - paid
    assert (result["owed"], result["cash_owed"]) == (owed, cash_after)
    assert result["cash_open_to_buy"] == 40_000 - cash_after
    assert world.account(ACCOUNT_A).ledger_balance == -cash + paid
    check_line(world, owed, cash_after)
    assert world.state.txns[result["txn"]].cash_part == cash - cash_after  # kept, as on every payment-like Txn


@pytest.mark.parametrize(("rule", "cash", "purchases", "paid", "cash_after"), CASES)
def test_a_card_deposit_to_the_credit_account_pays_by_the_products_rule(
    rule: str, cash: int, purchases: int, paid: int, cash_after: int,
) -> None:
    world = owing(rule, cash, purchases)
    decision = world.handle(atm("210030", paid, pan=CREDIT_PAN_1))
    assert decision.response is not None and decision.response[39] == "00"
    assert {e.account: e.amount for e in world.postings[-1].entries} == {ACCOUNT_A: paid, GL_SETTLEMENT: -paid}
    assert world.account(ACCOUNT_A).ledger_balance == -cash + paid
    check_line(world, cash + purchases - paid, cash_after)


@pytest.mark.parametrize(("rule", "cash_after"), [("cash_first", 0), ("purchases_first", 10_000),
                                                  ("pro_rata", 4_000)])
def test_a_transfer_from_checking_to_the_credit_account_pays_by_the_products_rule(
    rule: str, cash_after: int,
) -> None:
    world = owing(rule, 20_000, 30_000)
    decision = world.handle(atm("402030", 40_000, pan=DEBIT_PAN, f103=ACCOUNT_A))
    assert decision.response is not None and decision.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 100_000 - 40_000
    assert world.account(ACCOUNT_A).ledger_balance == -20_000 + 40_000
    check_line(world, 10_000, cash_after)


def test_a_payment_beyond_everything_owed_clears_the_cash_and_leaves_the_line_in_credit() -> None:
    for rule in ("cash_first", "purchases_first", "pro_rata"):
        world = owing(rule, 20_000, 30_000)
        assert world.handle(atm("210030", 60_000, pan=CREDIT_PAN_1)).response[39] == "00"  # type: ignore[index]
        assert (line(world).owed, line(world).cash_owed) == (-10_000, 0)
        assert line(world).open_to_buy == 100_000  # a credit balance adds no spending power
        check_line(world, -10_000, 0)


def test_payments_and_deposits_persist_and_pass_the_ledger_check(cell_engine: Engine) -> None:
    """The same money through the cell's database (SQLite, and PostgreSQL when configured): the rows written
    load back into the state in memory, and the ledger check finds owed == -(the line's card accounts)."""
    world = make_world(seed=False)  # no opening balances: the database's ledger starts empty and consistent
    product = dataclasses.replace(CREDIT, payment_allocation="purchases_first", allowed=CREDIT.allowed | {"deposit"})
    world.engine.catalog = dataclasses.replace(CATALOG, products={**CATALOG.products, "credit": product})
    opening = Effects()
    opening.add(*sorted((row for table in (world.state.customers, world.state.accounts, world.state.credit_lines,
                                           world.state.cards) for row in table.values()),
                        key=lambda row: row.WRITE_RANK))
    batches = [opening]
    commands = CellCommands(world.state, world.engine.catalog, cell_count=2, hsm=None, pan_hash=pan_hash,
                            seal=lambda data: data, clock=world.clock)
    for message in (atm("013000", 20_000, pan=CREDIT_PAN_1, f28="C00000000"),
                    request("0200", "000000", 30_000, pan=CREDIT_PAN_2)):
        decision = world.handle(message)
        assert decision.response is not None and decision.response[39] == "00"
        batches.append(decision.effects)
    _, paid = drive(commands.run("credit.payment", {"account": ACCOUNT_A, "amount": 40_000, "reference": "P1"}))
    world.record(paid)
    batches.append(paid)
    deposit = world.handle(atm("210030", 5_000, pan=CREDIT_PAN_2))
    assert deposit.response is not None and deposit.response[39] == "00"
    batches.append(deposit.effects)
    # 50,000 owed (20,000 cash); 40,000 paid: 30,000 to purchases, 10,000 to cash; 5,000 more: all to cash.
    assert (line(world).owed, line(world).cash_owed) == (5_000, 5_000)
    for batch in batches:
        with cell_engine.begin() as connection:
            write_batch(connection, [batch])
    assert ledger_check(cell_engine).problems == []
    loaded = load_state(cell_engine, 1, world.clock(), retention_days=35)
    assert loaded.credit_lines[LINE] == line(world)
    assert {a: loaded.accounts[a].ledger_balance for a in (ACCOUNT_A, ACCOUNT_B)} == {
        ACCOUNT_A: -20_000 + 40_000, ACCOUNT_B: -30_000 + 5_000}


@pytest.mark.parametrize(("rule", "part"), [("cash_first", 15_000), ("purchases_first", 0), ("pro_rata", 6_000)])
def test_reversing_a_card_deposit_owes_again_the_cash_it_repaid(rule: str, part: int) -> None:
    world = owing(rule, 20_000, 30_000)
    deposit = atm("210030", 15_000, pan=CREDIT_PAN_1)  # pro_rata: 15,000 * 20,000 // 50,000 = 6,000 to cash
    assert world.handle(deposit).response[39] == "00"  # type: ignore[index]
    assert (line(world).owed, line(world).cash_owed) == (35_000, 20_000 - part)
    txn = world.state.txns_by_dup_key[next(reversed(world.state.txns_by_dup_key))]
    assert txn.cash_part == part
    # A partial reversal (DE 95: 5,000 stays) takes back 10,000: cash first, up to what the deposit repaid.
    partial = world.handle(reversal_of(deposit, replacement=5_000))
    assert partial.response is not None and partial.response[39] == "00"
    back = min(10_000, part)
    assert (line(world).owed, line(world).cash_owed) == (45_000, 20_000 - part + back)
    assert world.account(ACCOUNT_A).ledger_balance == -20_000 + 5_000
    # The rest: the line is back where it was before the deposit, cash owed included.
    assert world.handle(reversal_of(deposit, mti="0420")).response[39] == "00"  # type: ignore[index]
    assert world.account(ACCOUNT_A).ledger_balance == -20_000
    assert txn.cash_part == 0
    check_line(world, 50_000, 20_000)


def test_reversing_a_transfer_into_the_credit_line_owes_the_cash_again() -> None:
    world = owing("cash_first", 20_000, 30_000)
    transfer = atm("402030", 40_000, pan=DEBIT_PAN, f103=ACCOUNT_A)
    assert world.handle(transfer).response[39] == "00"  # type: ignore[index]
    assert (line(world).owed, line(world).cash_owed) == (10_000, 0)
    assert world.handle(reversal_of(transfer)).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000
    assert world.account(ACCOUNT_A).ledger_balance == -20_000
    check_line(world, 50_000, 20_000)
