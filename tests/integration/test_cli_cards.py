"""``bulkhead customers|accounts|cards|credit|ledger`` and ``cell seed`` as an operator uses them, with the
cells stopped (commands run in-process under each cell's lock). Every output is scanned: no clear PAN."""

from __future__ import annotations

import csv
import json
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hsm.testing import TestPinPad
from processors.cardnumber import cell_for_external_ref
from processors.catalog_file import load_catalog
from switch.cli.main import main

DEMO = Path(__file__).resolve().parents[2] / "conf" / "demo"
PAN_RE = re.compile(r"\b(476173|520000)\d{10}\b")

NODE = """
[node]
name = "cli-cards"
var_dir = "{var}"
routes = "routes.toml"

[hsm]
kind = "software"
test_lmk = true

[cells]
count = 2
base_port = 19700
products = "products.toml"
hsm = {{ kind = "software", test_lmk = true }}
"""


class Cli:
    def __init__(self, conf: Path) -> None:
        self.conf = conf
        self.outputs: list[str] = []

    def __call__(self, *args: str, ok: bool = True, input: str | None = None) -> Result:
        result = CliRunner().invoke(main, [*args, "--conf", str(self.conf)], input=input)
        self.outputs.append(result.output)
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0, result.output
        return result

    def fields(self, *args: str) -> dict[str, str]:
        out = self(*args).output
        pairs = (line.strip().partition(" ") for line in out.splitlines() if line.strip())
        return {key: value.strip() for key, _, value in pairs}


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    (tmp_path / "node.toml").write_text(NODE.format(var=tmp_path / "var"))
    shutil.copy(DEMO / "products.toml", tmp_path / "products.toml")
    (tmp_path / "routes.toml").write_text('default = "cell"\n[destinations.cell]\nlinks = ["cell-00"]\n')
    c = Cli(tmp_path / "node.toml")
    yield c
    for output in c.outputs:
        assert not PAN_RE.search(output), output


def test_customer_account_card_lifecycle(cli: Cli, tmp_path: Path) -> None:
    customer = cli.fields("customers", "open", "--name", "Ann Example", "--ref", "CIF-0001")["customer"]
    cell = int(customer[:2])
    account = cli.fields("accounts", "open", "--customer", customer, "--kind", "checking",
                         "--product", "debit-classic")["account"]
    assert account[:2] == customer[:2]
    cli("accounts", "deposit", account, "--amount", "125.50", "--reference", "first deposit")
    shown = cli.fields("accounts", "show", account)
    assert shown["ledger_balance"] == "125.50 USD" and shown["available"] == "125.50 USD"
    assert json.loads(cli("accounts", "show", account, "--json").output)["ledger_balance"] == 12550  # minor units

    perso = tmp_path / "perso.csv"
    issued = cli.fields("cards", "issue", "--customer", customer, "--product", "debit-classic",
                        "--vanity", "4242424", "--perso-file", str(perso))
    assert stat.S_IMODE(perso.stat().st_mode) == 0o600
    card_id, pan, expiry, product = next(csv.reader(perso.open()))
    assert card_id == issued["card"] and product == "debit-classic" and len(expiry) == 4
    assert pan.startswith(f"476173{cell:02d}4242424") and len(pan) == 16
    assert issued["masked_pan"] == f"{pan[:6]}******{pan[-4:]}"
    assert issued["status"] == "inactive"

    cli("cards", "activate", card_id)
    # PIN through the HSM: a PIN block under the key set's ZPK, as a PIN pad would produce it.
    zpk = load_catalog(tmp_path / "products.toml").keys["demo"].zpk
    block = TestPinPad().pin_block("ZPK", zpk, "2468", pan).hex().upper()
    cli("cards", "set-pin", card_id, "--pin-block", block)
    assert cli.fields("cards", "show", card_id)["pin_set"] == "yes"
    cli("cards", "reset-pin", card_id)
    assert cli.fields("cards", "show", card_id)["pin_set"] == "no"

    cli("cards", "block", card_id, "--status", "lost", "--reason", "lost on the bus")
    assert cli.fields("cards", "show", card_id)["status"] == "lost"
    cli("cards", "unblock", card_id, ok=False)  # lost is final: only blocked cards unblock
    cli("cards", "set-limits", card_id, "--channel", "atm", "--per-txn", "20", "--daily-count", "2")
    assert cli.fields("cards", "show", card_id)["limits"] == "atm: 20.00 USD per transaction, 2 transactions a day"

    replaced = cli.fields("cards", "replace", card_id, "--new-number", "--reason", "lost", "--perso-file",
                          str(perso))
    assert replaced["card"] != card_id
    assert cli.fields("cards", "show", card_id)["status"] == "replaced"
    assert len(list(csv.reader(perso.open()))) == 2

    result = cli("ledger", "check")
    assert "cell 00: OK" in result.output and "cell 01: OK" in result.output
    report = json.loads(cli("ledger", "check", "--json").output)
    assert report["ok"] is True and [c["cell"] for c in report["cells"]] == [0, 1]
    assert all(c["ok"] and c["problems"] == [] for c in report["cells"])
    assert sum(c["counts"].get("postings", 0) for c in report["cells"]) > 0


