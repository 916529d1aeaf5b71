"""Commands: customers and accounts, deposits and posted purchases, account pricing; effects recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.cardnumber import cell_for_external_ref
from processors.commands import CellCommands, CommandError, command_names
from processors.ledger import check_postings
from processors.model import Customer, EarlyReversal, Posting, Sequence

from .commands_kit import credit_customer, customer_with_checking, make_commands, postings, run


def ref_for_cell(cell: int, count: int) -> str:
    return next(f"CIF-{i}" for i in range(1000) if cell_for_external_ref(f"CIF-{i}", count) == cell)


async def test_customer_open_numbers_carry_the_cell_and_effects_hold_snapshots() -> None:
    commands = make_commands(cell=3, cell_count=5)
    ref = ref_for_cell(3, 5)
    result, effects = await commands.run("customer.open", {"name": "Ann Lee", "external_ref": ref})
    assert result["customer"] == "0300000001" and result["cell"] == 3
    assert [kind for kind, _ in effects.rows] == [Sequence, Customer]
    assert effects.rows[1][1]["external_ref"] == ref
    other = next(f"X{i}" for i in range(1000) if cell_for_external_ref(f"X{i}", 5) == 3)
    second = await run(commands, "customer.open", name="Bo", external_ref=other)
    assert second["customer"] == "0300000002"


async def test_customer_open_refuses_another_cells_customer_and_a_duplicate_ref() -> None:
    commands = make_commands(cell=0, cell_count=2)
    with pytest.raises(CommandError, match="belongs to cell 1"):
        await commands.run("customer.open", {"name": "Bob", "external_ref": "DEMO-BOB"})
    await run(commands, "customer.open", name="Alice", external_ref="DEMO-ALICE")
    with pytest.raises(CommandError, match="already customer 0000000001"):
        await commands.run("customer.open", {"name": "Alice again", "external_ref": "DEMO-ALICE"})


async def test_customer_show_by_number_or_external_ref() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands, "CIF-9")
    by_ref = await run(commands, "customer.show", customer="ref:CIF-9")
    assert by_ref == await run(commands, "customer.show", customer=customer)
    assert [a["kind"] for a in by_ref["accounts"]] == ["checking"]
    with pytest.raises(CommandError, match="no customer with external_ref 'CIF-0'"):
        await commands.run("customer.show", {"customer": "ref:CIF-0"})
    with pytest.raises(CommandError, match="belongs to cell 4"):
        await commands.run("customer.show", {"customer": "0400000001"})


async def test_account_open_checks_kind_against_product() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands, deposit=0)
    with pytest.raises(CommandError, match="checking account cannot have the credit product"):
        await commands.run("account.open", {"customer": customer, "kind": "checking", "product": "credit-gold"})
    with pytest.raises(CommandError, match="credit account cannot have the debit product"):
        await commands.run("account.open", {"customer": customer, "kind": "credit", "product": "debit-classic"})
    with pytest.raises(CommandError, match="must be one of checking, savings, credit"):
        await commands.run("account.open", {"customer": customer, "kind": "loan", "product": "debit-classic"})
    eur = await run(commands, "account.open", customer=customer, kind="savings", product="debit-classic",
                    currency="EUR")
    assert eur["currency"] == "EUR" and eur["account"] == "0000000002"


async def test_credit_accounts_share_one_customer_level_line() -> None:
    commands = make_commands()
    customer = (await run(commands, "customer.open", name="C", external_ref="C1"))["customer"]
    first, effects = await commands.run("account.open", {"customer": customer, "kind": "credit",
                                                         "product": "credit-gold"})
    assert first["credit_line"] == "0000000001" and first["available"] == 500_000
    assert {kind.__name__ for kind, _ in effects.rows} == {"Sequence", "CreditLine", "Account"}
    second = await run(commands, "account.open", customer=customer, kind="credit", product="credit-gold")
    assert second["credit_line"] == first["credit_line"]
    assert len(commands.state.credit_lines) == 1


async def test_deposit_posts_against_gl_cash_once_per_reference() -> None:
    commands = make_commands()
    await customer_with_checking(commands, "CIF-1", deposit=0)
    result, effects = await commands.run("account.deposit", {"account": "ref:CIF-1/checking", "amount": 12_345,
                                                             "reference": "slip-1"})
    assert result["ledger_balance"] == result["available"] == 12_345
    [posting] = postings(effects)
    entries = [row for kind, row in effects.rows if kind.__name__ == "Entry"]
    assert sorted((e["account"], e["amount"]) for e in entries) == [("0000000001", 12_345), ("GL:CASH", -12_345)]
    assert posting["txn_id"] == result["txn"]
    txn = commands.state.txns[result["txn"]]
    assert txn.txn_type == "deposit" and txn.channel == "manual" and txn.posting_id == posting["id"]
    with pytest.raises(CommandError, match="'slip-1' was already used"):
        await commands.run("account.deposit", {"account": "0000000001", "amount": 1, "reference": "slip-1"})
    with pytest.raises(CommandError, match="is in USD, not EUR"):
        await commands.run("account.deposit", {"account": "0000000001", "amount": 1, "reference": "s2",
                                               "currency": "EUR"})


async def test_every_posting_balances_and_balances_match_entries() -> None:
    commands = make_commands()
    await customer_with_checking(commands, "CIF-1", deposit=50_000)
    all_postings: list[Posting] = []
    for amount, ref in ((100, "a"), (2_000, "b")):
        _, effects = await commands.run("account.post", {"account": "ref:CIF-1/checking", "amount": amount,
                                                         "reference": ref})
        for kind, row in effects.rows:
            if kind is Posting:
                all_postings.append(Posting(**row))
    assert check_postings(all_postings) == []
    assert commands.state.accounts["0000000001"].ledger_balance == 50_000 - 2_100
    with pytest.raises(CommandError, match="exceeds the available balance"):
        await commands.run("account.post", {"account": "0000000001", "amount": 50_000, "reference": "c"})


async def test_account_reference_by_customer_and_kind_must_be_unambiguous() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands, "CIF-1", deposit=0)
    await run(commands, "account.open", customer=customer, kind="checking", product="debit-classic")
    with pytest.raises(CommandError, match="has 2 active 'checking' accounts"):
        await commands.run("account.show", {"account": "ref:CIF-1/checking"})
    with pytest.raises(CommandError, match="has 0 active 'savings' accounts"):
        await commands.run("account.show", {"account": f"{customer}/savings"})


async def test_account_set_pricing_validates_and_removes() -> None:
    commands = make_commands()
    _, account = await credit_customer(commands)
    result = await run(commands, "account.set_pricing", account=account, item="cash_advance.fee",
                       value={"fixed": 100})
    assert result["pricing"] == {"cash_advance.fee": {"fixed": 100, "rate_bp": 0, "min": 0, "max": 0}}
    await run(commands, "account.set_pricing", account=account, item="installment.fee_rate_bp", value=50)
    with pytest.raises(CommandError, match="unknown pricing item"):
        await commands.run("account.set_pricing", {"account": account, "item": "instalment.fee_rate_bp", "value": 1})
    result = await run(commands, "account.set_pricing", account=account, item="cash_advance.fee", value=None)
    assert result["pricing"] == {"installment.fee_rate_bp": 50}
    with pytest.raises(CommandError, match="has no override"):
        await commands.run("account.set_pricing", {"account": account, "item": "cash_advance.fee", "value": None})


async def test_unknown_commands_and_arguments_get_suggestions() -> None:
    commands = make_commands()
    await customer_with_checking(commands, deposit=0)
    with pytest.raises(CommandError, match=r"did you mean 'customer\.open'"):
        await commands.run("customer.opne", {})
    with pytest.raises(CommandError, match="externalref: unknown argument \\(did you mean 'external_ref'"):
        await commands.run("customer.open", {"name": "x", "external_ref": "y", "externalref": "y"})
    with pytest.raises(CommandError, match="name: is required"):
        await commands.run("customer.open", {"external_ref": "y"})
    with pytest.raises(CommandError, match="amount: expected an integer"):
        await commands.run("account.deposit", {"account": "0000000001", "amount": "10", "reference": "r"})
    with pytest.raises(CommandError, match="arguments must be an object"):
        await commands.run("cell.stats", [])  # type: ignore[arg-type]
    assert "credit.installments" in command_names() and len(command_names()) == 28  # + card.events
    assert {"credit.payment", "account.close", "customer.close"} <= set(command_names())


def test_constructor_refuses_a_cell_outside_the_count() -> None:
    with pytest.raises(ValueError, match="not one of 2 cells"):
        make_commands(cell=2, cell_count=2)
    assert isinstance(make_commands(cell=1, cell_count=2), CellCommands)


async def test_cell_stats_counts() -> None:
    commands = make_commands()
    await customer_with_checking(commands, "CIF-1", deposit=700)
    await customer_with_checking(commands, "CIF-2", deposit=300)
    stats, effects = await commands.run("cell.stats", {})
    assert not effects
    assert stats["customers"] == 2 and stats["accounts"] == 2 and stats["deposits"] == {"USD": 1_000}
    assert stats["cards"] == {} and stats["credit_owed"] == {}
    assert stats["early_reversals"] == 0
    now = datetime(2025, 6, 15, tzinfo=UTC)
    commands.state.put(EarlyReversal(
        id="040|000002|0615120000|T1|1", original_key="2|000001|0615120000|1", alternate_key="", pan_hash="h",
        mti="0400", stan="000002", transmitted="0615120000", terminal="T1", acquirer="1", rrn="", replacement=None,
        received_at=now, expires_at=now + timedelta(days=35)))
    assert (await commands.run("cell.stats", {}))[0]["early_reversals"] == 1
