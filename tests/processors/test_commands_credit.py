"""Commands: the customer-level credit line (limits, views, payments)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from processors.commands import GL_PAYMENTS, CommandError
from processors.installments import sub_ledger
from processors.model import Account, CreditLine, Effects, Entry, Posting, Txn
from processors.state import CellState

from .commands_kit import credit_customer, make_commands, postings, run


async def test_set_limit_refuses_a_limit_below_owed_and_held() -> None:
    commands = make_commands()
    customer, account = await credit_customer(commands)
    await run(commands, "account.post", account=account, amount=300_000, reference="car")
    line = next(iter(commands.state.credit_lines.values()))
    line.held = 50_000  # an open authorization (the engine's), counts against the limit
    with pytest.raises(CommandError, match="below what is owed and held \\(350000\\)"):
        await commands.run("credit.set_limit", {"customer": customer, "limit": 349_999})
    with pytest.raises(CommandError, match="is above the limit"):
        await commands.run("credit.set_limit", {"line": line.id, "limit": 400_000, "cash_limit": 400_001})
    line.cash_owed = 20_000
    with pytest.raises(CommandError, match="below the cash owed and held"):
        await commands.run("credit.set_limit", {"line": line.id, "cash_limit": 19_999})
    with pytest.raises(CommandError, match="give a new limit or cash_limit"):
        await commands.run("credit.set_limit", {"line": line.id})
    with pytest.raises(CommandError, match="exactly one of line or customer"):
        await commands.run("credit.set_limit", {"line": line.id, "customer": customer, "limit": 1})
    result, effects = await commands.run("credit.set_limit", {"customer": "ref:CIF-C", "limit": 350_000,
                                                              "cash_limit": 20_000})
    assert (result["limit"], result["cash_limit"], result["open_to_buy"]) == (350_000, 20_000, 0)
    assert result["cash_open_to_buy"] == 0 and len(effects.rows) == 1


async def test_credit_show_by_customer_or_line() -> None:
    commands = make_commands()
    customer, account = await credit_customer(commands)
    by_customer = await run(commands, "credit.show", customer=customer)
    assert by_customer == await run(commands, "credit.show", line=by_customer["line"])
    assert by_customer["limit"] == 500_000 and by_customer["cash_limit"] == 100_000 and by_customer["plans"] == []
    assert commands.state.accounts[account].credit_line_id == by_customer["line"]
    debit_only = (await run(commands, "customer.open", name="D", external_ref="D-1"))["customer"]
    with pytest.raises(CommandError, match="has no credit line"):
        await commands.run("credit.show", {"customer": debit_only})


def line_ledger(effects: list[Effects], line_id: str, state: CellState) -> int:
    """The sum of the entries on a line's card accounts and INST:<plan> sub-ledgers, from the recorded effects."""
    ledgers = {x.id for x in state.accounts.values() if x.credit_line_id == line_id}
    ledgers |= {sub_ledger(p.id) for p in state.plans.values() if p.credit_line_id == line_id}
    return sum(row["amount"] for batch in effects for kind, row in batch.rows
               if kind is Entry and row["account"] in ledgers)


async def test_payment_lowers_owed_by_the_line_rule_and_raises_open_to_buy() -> None:
    commands = make_commands()
    batches: list[Effects] = []

    async def go(name: str, **args: Any) -> dict[str, Any]:
        result, effects = await commands.run(name, args)
        batches.append(effects)
        return result

    _, account = await credit_customer(commands)
    await go("account.post", account=account, amount=300_000, reference="car")
    plan = await go("credit.installments", account=account, txn="ref:car", count=3, rate_bp=200)
    line = next(iter(commands.state.credit_lines.values()))
    assert line.owed == 306_000 and line.open_to_buy == 194_000  # the plan fee is owed too
    result = await go("credit.payment", account=account, amount=100_000, reference="PAY-1")
    assert (result["owed"], result["open_to_buy"], result["line"]) == (206_000, 294_000, line.id)
    assert result["ledger_balance"] == 100_000 and result["available"] == 294_000
    # The one rule (processors.credit): owed == -(card accounts + INST sub-ledgers), from the entries written.
    assert line.owed == -line_ledger(batches, line.id, commands.state) == 206_000
    posted = postings(batches[-1])
    assert len(posted) == 1 and posted[0]["description"] == "payment PAY-1"
    entries = sorted((row["account"], row["amount"]) for kind, row in batches[-1].rows if kind is Entry)
    assert entries == [(account, 100_000), (GL_PAYMENTS, -100_000)]
    assert {kind for kind, _ in batches[-1].rows} >= {Txn, Account, CreditLine, Posting, Entry}
    txn = commands.state.txns[result["txn"]]
    assert (txn.dup_key, txn.amount, txn.posting_id) == ("cmd:payment:PAY-1", 100_000, result["posting"])
    assert plan["status"] == "active"


async def test_payment_beyond_owed_leaves_the_line_in_credit_without_extra_open_to_buy() -> None:
    commands = make_commands()
    _, account = await credit_customer(commands)
    await run(commands, "account.post", account=account, amount=300_000, reference="car")
    line = next(iter(commands.state.credit_lines.values()))
    line.cash_owed = 100_000  # as if 100,000 of it were a cash advance (the engine's; 0 <= cash_owed <= owed)
    paid = await run(commands, "credit.payment", account=account, amount=250_000, reference="P1")
    # The demo product's rule is the default, cash first (processors.credit): the cash advance is repaid first.
    assert (paid["owed"], paid["cash_owed"], paid["open_to_buy"]) == (50_000, 0, 450_000)
    over = await run(commands, "credit.payment", account=account, amount=80_000, reference="P2")
    assert (over["owed"], over["cash_owed"], over["open_to_buy"]) == (-30_000, 0, 500_000)


async def test_payment_refusals_change_nothing() -> None:
    commands = make_commands()
    customer, account = await credit_customer(commands)
    checking = (await run(commands, "account.open", customer=customer, kind="checking",
                          product="debit-classic"))["account"]
    await run(commands, "credit.payment", account=account, amount=500, reference="R1")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"account": checking, "amount": 500, "reference": "R2"}, "is a checking account; payments go to credit"),
        ({"account": account, "amount": 0, "reference": "R2"}, "amount: must be 1\\.\\."),
        ({"account": account, "amount": -500, "reference": "R2"}, "amount: must be 1\\.\\."),
        ({"account": account, "amount": "5.00", "reference": "R2"}, "expected an integer"),
        ({"account": account, "amount": 500, "reference": "R1"}, "'R1' was already used for a payment"),
        ({"account": account, "amount": 500}, "reference: is required"),
        ({"account": account, "amount": 500, "reference": "R2", "currency": "USD"}, "currency: unknown argument"),
        ({"account": "0000000099", "amount": 500, "reference": "R2"}, "unknown account"),
    ]
    for args, match in cases:
        before = copy.deepcopy(commands.state)
        with pytest.raises(CommandError, match=match):
            await commands.run("credit.payment", args)
        assert commands.state == before, args
    # A closed card account takes no payment (it was closed at a zero balance: a payment would reopen one).
    await run(commands, "account.post", account=account, amount=500, reference="even")
    await run(commands, "account.close", account=account)
    before = copy.deepcopy(commands.state)
    with pytest.raises(CommandError, match=f"account {account} is closed"):
        await commands.run("credit.payment", {"account": account, "amount": 1, "reference": "R3"})
    assert commands.state == before
