"""Installment plans: balanced postings, owed/open-to-buy including the fee, schedule, billing and catch-up."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors import installments
from processors.commands import CellCommands, CommandError
from processors.ledger import check_postings
from processors.model import Effects, Entry, Posting
from processors.state import CellState

from .commands_kit import NOW, credit_customer, make_commands, run


class Books:
    """Every posting the commands produced, to check the ledger invariants like the storage check does."""

    def __init__(self) -> None:
        self.postings: list[Posting] = []

    def take(self, effects: Effects) -> None:
        for kind, row in effects.rows:
            if kind is Posting:
                self.postings.append(Posting(**row))
            elif kind is Entry:
                self.postings[-1].entries.append(Entry(**row))

    def balance(self, account: str) -> int:
        return sum(e.amount for p in self.postings for e in p.entries if e.account == account)

    def check(self, state: CellState) -> None:
        assert check_postings(self.postings) == []
        sums: dict[str, int] = defaultdict(int)
        for posting in self.postings:
            for entry in posting.entries:
                sums[entry.account] += entry.amount
        for account in state.accounts.values():
            assert account.ledger_balance == sums[account.id]
        for line in state.credit_lines.values():
            members = [a.id for a in state.accounts.values() if a.credit_line_id == line.id]
            members += [installments.sub_ledger(p.id) for p in state.plans.values() if p.credit_line_id == line.id]
            assert line.owed == -sum(sums[m] for m in members)


async def step(commands: CellCommands, books: Books, name: str, /, **args: object) -> dict[str, Any]:
    result, effects = await commands.run(name, args)
    books.take(effects)
    return result


async def purchase(commands: CellCommands, books: Books, amount: int = 120_000) -> tuple[str, str, str]:
    """(account, line, txn) of a credit customer with one posted purchase."""
    _, account = await credit_customer(commands)
    posted = await step(commands, books, "account.post", account=account, amount=amount, reference="tv")
    return account, str(posted["credit_line"]), str(posted["txn"])


async def test_conversion_posts_principal_and_fee_and_reduces_open_to_buy_by_the_fee() -> None:
    commands, books = make_commands(), Books()
    account, line_id, txn = await purchase(commands, books)
    line = commands.state.credit_lines[line_id]
    assert (line.owed, line.open_to_buy) == (120_000, 380_000)
    plan = await step(commands, books, "credit.installments", account=account, txn=txn, count=6)
    fee = (120_000 * 150 + 5_000) // 10_000  # credit-gold: installment.fee_rate_bp = 150
    assert plan["fee"] == fee == 1_800 and plan["rate_bp"] == 150 and plan["principal"] == 120_000
    assert (line.owed, plan["open_to_buy"]) == (120_000 + fee, 380_000 - fee)
    assert commands.state.accounts[account].ledger_balance == 0  # the purchase left the revolving balance
    assert books.balance(installments.sub_ledger(str(plan["plan"]))) == -(120_000 + fee)
    assert books.balance(installments.FEES_ACCOUNT) == fee
    assert [s["amount"] for s in plan["schedule"]] == [20_300] * 6
    assert plan["schedule"][0]["due"] == "2026-04-15"
    books.check(commands.state)


async def test_billing_moves_installments_to_the_card_account_until_the_plan_completes() -> None:
    commands, books = make_commands(), Books()
    account, line_id, txn = await purchase(commands, books, amount=100_001)
    plan = await step(commands, books, "credit.installments", account=account, txn=txn, count=3, rate_bp=0)
    plan_id = str(plan["plan"])
    assert [s["amount"] for s in plan["schedule"]] == [33_335, 33_333, 33_333]
    nothing = await step(commands, books, "credit.bill_installments", day="2026-04-14")
    assert nothing["count"] == 0
    first = await step(commands, books, "credit.bill_installments", day="2026-04-15")
    assert first["billed"][0]["amount"] == 33_335
    assert commands.state.accounts[account].ledger_balance == -33_335
    again = await step(commands, books, "credit.bill_installments", day="2026-04-15")
    assert again["count"] == 0  # running twice a day bills nothing more
    owed_before = commands.state.credit_lines[line_id].owed
    rest = await step(commands, books, "credit.bill_installments", day="2026-12-31")  # catch-up of 2 and 3
    assert [b["installment"] for b in rest["billed"]] == [2, 3]
    state_plan = commands.state.plans[plan_id]
    assert state_plan.status == "completed" and state_plan.billed == 3
    assert commands.state.credit_lines[line_id].owed == owed_before  # billing moves debt, it adds none
    assert books.balance(installments.sub_ledger(plan_id)) == 0
    assert commands.state.accounts[account].ledger_balance == -100_001
    books.check(commands.state)


async def test_conversion_refusals_leave_nothing_changed() -> None:
    commands, books = make_commands(), Books()
    account, line_id, txn = await purchase(commands, books)
    await step(commands, books, "credit.installments", account=account, txn=txn, count=2)
    cases = [
        ({"txn": txn, "count": 2}, "already converted"),
        ({"txn": "M00-99", "count": 2}, "unknown transaction"),
        ({"txn": "ref:nope", "count": 2}, "no purchase posted with reference 'nope'"),
    ]
    second = await step(commands, books, "account.post", account=account, amount=10_000, reference="second")
    cases += [
        ({"txn": second["txn"], "count": 25}, "count must be 2..24"),  # credit-gold installment.max_count
        ({"txn": second["txn"], "count": 1}, "must be 2..999"),
        ({"txn": second["txn"], "count": 2, "rate_bp": 10_001}, "must be 0..10000"),
    ]
    for args, reason in cases:
        with pytest.raises(CommandError, match=reason):
            await commands.run("credit.installments", {"account": account, **args})
    commands.state.credit_lines[line_id].limit = commands.state.credit_lines[line_id].owed + 10  # almost full
    with pytest.raises(CommandError, match="exceeds the open-to-buy 10"):
        await commands.run("credit.installments", {"account": account, "txn": second["txn"], "count": 2})
    assert len(commands.state.plans) == 1


async def test_a_debit_purchase_cannot_be_converted() -> None:
    commands = make_commands()
    customer = (await run(commands, "customer.open", name="D", external_ref="D1"))["customer"]
    account = (await run(commands, "account.open", customer=customer, kind="checking",
                         product="debit-classic"))["account"]
    await run(commands, "account.deposit", account=account, amount=5_000, reference="d")
    posted = await run(commands, "account.post", account=account, amount=1_000, reference="p")
    with pytest.raises(CommandError, match="not a credit card account"):
        await commands.run("credit.installments", {"account": account, "txn": posted["txn"], "count": 2})


@given(st.integers(1, 10**9), st.integers(1, 60))
def test_split_adds_up_and_differs_by_less_than_count(total: int, count: int) -> None:
    parts = installments.split(total, count)
    assert sum(parts) == total and len(parts) == count
    assert max(parts) - min(parts) < count


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)), (date(2028, 1, 31), 1, date(2028, 2, 29)),
    (date(2026, 11, 30), 3, date(2027, 2, 28)), (date(2026, 3, 15), 12, date(2027, 3, 15)),
    (date(2026, 12, 1), 1, date(2027, 1, 1)),
])
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int, expected: date) -> None:
    assert installments.add_months(day, months) == expected


async def test_bill_day_defaults_to_the_clock_and_rejects_garbage() -> None:
    commands, books = make_commands(), Books()
    account, _, txn = await purchase(commands, books)
    await step(commands, books, "credit.installments", account=account, txn=txn, count=2)
    assert (await run(commands, "credit.bill_installments"))["day"] == NOW.date().isoformat()
    with pytest.raises(CommandError, match="expected a date"):
        await commands.run("credit.bill_installments", {"day": "15/04/2026"})
    commands.clock = lambda: NOW + timedelta(days=31)
    assert (await run(commands, "credit.bill_installments"))["count"] == 1


def test_owed_follows_one_rule_through_refund_conversion_and_purchase() -> None:
    """Refund, then convert the refunded purchase, then buy again: ``owed`` stays -(card accounts + INST
    sub-ledgers) throughout (the storage ledger check's rule) and open-to-buy is limit - max(owed, 0) - held."""
    from tests.processors.engine_kit import CATALOG, CREDIT_PAN_1, make_world, request

    world = make_world()
    line = world.state.credit_lines["0100000031"]

    def ledger_owed() -> int:
        members = {a.id for a in world.state.accounts.values() if a.credit_line_id == line.id}
        members |= {installments.sub_ledger(p.id) for p in world.state.plans.values()}
        return -sum(e.amount for p in world.postings for e in p.entries if e.account in members)

    assert world.handle(request("0200", "000000", 10_000, CREDIT_PAN_1)).response[39] == "00"  # type: ignore[index]
    purchase_id = next(t.id for t in world.state.txns.values() if t.txn_type == "purchase")
    world.handle(request("0200", "200000", 10_000, CREDIT_PAN_1))
    assert line.owed == 0 == ledger_owed()
    effects = Effects()
    installments.convert(world.state, installments.quote(world.state, CATALOG, "0100000032", purchase_id, 4, 0),
                         world.clock(), effects)
    world.record(effects)
    assert line.owed == ledger_owed() == 0 and line.open_to_buy == 100_000
    world.handle(request("0200", "000000", 10_000, CREDIT_PAN_1))
    assert line.owed == ledger_owed() == 10_000 and line.open_to_buy == 90_000
