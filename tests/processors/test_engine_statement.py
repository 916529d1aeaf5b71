"""Mini statements (0200, DE 3 38xxxx) through the cell's engine and its ledger: DE 48 receipt lines of 40
characters, newest first, from the account's postings; DE 54 as on an inquiry; no money moves unless the product
sets a fee. And the balance inquiry's ISO code 31."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.catalog import Catalog, Fee
from processors.engine import CellEngine
from processors.engine.statement import amount_text, describe, line_text, receipt
from processors.model import Posting, StatementLine
from switch.model.message import Message
from tests.processors import commands_kit
from tests.processors.engine_kit import (
    CATALOG,
    CREDIT_PAN_1,
    DEBIT,
    FOREIGN_ACQUIRER,
    OTHER_PAN,
    World,
    atm,
    de54,
    make_world,
    request,
    reversal_of,
)

CHECKING = "0100000011"
SAVINGS = "0100000012"


@pytest.fixture
def world() -> World:
    return make_world()


def answer(world: World, message: Message) -> Message:
    decision = world.handle(message)
    assert decision.response is not None
    return decision.response


def lines(response: Message) -> list[str]:
    field = str(response[48])
    assert len(field) % 40 == 0
    return [field[i:i + 40] for i in range(0, len(field), 40)]


def history(world: World) -> None:
    """A withdrawal at another bank's ATM (2.50 fee) on the 15th; a deposit and a transfer in on the 16th."""
    assert answer(world, atm("012000", 2_050, f32=FOREIGN_ACQUIRER))[39] == "00"
    world.clock.advance(days=1)
    assert answer(world, atm("210020", 10_000))[39] == "00"
    assert answer(world, atm("401020", 500))[39] == "00"


def test_statement_lists_the_accounts_postings_newest_first_and_moves_no_money(world: World) -> None:
    history(world)
    decision = world.handle(atm("382000", 0))
    response = decision.response
    assert response is not None and response.mti == "0210" and response[39] == "00"
    assert lines(response) == [
        "1606 TRANSFER                      5.00 ",
        "1606 DEPOSIT                     100.00 ",
        "1506 CASH WITHDRAWAL              23.00-",
    ]
    balance = 100_000 - 2_050 - 250 + 10_000 + 500
    assert world.account(CHECKING).ledger_balance == balance
    assert de54(response) == [("20", "01", "USD", balance), ("20", "02", "USD", balance)]
    assert [row for kind, row in decision.effects.rows if kind is Posting] == []


def test_each_account_has_its_own_lines(world: World) -> None:
    history(world)
    assert lines(answer(world, atm("381000", 0))) == ["1606 TRANSFER                      5.00-"]


def test_at_most_ten_lines_the_newest(world: World) -> None:
    for cents in range(1, 13):
        assert answer(world, request("0200", "002000", cents))[39] == "00"
    got = lines(answer(world, atm("382000", 0)))
    assert len(got) == 10
    assert [line[5:25].rstrip() for line in got] == ["PURCHASE"] * 10
    assert [line[26:] for line in got] == [f"{f'0.{cents:02d}':>13}-" for cents in range(12, 2, -1)]


def test_an_account_without_postings_gets_no_de48(world: World) -> None:
    response = answer(world, atm("380000", 0, pan=OTHER_PAN))
    assert response[39] == "00" and 48 not in response.fields and 54 in response.fields


def test_lines_older_than_the_retention_are_left_out(world: World) -> None:
    history(world)
    world.clock.advance(days=CATALOG.bank.txn_retention_days + 1)
    assert 48 not in answer(world, atm("382000", 0)).fields
    assert answer(world, request("0200", "002000", 700))[39] == "00"
    assert [line[5:] for line in lines(answer(world, atm("382000", 0)))] == [
        "PURCHASE                      7.00-"]


def test_a_repeat_gets_the_statement_again(world: World) -> None:
    history(world)
    first = atm("382000", 0)
    response = answer(world, first)
    again = answer(world, Message("0201", dict(first.fields)))
    assert again[39] == "00" and again[38] == response[38] and again[48] == response[48]