def test_failed_commands_change_nothing(cli: Cli) -> None:
    customer = cli.fields("customers", "open", "--name", "Bea Example", "--ref", "CIF-0002")["customer"]
    account = cli.fields("accounts", "open", "--customer", customer, "--kind", "checking",
                         "--product", "debit-classic")["account"]
    cli("accounts", "deposit", account, "--amount", "10.00", "--reference", "dep-1")
    before = cli("customers", "show", customer).output
    cli("accounts", "deposit", account, "--amount", "10.00", "--reference", "dep-1", ok=False)  # reused reference
    cli("accounts", "deposit", account, "--amount", "1.001", ok=False)  # more decimals than USD has
    cli("accounts", "open", "--customer", customer, "--kind", "checking", "--product", "no-such", ok=False)
    cli("cards", "issue", "--customer", customer, "--product", "debit-classic", "--vanity", "12", ok=False)
    cli("customers", "open", "--name", "Bea Again", "--ref", "CIF-0002", ok=False)  # same reference
    for bad in ("Infinity", "NaN", "sNaN", "-1", "1e30", "ten"):
        result = cli("accounts", "deposit", account, "--amount", bad, "--reference", f"bad-{bad}", ok=False)
        assert "not an amount" in result.output and "Traceback" not in result.output
    # No personalisation file, or one that cannot be written: refused before any card is issued.
    cli("cards", "issue", "--customer", customer, "--product", "debit-classic", ok=False)
    unwritable = cli("cards", "issue", "--customer", customer, "--product", "debit-classic", "--perso-file",
                     "/nonexistent/dir/perso.csv", ok=False)
    assert "cannot open the personalisation file" in unwritable.output
    assert cli("customers", "show", customer).output == before
    assert "does not exist" in cli("ledger", "check", "--cell", "99", ok=False).output
    assert "OK" in cli("ledger", "check").output


def test_credit_line_and_installments(cli: Cli) -> None:
    customer = cli.fields("customers", "open", "--name", "Cy Example", "--ref", "CIF-0003")["customer"]
    cli("accounts", "open", "--customer", customer, "--kind", "credit", "--product", "credit-gold")
    shown = cli("credit", "show", customer, "--json").output
    assert '"limit": 500000' in shown
    cli("credit", "set-limit", customer, "--limit", "2000", "--cash-limit", "300")
    assert '"limit": 200000' in cli("credit", "show", "ref:CIF-0003", "--json").output
    cli("credit", "set-limit", customer, "--limit", "-5", ok=False)


