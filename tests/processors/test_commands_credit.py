"""Commands: the customer-level credit line (limits, views)."""

from __future__ import annotations

import pytest

from processors.commands import CommandError

from .commands_kit import credit_customer, make_commands, run


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