def test_a_product_fee_is_posted_shown_and_given_back_by_a_reversal() -> None:
    product = dataclasses.replace(DEBIT, fees={**DEBIT.fees, "statement.atm": Fee(fixed=50)})
    priced = Catalog(CATALOG.bank, {**CATALOG.products, "debit": product}, CATALOG.keys)
    world = make_world(catalog=priced)
    statement = atm("382000", 0)
    decision = world.handle(statement)
    assert decision.response is not None and decision.response[39] == "00"
    assert lines(decision.response) == ["1506 STATEMENT FEE                 0.50-"]
    assert world.account(CHECKING).ledger_balance == 100_000 - 50
    assert decision.response[28] == "D00000050"
    reversed_ = answer(world, reversal_of(statement, "0420"))
    assert reversed_.mti == "0430" and reversed_[39] == "00" and 48 not in reversed_.fields
    assert world.account(CHECKING).ledger_balance == 100_000
    assert lines(answer(world, atm("382000", 0)))[:2] == [
        "1506 STATEMENT FEE                 0.50-", "1506 REVERSAL                      0.50 "]


def test_a_product_without_statements_declines_57(world: World) -> None:
    assert answer(world, atm("383000", 0, pan=CREDIT_PAN_1))[39] == "57"  # its `allowed` omits "statement"


def test_balance_inquiry_31_is_answered_like_30(world: World) -> None:
    response = answer(world, atm("312000", 0))
    assert response[39] == "00" and de54(response) == [("20", "01", "USD", 100_000), ("20", "02", "USD", 100_000)]


async def test_command_postings_are_lines_too() -> None:
    """A branch deposit and a posted purchase (commands) are on the statement as they were written."""
    clock = commands_kit.Clock()
    commands = commands_kit.make_commands(clock=clock)
    customer = await commands_kit.customer_with_checking(commands, deposit=25_000)
    account = (await commands_kit.run(commands, "customer.show", customer=customer))["accounts"][0]["account"]
    await commands_kit.run(commands, "account.post", account=account, amount=1_999, reference="r1",
                           description="Café Müller, Zürich")
    issued = await commands_kit.run(commands, "card.issue", customer=customer, product="debit-classic", activate=True)
    engine = CellEngine(commands.state, commands.catalog, hsm=None, pan_hash=commands_kit.DATA_KEYS.pan_hash,
                        clock=clock)
    decision = await engine.handle(atm("380000", 0, pan=issued["pan"], f49="840"))
    assert decision.response is not None and decision.response[39] == "00"
    assert lines(decision.response) == [
        "1503 CAFE MULLER, ZURICH          19.99-",
        "1503 CASH DEPOSIT CIF-1-D        250.00 ",
    ]


# -- the receipt format, pure --------------------------------------------------------------------------------

T = datetime(2026, 1, 2, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (-10_050, "USD", "       100.50-"),
    (7, "USD", "         0.07 "),
    (1_000, "JPY", "         1000 "),  # no minor unit: no point
    (-1_234_567, "BHD", "     1234.567-"),  # three decimals
    (999_999_999_999, "USD", "9999999999.99 "),
    (-10**14, "USD", "*************-"),  # too long for 13 characters: never cut
])
def test_amount_text(amount: int, currency: str, text: str) -> None:
    assert amount_text(amount, currency) == text and len(text) == 14


@pytest.mark.parametrize(("description", "text"), [
    ("withdrawal 0200", "CASH WITHDRAWAL"), ("purchase 0220", "PURCHASE"), ("balance 0200", "INQUIRY FEE"),
    ("reversal of T01-7", "REVERSAL"), ("installment 3/12 of plan N01-2", "INSTALLMENT 3/12 OF PLAN N01-2"),
    ("payment\tref", "PAYMENT REF"), ("withdrawal later", "WITHDRAWAL LATER"),
])
def test_describe(description: str, text: str) -> None:
    assert describe(description) == text


def test_a_line_is_40_characters_and_cuts_a_long_description() -> None:
    line = line_text(StatementLine(T, "installment 3/12 of plan N01-2", -4_200, "USD"))
    assert line == "0201 INSTALLMENT 3/12 OF          42.00-" and len(line) == 40


def test_receipt_keeps_ten_lines() -> None:
    many: list[Any] = [StatementLine(T - timedelta(days=k), "purchase 0200", -k, "USD") for k in range(12)]
    assert len(receipt(many)) == 400