def test_credit_payment_lowers_owed_and_raises_open_to_buy(cli: Cli) -> None:
    cli("cell", "seed")  # Erin (cell 01): a 1,200.00 purchase converted into installments, all owed
    before = json.loads(cli("credit", "show", "ref:DEMO-ERIN", "--json").output)
    assert before["owed"] > 10_000
    paid = json.loads(cli("credit", "pay", "ref:DEMO-ERIN/credit", "--amount", "100.00", "--reference", "PAY-1",
                          "--json").output)
    assert paid["owed"] == before["owed"] - 10_000 and paid["open_to_buy"] == before["open_to_buy"] + 10_000
    after = json.loads(cli("credit", "show", "ref:DEMO-ERIN", "--json").output)
    assert (after["owed"], after["open_to_buy"]) == (paid["owed"], paid["open_to_buy"])
    assert "already used for a payment" in cli("credit", "pay", "ref:DEMO-ERIN/credit", "--amount", "100.00",
                                               "--reference", "PAY-1", ok=False).output
    assert "must be 1.." in cli("credit", "pay", "ref:DEMO-ERIN/credit", "--amount", "0", "--reference", "PAY-2",
                                ok=False).output
    assert "payments go to credit card accounts" in cli("credit", "pay", "ref:DEMO-ALICE/checking", "--amount", "1",
                                                        "--reference", "PAY-3", ok=False).output
    assert json.loads(cli("credit", "show", "ref:DEMO-ERIN", "--json").output) == after
    assert "cell 01: OK" in cli("ledger", "check").output


def test_close_accounts_and_customers(cli: Cli) -> None:
    # A reference whose "<ref>/savings" would hash to the other cell: the CLI must find the customer's cell.
    ref = next(f"CIF-C{n}" for n in range(100)
               if cell_for_external_ref(f"CIF-C{n}", 2) != cell_for_external_ref(f"CIF-C{n}/savings", 2))
    customer = cli.fields("customers", "open", "--name", "Di Example", "--ref", ref)["customer"]
    checking = cli.fields("accounts", "open", "--customer", customer, "--kind", "checking",
                          "--product", "debit-classic")["account"]
    cli("accounts", "open", "--customer", customer, "--kind", "savings", "--product", "debit-classic")
    cli("accounts", "deposit", checking, "--amount", "10.00", "--reference", "dep-1")
    refused = cli("accounts", "close", checking, ok=False).output
    assert "cannot be closed: its ledger balance is 1000 USD" in refused
    assert cli.fields("accounts", "show", checking)["status"] == "active"
    savings = cli.fields("accounts", "close", f"ref:{ref}/savings")
    assert savings["status"] == "closed"
    assert "is closed" in cli("accounts", "deposit", savings["account"], "--amount", "1", ok=False).output
    refused = cli("customers", "close", customer, ok=False).output
    assert f"open account(s) {checking} (checking)" in refused
    assert cli.fields("customers", "show", customer)["status"] == "active"

    empty = cli.fields("customers", "open", "--name", "Ed Example", "--ref", "CIF-C-EMPTY")["customer"]
    account = cli.fields("accounts", "open", "--customer", empty, "--kind", "checking",
                         "--product", "debit-classic")["account"]
    assert cli.fields("accounts", "close", account)["status"] == "closed"
    assert cli.fields("customers", "close", "ref:CIF-C-EMPTY")["status"] == "closed"
    assert "already closed" in cli("customers", "close", empty, ok=False).output
    assert "is closed" in cli("accounts", "open", "--customer", empty, "--kind", "savings", "--product",
                              "debit-classic", ok=False).output
    assert "OK" in cli("ledger", "check").output


def test_issue_batch_from_csv(cli: Cli, tmp_path: Path) -> None:
    customers = []
    for n in range(3):
        cid = cli.fields("customers", "open", "--name", f"Batch {n}", "--ref", f"CIF-B{n}")["customer"]
        cli("accounts", "open", "--customer", cid, "--kind", "checking", "--product", "debit-classic")
        customers.append(cid)
    rows = tmp_path / "cards.csv"
    rows.write_text("customer,product,activate\n" + "".join(f"{c},debit-classic,yes\n" for c in customers))
    perso = tmp_path / "batch.csv"
    result = cli("cards", "issue-batch", "--csv", str(rows), "--perso-file", str(perso))
    assert "issued 3 card(s), 0 failed" in result.output
    assert len(list(csv.reader(perso.open()))) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("customer,product\n,debit-classic\n")
    result = cli("cards", "issue-batch", "--csv", str(bad), "--perso-file", str(perso), ok=False)
    assert "customer and product are required" in result.output


