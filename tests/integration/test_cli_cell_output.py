"""What ``bulkhead customers|accounts|cards|credit`` print for people (issue 11 item 13), run against a cell: amounts
in major units with their ISO 4217 code by the currency's exponent (CNY two decimals, JPY none), times in UTC with
their zone, and ``--json`` keeping minor units as integers. First with the cell stopped (the commands load it under
its lock), then against the running cell process through its admin socket. No clear PAN is printed."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import Result

from processors.cell.section import cells_of
from switch.config import load_config
from tests.integration.cells_harness import cell_process, ref_for_cell, write_cells_config
from tests.integration.harness import Cli

pytestmark = pytest.mark.slow

CREDIT_PRODUCT = """
[products.credit-test]
kind = "credit"
bins = ["520000"]
currency = "USD"
keys = "demo"
credit_limit = 500000
cash_limit = 100000
"""
UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def value(result: Result, key: str) -> str:
    """What is printed on ``key``'s line (the key, then two or more spaces), with the lines under it that belong to
    it (indented to the value's column), one a line."""
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for n, line in enumerate(lines):
        if line.startswith(key + "  "):
            column = len(line) - len(line[len(key):].lstrip())
            values = [line[column:]]
            for extra in lines[n + 1:]:
                if extra[:column].strip() or not extra.strip():
                    break
                values.append(extra[column:])
            return "\n".join(values)
    raise AssertionError(f"no {key!r} line in:\n{result.output}")


async def test_amounts_and_times_are_printed_for_people_and_json_keeps_minor_units(tmp_path: Path) -> None:
    write_cells_config(tmp_path, count=2)
    with (tmp_path / "products.toml").open("a") as products:
        products.write(CREDIT_PRODUCT)
    cells = cells_of(load_config(tmp_path / "node.toml").sections)
    assert cells is not None
    perso = tmp_path / "perso.csv"
    cli = Cli(tmp_path / "node.toml", ())
    ref = ref_for_cell(1, 2)

    customer = value(await cli("customers", "open", "--name", "Ann Example", "--ref", ref), "customer")
    assert customer.startswith("01")
    yuan = value(await cli("accounts", "open", "--customer", customer, "--kind", "checking", "--product",
                           "debit-test", "--currency", "CNY"), "account")
    deposited = await cli("accounts", "deposit", yuan, "--amount", "1234.56", "--reference", "first")
    assert value(deposited, "ledger_balance") == "1,234.56 CNY"
    assert value(deposited, "available") == "1,234.56 CNY" and value(deposited, "held") == "0.00 CNY"
    assert UTC_TIME.match(value(deposited, "opened_at"))
    yen = value(await cli("accounts", "open", "--customer", customer, "--kind", "savings", "--product",
                          "debit-test", "--currency", "JPY"), "account")
    assert value(await cli("accounts", "deposit", yen, "--amount", "1500"), "ledger_balance") == "1,500 JPY"
    assert (await cli("accounts", "deposit", yen, "--amount", "1.5")).exit_code == 2  # JPY has no decimals

    machine = json.loads((await cli("accounts", "show", yuan, "--json")).output)
    assert (machine["ledger_balance"], machine["available"], machine["currency"]) == (123_456, 123_456, "CNY")

    shown = await cli("customers", "show", customer)
    assert value(shown, "accounts").splitlines() == [
        f"{yuan}  checking  debit-test  ledger 1,234.56 CNY  available 1,234.56 CNY  active",
        f"{yen}  savings  debit-test  ledger 1,500 JPY  available 1,500 JPY  active",
    ]
    assert UTC_TIME.match(value(shown, "created_at")) and value(shown, "credit_line") == "-"

    await cli("accounts", "set-pricing", yuan, "--item", "overdraft", "--value", "50000")
    priced = await cli("accounts", "set-pricing", yuan, "--item", "fee.withdrawal.atm.foreign", "--value",
                       "{ fixed = 150, rate_bp = 50, max = 500 }")
    assert value(priced, "pricing").splitlines() == [
        "fee.withdrawal.atm.foreign 1.50 CNY + 0.50% (max 5.00 CNY)", "overdraft 500.00 CNY"]
    assert value(priced, "available") == "1,734.56 CNY"  # the overdraft counts as available

    dollars = value(await cli("accounts", "open", "--customer", customer, "--kind", "checking", "--product",
                              "debit-test"), "account")  # a debit card's account is in its product's currency
    issued = await cli("cards", "issue", "--customer", customer, "--product", "debit-test", "--account", dollars,
                       "--activate", "--perso-file", str(perso))
    card = value(issued, "card")
    pan = next(csv.reader(perso.open()))[1]
    cli.clear_pans = (pan,)
    limited = await cli("cards", "set-limits", card, "--channel", "atm", "--per-txn", "200", "--daily-amount",
                        "1000.50", "--daily-count", "3")
    assert value(limited, "limits") == "atm: 200.00 USD per transaction, 1,000.50 USD a day, 3 transactions a day"
    card_shown = await cli("cards", "show", card)
    assert value(card_shown, "currency") == "USD" and value(card_shown, "pin_set") == "no"
    assert value(card_shown, "masked_pan") == f"{pan[:6]}******{pan[-4:]}"
    assert UTC_TIME.match(value(card_shown, "issued_at")) and value(card_shown, "replaces") == "-"
    assert json.loads((await cli("cards", "show", card, "--json")).output)["limits"] == {
        "atm": {"per_txn": 20_000, "daily_amount": 100_050, "daily_count": 3}}

    await cli("accounts", "open", "--customer", customer, "--kind", "credit", "--product", "credit-test")
    line = await cli("credit", "show", customer)
    assert value(line, "limit") == "5,000.00 USD" and value(line, "open_to_buy") == "5,000.00 USD"
    assert value(line, "plans") == "none"
    raised = await cli("credit", "set-limit", customer, "--limit", "6000", "--cash-limit", "1500.25")
    assert value(raised, "limit") == "6,000.00 USD" and value(raised, "cash_limit") == "1,500.25 USD"
    paid = await cli("credit", "pay", f"ref:{ref}/credit", "--amount", "10", "--reference", "PAY-1")
    assert value(paid, "owed") == "-10.00 USD"  # paid ahead: the line is in credit
    assert value(paid, "ledger_balance") == "10.00 USD"

    # The same commands through the running cell's admin socket print the same.
    async with cell_process(cells, 1):
        assert value(await cli("accounts", "show", yen), "ledger_balance") == "1,500 JPY"
        assert value(await cli("credit", "show", customer), "limit") == "6,000.00 USD"
        live = json.loads((await cli("credit", "show", customer, "--json")).output)
        assert (live["limit"], live["cash_limit"], live["owed"]) == (600_000, 150_025, -1_000)
        assert value(await cli("customers", "show", customer), "accounts").splitlines()[0].endswith(
            "ledger 1,234.56 CNY  available 1,734.56 CNY  active")
    cli.assert_no_clear_pan()
