"""Commands: closing accounts and customers, and what a closed account or customer refuses afterwards."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from processors.commands import CellCommands, CommandError
from processors.model import Account, CardStatus, CreditLine, Customer, Hold
from processors.state import CellState

from . import engine_kit
from .commands_kit import NOW, credit_customer, customer_with_checking, make_commands, run


async def refused(commands: CellCommands, name: str, match: str, **args: Any) -> None:
    """``name`` fails with a message matching ``match`` and leaves the state exactly as it was."""
    before = copy.deepcopy(commands.state)
    with pytest.raises(CommandError, match=match):
        await commands.run(name, args)
    assert commands.state == before


def only(state: CellState, kind: str) -> Account:
    return next(x for x in state.accounts.values() if x.kind == kind)


async def issue(commands: CellCommands, customer: str, product: str = "debit-classic") -> str:
    return str((await run(commands, "card.issue", customer=customer, product=product, activate=True))["card"])


async def test_account_close_refuses_a_balance_and_active_cards_then_closes() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands, deposit=100_000)
    account = only(commands.state, "checking").id
    card = await issue(commands, customer)
    await refused(commands, "account.close", f"ledger balance is 100000 USD .*active card\\(s\\) {card}",
                  account=account)
    await run(commands, "card.block", card=card, status="blocked", reason="closing")
    await refused(commands, "account.close", "ledger balance is 100000 USD \\(withdraw or transfer it first\\)$",
                  account=account)
    await run(commands, "account.post", account=account, amount=100_000, reference="withdraw all")
    result, effects = await commands.run("account.close", {"account": account})
    assert result["status"] == "closed" and result["ledger_balance"] == 0
    assert [(kind, row["status"]) for kind, row in effects.rows] == [(Account, "closed")]
    await refused(commands, "account.close", "already closed", account=account)


async def test_a_closed_account_takes_no_money_and_brings_back_no_card() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands, deposit=0)
    account = only(commands.state, "checking").id
    blocked = await issue(commands, customer)
    await run(commands, "card.block", card=blocked, status="blocked", reason="x")
    inactive = str((await run(commands, "card.issue", customer=customer, product="debit-classic"))["card"])
    lost = await issue(commands, customer)
    await run(commands, "card.block", card=lost, status="lost", reason="x")
    await run(commands, "account.close", account=account)
    await refused(commands, "account.deposit", "is closed", account=account, amount=10, reference="d")
    await refused(commands, "account.post", "is closed", account=account, amount=10, reference="p")
    await refused(commands, "card.unblock", f"its account {account} is closed", card=blocked)
    await refused(commands, "card.activate", f"its account {account} is closed", card=inactive)
    await refused(commands, "card.replace", f"its account {account} is closed", card=lost, new_number=True,
                  reason="lost")
    await refused(commands, "card.issue", "no active checking or savings account", customer=customer,
                  product="debit-classic")
    await refused(commands, "account.show", "has 0 active 'checking' accounts", account=f"{customer}/checking")


async def test_replacing_a_card_drops_its_closed_secondary_account() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands, deposit=0)
    savings = (await run(commands, "account.open", customer=customer, kind="savings",
                         product="debit-classic"))["account"]
    card = await issue(commands, customer)
    assert set(commands.state.cards[card].accounts) == {"10", "20"}
    await refused(commands, "account.close", f"active card\\(s\\) {card} use it", account=savings)
    await run(commands, "card.block", card=card, status="stolen", reason="x")
    await run(commands, "account.close", account=savings)
    new = await run(commands, "card.replace", card=card, new_number=True, reason="stolen")
    assert new["accounts"] == {"20": new["account"]} and new["account"] != savings


async def test_account_close_refuses_open_holds() -> None:
    commands = make_commands()
    await customer_with_checking(commands, deposit=5_000)
    account = only(commands.state, "checking")
    await run(commands, "account.post", account=account.id, amount=5_000, reference="empty it")
    # An authorization hold as the engine makes it (processors.debit: Account.held follows the open holds).
    commands.state.put(Hold("H00-1", "K0000000001", account.id, None, "T00-1", 700, "USD", False, NOW,
                            NOW + timedelta(days=7)))
    account.held = 700
    await refused(commands, "account.close", "1 open hold\\(s\\) of 700 USD", account=account.id)


async def test_a_credit_account_closes_once_its_installments_are_billed_and_paid() -> None:
    commands = make_commands()
    customer, account = await credit_customer(commands)
    await run(commands, "account.post", account=account, amount=60_000, reference="tv")
    plan = (await run(commands, "credit.installments", account=account, txn="ref:tv", count=3, rate_bp=100))
    # The conversion moved the purchase off the card account: its balance is zero, but the plan still bills it.
    assert commands.state.accounts[account].ledger_balance == 0
    await refused(commands, "account.close", f"installment plan\\(s\\) {plan['plan']} still to be billed",
                  account=account)
    await run(commands, "credit.bill_installments", day="2027-01-01")
    owed = 60_000 + plan["fee"]
    await refused(commands, "account.close", f"ledger balance is {-owed} USD \\(pay it first\\)", account=account)
    await run(commands, "credit.payment", account=account, amount=owed + 1, reference="too much")
    await refused(commands, "account.close", "ledger balance is 1 USD \\(refund it first\\)", account=account)
    await run(commands, "account.post", account=account, amount=1, reference="refund by purchase")
    await run(commands, "account.close", account=account)
    closed = await run(commands, "customer.close", customer=customer)
    assert closed["status"] == "closed"
    line = next(iter(commands.state.credit_lines.values()))
    assert (line.status, line.owed) == ("closed", 0)


async def test_customer_close_refuses_open_accounts_and_active_cards() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands, deposit=0)
    account = only(commands.state, "checking").id
    card = await issue(commands, customer)
    await refused(commands, "customer.close", f"open account\\(s\\) {account} \\(checking\\): close them first; "
                  f"active card\\(s\\) {card}", customer=customer)
    await run(commands, "card.block", card=card, status="blocked", reason="leaving")
    await run(commands, "account.close", account=account)
    # A blocked card on a closed account does not keep the customer open (it can never be unblocked).
    result, effects = await commands.run("customer.close", {"customer": "ref:CIF-1"})  # by external_ref too
    assert result["status"] == "closed" and [kind for kind, _ in effects.rows] == [Customer]
    await refused(commands, "customer.close", "already closed", customer=customer)
    await refused(commands, "account.open", "is closed", customer=customer, kind="savings", product="debit-classic")
    await refused(commands, "card.unblock", f"customer {customer} is closed", card=card)


async def test_customer_close_refuses_a_line_that_still_owes() -> None:
    commands = make_commands()
    customer, account = await credit_customer(commands)
    await run(commands, "account.close", account=account)
    line = next(iter(commands.state.credit_lines.values()))
    line.owed = 250  # e.g. a fee reversal that reached the closed account (the engine still posts those)
    await refused(commands, "customer.close", f"credit line {line.id} has 250 owed and 0 held USD",
                  customer=customer)
    line.owed = 0
    _, effects = await commands.run("customer.close", {"customer": customer})
    assert [kind for kind, _ in effects.rows] == [Customer, CreditLine]


@pytest.mark.parametrize(("mti", "pc", "pan"), [
    ("0200", "000000", engine_kit.DEBIT_PAN),  # purchase
    ("0100", "000000", engine_kit.DEBIT_PAN),  # pre-authorization
    ("0200", "300000", engine_kit.DEBIT_PAN),  # balance inquiry
    ("0200", "210000", engine_kit.DEBIT_PAN),  # deposit
    ("0200", "401020", engine_kit.DEBIT_PAN),  # transfer from savings to the closed checking account
    ("0200", "000000", engine_kit.CREDIT_PAN_1),  # a closed card account under an active credit line
])
def test_the_engine_declines_requests_on_a_closed_account(mti: str, pc: str, pan: str) -> None:
    # Commands never leave an active card on a closed account; the engine's funds check (62, account not
    # active: processors.debit / processors.credit) is the second line of defence.
    world = engine_kit.make_world()
    for account_id in ("0100000011", "0100000032"):
        world.state.accounts[account_id].status = "closed"
    before = copy.deepcopy(world.state.accounts)
    response = world.handle(engine_kit.request(mti, pc, 1_000, pan=pan)).response
    assert response is not None and response[39] == "62"
    assert world.state.accounts == before
    assert world.card(pan).status == CardStatus.ACTIVE