def test_issue_batch_checks_every_row_in_its_cell_before_issuing_any(cli: Cli, tmp_path: Path) -> None:
    customers = []
    for n in range(3):
        cid = cli.fields("customers", "open", "--name", f"Batch {n}", "--ref", f"CIF-C{n}")["customer"]
        cli("accounts", "open", "--customer", cid, "--kind", "checking", "--product", "debit-classic")
        customers.append(cid)
    before = [cli("customers", "show", c).output for c in customers]
    rows = tmp_path / "cards.csv"
    rows.write_text("customer,product,activate\n" + "".join(f"{c},debit-classic,yes\n" for c in customers)
                    + "0099999999,debit-classic,no\n"  # no such customer (cell 00 exists)
                    + f"{customers[0]},no-such-product,no\n"
                    + f"{customers[1]},credit-gold,no\n")  # a credit card without a credit account
    perso = tmp_path / "batch.csv"
    result = cli("cards", "issue-batch", "--csv", str(rows), "--perso-file", str(perso), ok=False)
    assert "nothing issued: 3 row(s) refused" in result.output
    assert f"{rows}:5: card.issue: customer: unknown customer 0099999999" in result.output
    assert f"{rows}:6: card.issue: product: unknown product 'no-such-product'" in result.output
    assert f"{rows}:7: card.issue: customer: customer {customers[1]} has no active credit account" in result.output
    assert "issued" not in result.output.replace("nothing issued", "")
    assert not perso.exists()
    assert [cli("customers", "show", c).output for c in customers] == before
    twice = tmp_path / "twice.csv"
    twice.write_text(f"customer,product,vanity\n{customers[0]},debit-classic,1234567\n"
                     f"{customers[0]},debit-classic,1234567\n")
    result = cli("cards", "issue-batch", "--csv", str(twice), "--perso-file", str(perso), ok=False)
    assert f"{twice}:3: the same vanity number is asked for on line 2 too" in result.output and not perso.exists()
    assert "1234567" not in result.output  # the digits with the BIN would give the number away


def test_issue_batch_names_an_unknown_column(cli: Cli, tmp_path: Path) -> None:
    rows = tmp_path / "cards.csv"
    rows.write_text("customer,prodcut,colour\n0000000001,debit-classic,red\n")
    result = cli("cards", "issue-batch", "--csv", str(rows), "--perso-file", str(tmp_path / "p.csv"), ok=False)
    assert f"{rows}:1: unknown column 'prodcut' (did you mean 'product'?); the columns are customer, product, " \
           "account, vanity, activate" in result.output
    assert f"{rows}:1: unknown column 'colour';" in result.output
    assert f"{rows}:1: column 'product' is missing" in result.output
    assert "customer and product are required" not in result.output


def test_cards_show_says_what_is_wrong_with_a_card_number(cli: Cli) -> None:
    cli("cell", "seed")
    assert cli.fields("cards", "show", "4761730010000019")["status"] == "active"  # ours
    other_bank = cli("cards", "show", "4761739001010010", ok=False).output  # our BIN, digits 7-8 = 90
    assert "476173******0010: not a card of this bank (its digits 7-8, 90, name no cell: this node has 2)" \
        in other_bank
    bad_digit = cli("cards", "show", "4761730010000018", ok=False).output
    assert "476173******0018: not a valid card number (its check digit is wrong)" in bad_digit
    foreign = cli("cards", "show", "5500000000000004", ok=False).output
    assert "550000******0004: not a card of this bank (no product has BIN 550000)" in foreign
    for output in (other_bank, bad_digit, foreign):
        assert "does not exist" not in output


def test_a_failed_card_issue_leaves_no_personalisation_file(cli: Cli, tmp_path: Path) -> None:
    customer = cli.fields("customers", "open", "--name", "Cy Example", "--ref", "CIF-0003")["customer"]
    perso = tmp_path / "perso.csv"
    result = cli("cards", "issue", "--customer", customer, "--product", "debit-classic", "--perso-file",
                 str(perso), ok=False)  # no account yet
    assert "has no active checking or savings account" in result.output
    assert not perso.exists()
    cli("accounts", "open", "--customer", customer, "--kind", "checking", "--product", "debit-classic")
    cli("cards", "issue", "--customer", customer, "--product", "debit-classic", "--perso-file", str(perso))
    cli("cards", "issue", "--customer", customer, "--product", "no-such", "--perso-file", str(perso), ok=False)
    assert len(list(csv.reader(perso.open()))) == 1  # a file that was there stays, with its cards


def test_demo_seed_is_idempotent(cli: Cli) -> None:
    first = cli("cell", "seed").output
    assert "cell 00: seeded" in first and "cell 01: seeded" in first
    second = cli("cell", "seed").output
    assert "not seeded" in second
    assert cli.fields("cards", "show", "4761730110000042")["status"] == "lost"
    assert "OK" in cli("ledger", "check").output


def test_accounts_set_pricing_sets_and_removes_an_account_level_item(cli: Cli) -> None:
    customer = cli.fields("customers", "open", "--name", "Di Example", "--ref", "CIF-0004")["customer"]
    account = cli.fields("accounts", "open", "--customer", customer, "--kind", "checking",
                         "--product", "debit-classic")["account"]
    cli("accounts", "deposit", account, "--amount", "10.00")
    assert cli.fields("accounts", "show", account)["available"] == "10.00 USD"
    cli("accounts", "set-pricing", account, "--item", "overdraft", "--value", "5000")
    shown = cli.fields("accounts", "show", account)  # read back from the cell's database
    assert shown["available"] == "60.00 USD" and shown["pricing"] == "overdraft 50.00 USD"
    cli("accounts", "set-pricing", account, "--item", "fee.withdrawal.atm.foreign",
        "--value", "{ fixed = 100, rate_bp = 50 }")
    assert json.loads(cli("accounts", "show", account, "--json").output)["pricing"][
        "fee.withdrawal.atm.foreign"] == {"fixed": 100, "rate_bp": 50, "min": 0, "max": 0}
    pricing = cli("accounts", "show", account).output.split("pricing", 1)[1].split("opened_at")[0].split()
    assert " ".join(pricing) == "fee.withdrawal.atm.foreign 1.00 USD + 0.50% overdraft 50.00 USD"  # one a line
    before = cli("accounts", "show", account).output
    unknown = cli("accounts", "set-pricing", account, "--item", "overdraf", "--value", "1", ok=False)
    assert unknown.exit_code == 1 and "unknown pricing item" in unknown.output
    negative = cli("accounts", "set-pricing", account, "--item", "overdraft", "--value", "-1", ok=False)
    assert negative.exit_code == 1 and "must not be negative" in negative.output
    not_toml = cli("accounts", "set-pricing", account, "--item", "overdraft", "--value", "lots", ok=False)
    assert not_toml.exit_code == 2 and "is not a TOML value" in not_toml.output
    neither = cli("accounts", "set-pricing", account, "--item", "overdraft", ok=False)
    assert neither.exit_code == 2 and "exactly one of --value or --remove" in neither.output
    assert cli("accounts", "show", account).output == before  # refused commands changed nothing
    cli("accounts", "set-pricing", account, "--item", "overdraft", "--remove")
    shown = cli.fields("accounts", "show", account)
    assert shown["available"] == "10.00 USD" and shown["pricing"] == "fee.withdrawal.atm.foreign 1.00 USD + 0.50%"
