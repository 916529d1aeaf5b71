"""``bulkhead customers|accounts|cards|credit|ledger``: the card and account lifecycle, cell by cell.

Every command finds its cell from the identifier it is given (customer, account and credit-line numbers start
with the two-digit cell, card ids with ``K`` + cell, our PANs carry the cell after the 6-digit BIN; a new
customer's cell comes from the bank reference, see :func:`processors.cardnumber.cell_for_external_ref`) and
runs in that cell: through the cell's admin socket while the cell runs, or directly on its database when it
does not (:mod:`switch.cells.client`). A command validates everything before it changes anything, so an error
leaves the cell as it was.

Output is masked: PANs as first 6 / last 4. The full PAN of a new card is written only to the personalisation
file named with ``--perso-file`` (created 0600), the input of the card bureau.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import click

from switch.cells.config import CellsConfig
from switch.config import NodeConfig
from switch.model.errors import BulkheadError

conf_option = click.option(
    "--conf", "conf", default="conf/demo", show_default=True, type=click.Path(path_type=Path),
    help="configuration folder (holding node.toml) or node.toml itself",
)
json_option = click.option("--json", "as_json", is_flag=True, help="print the result as JSON")


def _config(conf: Path) -> NodeConfig:
    from switch.cli import _config as load

    cfg = load(conf)
    if cfg.cells is None:
        raise click.ClickException(f"{cfg.file}: no [cells] table: this node has no processor cells")
    return cfg


def _cells(cfg: NodeConfig) -> CellsConfig:
    assert cfg.cells is not None  # _config checked
    return cfg.cells


def _run(cfg: NodeConfig, cell: int, name: str, args: dict[str, Any]) -> Any:
    from switch.cells.client import run_command

    cells = _cells(cfg)
    if not 0 <= cell < cells.count:
        raise click.ClickException(f"cell {cell:02d} does not exist (this node has {cells.count} cells)")
    try:
        return run_command(cells, cell, name, args)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None


def _cell_of(identifier: str, cfg: NodeConfig, *, account: bool = False) -> int:
    """The cell of a PAN, an id (customer, account, line, card) or ``ref:<bank reference>``; with ``account``,
    also of ``ref:<bank reference>/<kind>`` (the customer's account of that kind, processors.commands), whose
    cell is the customer's: the reference before the last ``/``."""
    from processors.cardnumber import CardNumberError, cell_for_external_ref, cell_of_id, cell_of_pan, is_pan

    try:
        if identifier.startswith("ref:"):
            ref = identifier[4:].rpartition("/")[0] if account and "/" in identifier else identifier[4:]
            return cell_for_external_ref(ref, _cells(cfg).count)
        return cell_of_pan(identifier) if identifier.isdigit() and is_pan(identifier) else cell_of_id(identifier)
    except CardNumberError as exc:
        raise click.ClickException(str(exc)) from None


def _minor(amount: str, currency: str) -> int:
    """``"125.50"`` USD -> 12550: amounts are typed in major units and stored in minor units, by the currency's
    ISO 4217 exponent (JPY 0, USD 2, KWD 3)."""
    from processors.money import exponent

    places = exponent(currency)
    try:
        value = Decimal(amount)
        if not value.is_finite() or value < 0 or value > 10**15:
            raise InvalidOperation
        scaled = value.scaleb(places)
    except InvalidOperation:
        raise click.BadParameter(f"not an amount: {amount!r}") from None
    if scaled != scaled.to_integral_value():
        raise click.BadParameter(f"{amount!r}: {currency} has {places} decimal place(s)")
    return int(scaled)


def _currency(cfg: NodeConfig, cell: int, command: str, args: dict[str, Any]) -> str:
    """The currency an amount argument is in: that of the account, card or credit line it applies to."""
    shown = _run(cfg, cell, command, args)
    if "currency" in shown:
        return str(shown["currency"])
    from processors.catalog_file import load_catalog

    try:
        return load_catalog(_cells(cfg).products).product(str(shown["product"])).currency
    except (BulkheadError, KeyError) as exc:
        raise click.ClickException(f"cannot tell the currency: {exc}") from None


def _show(result: Any, as_json: bool) -> None:
    if as_json or not isinstance(result, dict):
        click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    width = max((len(str(k)) for k in result), default=0)
    for key, value in result.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True, default=str)
        click.echo(f"{key!s:<{width}}  {value}")


def _open_perso(path: Path) -> TextIO:
    """Open (create 0600, or append to an owner-only file) the card personalisation file *before* a card is
    issued, so a PAN can never be issued and then lost because the file cannot be written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot open the personalisation file: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO) or not stat.S_ISREG(mode):
        os.close(fd)
        raise click.ClickException(f"{path}: must be a regular file only its owner can read (chmod 600)")
    return os.fdopen(fd, "a", encoding="ascii", newline="")


def _write_perso(out: TextIO, records: list[dict[str, Any]]) -> None:
    """Append card personalisation records (card id, full PAN, expiry, product) and flush them to disk."""
    writer = csv.writer(out)
    for record in records:
        writer.writerow([record["card"], record["pan"], record.get("expiry", ""), record.get("product", "")])
    out.flush()
    os.fsync(out.fileno())


def _public(result: Any) -> Any:
    """The result without the clear PAN (never printed)."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k != "pan"}
    return result


# -- customers ------------------------------------------------------------------------------------------
@click.group("customers")
def customers() -> None:
    """Open and show customers (a customer and everything they own live in one cell)."""


@customers.command("open")
@conf_option
@click.option("--name", required=True)
@click.option("--ref", "external_ref", required=True, help="the bank's customer reference (CIF): decides the cell")
@json_option
def customers_open(conf: Path, name: str, external_ref: str, as_json: bool) -> None:
    """Open a customer in the cell their reference maps to."""
    from processors.cardnumber import CardNumberError, cell_for_external_ref

    cfg = _config(conf)
    try:
        cell = cell_for_external_ref(external_ref, _cells(cfg).count)
    except CardNumberError as exc:
        raise click.ClickException(str(exc)) from None
    _show(_run(cfg, cell, "customer.open", {"name": name, "external_ref": external_ref}), as_json)


@customers.command("show")
@conf_option
@click.argument("customer")
@json_option
def customers_show(conf: Path, customer: str, as_json: bool) -> None:
    """A customer with their accounts, cards (masked) and credit line."""
    cfg = _config(conf)
    _show(_run(cfg, _cell_of(customer, cfg), "customer.show", {"customer": customer}), as_json)


@customers.command("close")
@conf_option
@click.argument("customer")
@json_option
def customers_close(conf: Path, customer: str, as_json: bool) -> None:
    """Close a customer whose accounts are all closed and who has no active card (closes the credit line)."""
    cfg = _config(conf)
    _show(_run(cfg, _cell_of(customer, cfg), "customer.close", {"customer": customer}), as_json)


# -- accounts -------------------------------------------------------------------------------------------
@click.group("accounts")
def accounts() -> None:
    """Open, fund, show and close accounts."""


@accounts.command("open")
@conf_option
@click.option("--customer", required=True)
@click.option("--kind", type=click.Choice(["checking", "savings", "credit"]), required=True)
@click.option("--product", required=True, help="product code from the catalogue (products.toml)")
@click.option("--currency", default=None, help="ISO 4217 alpha code (default: the product's)")
@json_option
def accounts_open(conf: Path, customer: str, kind: str, product: str, currency: str | None, as_json: bool) -> None:
    """Open an account for a customer (a credit account joins the customer's credit line)."""
    cfg = _config(conf)
    args: dict[str, Any] = {"customer": customer, "kind": kind, "product": product}
    if currency:
        args["currency"] = currency.upper()
    _show(_run(cfg, _cell_of(customer, cfg), "account.open", args), as_json)


@accounts.command("show")
@conf_option
@click.argument("account")
@json_option
def accounts_show(conf: Path, account: str, as_json: bool) -> None:
    """Balances (ledger, held, available) and open holds of an account."""
    cfg = _config(conf)
    _show(_run(cfg, _cell_of(account, cfg, account=True), "account.show", {"account": account}), as_json)


@accounts.command("deposit")
@conf_option
@click.argument("account")
@click.option("--amount", required=True, help="in major units, e.g. 250.00")
@click.option("--reference", default="branch deposit", show_default=True)
@json_option
def accounts_deposit(conf: Path, account: str, amount: str, reference: str, as_json: bool) -> None:
    """Post a branch cash deposit to an account (a balanced posting against GL:CASH)."""
    cfg = _config(conf)
    cell = _cell_of(account, cfg, account=True)
    currency = _currency(cfg, cell, "account.show", {"account": account})
    args = {"account": account, "amount": _minor(amount, currency), "reference": reference}
    _show(_run(cfg, cell, "account.deposit", args), as_json)


@accounts.command("close")
@conf_option
@click.argument("account")
@json_option
def accounts_close(conf: Path, account: str, as_json: bool) -> None:
    """Close an account: refused while it has a balance, open holds, installments to bill or active cards."""
    cfg = _config(conf)
    _show(_run(cfg, _cell_of(account, cfg, account=True), "account.close", {"account": account}), as_json)


# -- cards ----------------------------------------------------------------------------------------------
perso_option = click.option("--perso-file", type=click.Path(path_type=Path, dir_okay=False), required=True,
                            help="append the full PAN and expiry here (created 0600) for card production")


@click.group("cards")
def cards() -> None:
    """Issue cards and manage their status, PIN and limits. CARD is a card id (K...) or a PAN."""


@cards.command("issue")
@conf_option
@click.option("--customer", required=True)
@click.option("--product", required=True)
@click.option("--account", default=None, help="account to link (default: the customer's account for the product)")
@click.option("--vanity", default=None, help="digits wanted after BIN and cell (the Luhn digit is added)")
@click.option("--activate", is_flag=True, help="issue the card active (default: inactive until activated)")
@perso_option
@json_option
def cards_issue(conf: Path, customer: str, product: str, account: str | None, vanity: str | None, activate: bool,
                perso_file: Path, as_json: bool) -> None:
    """Issue one card: BIN + cell + sequence (or vanity digits) + Luhn."""
    cfg = _config(conf)
    args: dict[str, Any] = {"customer": customer, "product": product, "activate": activate}
    if account:
        args["account"] = account
    if vanity:
        args["vanity"] = vanity
    with _open_perso(perso_file) as out:
        result = _run(cfg, _cell_of(customer, cfg), "card.issue", args)
        _write_perso(out, [result])
    _show(_public(result), as_json)


@cards.command("issue-batch")
@conf_option
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="columns: customer, product, and optionally account, vanity, activate (yes/no)")
@perso_option
def cards_issue_batch(conf: Path, csv_file: Path, perso_file: Path) -> None:
    """Issue cards from a CSV file, with a progress bar. Every row is checked before the first card is issued;
    a card that fails later is reported and the rest go on (each card is its own transaction)."""
    cfg = _config(conf)
    with csv_file.open(newline="", encoding="utf-8") as src:
        rows = list(csv.DictReader(src))
    problems = []
    for line, row in enumerate(rows, start=2):
        if not row.get("customer") or not row.get("product"):
            problems.append(f"{csv_file}:{line}: customer and product are required")
        elif row.get("activate", "no").strip().lower() not in ("yes", "no", "true", "false", ""):
            problems.append(f"{csv_file}:{line}: activate must be yes or no")
    if problems:
        raise click.ClickException("\n".join(problems))
    issued, failed = 0, []
    with _open_perso(perso_file) as out, click.progressbar(rows, label="issuing cards", file=sys.stderr) as bar:
        for line, row in enumerate(bar, start=2):
            args: dict[str, Any] = {"customer": row["customer"].strip(), "product": row["product"].strip(),
                                    "activate": row.get("activate", "").strip().lower() in ("yes", "true")}
            for optional in ("account", "vanity"):
                if row.get(optional, "").strip():
                    args[optional] = row[optional].strip()
            try:
                result = _run(cfg, _cell_of(args["customer"], cfg), "card.issue", args)
            except click.ClickException as exc:
                failed.append(f"{csv_file}:{line}: {exc.message}")
                continue
            _write_perso(out, [result])
            issued += 1
    click.echo(f"issued {issued} card(s), {len(failed)} failed")
    for problem in failed:
        click.echo(problem, err=True)
    if failed:
        raise SystemExit(1)


@cards.command("show")
@conf_option
@click.argument("card")
@json_option
def cards_show(conf: Path, card: str, as_json: bool) -> None:
    """A card (masked PAN), its status, limits and linked accounts."""
    cfg = _config(conf)
    _show(_run(cfg, _cell_of(card, cfg), "card.show", {"card": card}), as_json)


def _simple_card_command(name: str, command: str, doc: str) -> None:
    @cards.command(name, help=doc)
    @conf_option
    @click.argument("card")
    @json_option
    def run_it(conf: Path, card: str, as_json: bool) -> None:
        cfg = _config(conf)
        _show(_run(cfg, _cell_of(card, cfg), command, {"card": card}), as_json)


_simple_card_command("activate", "card.activate", "Activate an issued card.")
_simple_card_command("unblock", "card.unblock", "Return a blocked card to active.")
_simple_card_command("reset-pin", "card.reset_pin",
                     "Clear the PIN and the wrong-PIN counter: the card needs a new PIN (set-pin).")


@cards.command("block")
@conf_option
@click.argument("card")
@click.option("--status", type=click.Choice(["blocked", "lost", "stolen"]), default="blocked", show_default=True)
@click.option("--reason", required=True)
@json_option
def cards_block(conf: Path, card: str, status: str, reason: str, as_json: bool) -> None:
    """Block a card (lost and stolen answer 41 and 43 from now on)."""
    cfg = _config(conf)
    _show(_run(cfg, _cell_of(card, cfg), "card.block", {"card": card, "status": status, "reason": reason}), as_json)


@cards.command("replace")
@conf_option
@click.argument("card")
@click.option("--new-number", is_flag=True, help="issue a new PAN (default: same PAN, new card and expiry)")
@click.option("--reason", required=True)
@perso_option
@json_option
def cards_replace(conf: Path, card: str, new_number: bool, reason: str, perso_file: Path,
                  as_json: bool) -> None:
    """Replace a card; the old one stops working."""
    cfg = _config(conf)
    with _open_perso(perso_file) as out:
        result = _run(cfg, _cell_of(card, cfg), "card.replace",
                      {"card": card, "new_number": new_number, "reason": reason})
        _write_perso(out, [result])
    _show(_public(result), as_json)


@cards.command("set-pin")
@conf_option
@click.argument("card")
@click.option("--pin-block", default=None,
              help="the ISO format 0 PIN block (16 hex) under the card's zone PIN key, as a PIN pad produced it")
@click.option("--test-pin", is_flag=True,
              help="demo and tests only (test LMK): type the PIN; Bulkhead forms the PIN block itself")
@json_option
def cards_set_pin(conf: Path, card: str, pin_block: str | None, test_pin: bool, as_json: bool) -> None:
    """Set a card's PIN: the HSM derives the PIN verification value (the PIN itself is never stored)."""
    cfg = _config(conf)
    if (pin_block is None) == (not test_pin):
        raise click.UsageError("give exactly one of --pin-block HEX or --test-pin")
    if pin_block is None:
        pin_block = _test_pin_block(cfg, card, click.prompt("PIN", hide_input=True, confirmation_prompt=True))
    _show(_run(cfg, _cell_of(card, cfg), "card.set_pin", {"card": card, "pin_block": pin_block}), as_json)


def _test_pin_block(cfg: NodeConfig, card: str, pin: str) -> str:
    """What a PIN pad would send: the PIN block under the product's zone PIN key (test LMK only)."""
    from hsm.errors import HsmError
    from hsm.testing import TestPinPad
    from processors.cardnumber import is_pan
    from processors.catalog_file import load_catalog

    if not (card.isdigit() and is_pan(card)):
        raise click.UsageError("--test-pin needs the card's PAN (the PIN block is formed with it)")
    shown = _run(cfg, _cell_of(card, cfg), "card.show", {"card": card})
    try:
        catalog = load_catalog(_cells(cfg).products)
        zpk = catalog.keys[catalog.product(shown["product"]).keys].zpk
        return TestPinPad().pin_block("ZPK", zpk, pin, card).hex().upper()
    except (BulkheadError, HsmError, KeyError) as exc:
        raise click.ClickException(f"cannot form a test PIN block: {exc}") from None


@cards.command("set-limits")
@conf_option
@click.argument("card")
@click.option("--channel", type=click.Choice(["atm", "pos", "ecommerce", "cross_border"]), required=True)
@click.option("--per-txn", default=None, help="amount per transaction, major units")
@click.option("--daily-amount", default=None, help="amount per day, major units")
@click.option("--daily-count", type=click.IntRange(min=0), default=None, help="transactions per day")
@json_option
def cards_set_limits(conf: Path, card: str, channel: str, per_txn: str | None, daily_amount: str | None,
                     daily_count: int | None, as_json: bool) -> None:
    """Override the product's limits for one card and channel."""
    cfg = _config(conf)
    if per_txn is None and daily_amount is None and daily_count is None:
        raise click.UsageError("give at least one of --per-txn, --daily-amount, --daily-count")
    cell = _cell_of(card, cfg)
    currency = _currency(cfg, cell, "card.show", {"card": card}) if (per_txn or daily_amount) else ""
    args: dict[str, Any] = {"card": card, "channel": channel}
    if per_txn is not None:
        args["per_txn"] = _minor(per_txn, currency)
    if daily_amount is not None:
        args["daily_amount"] = _minor(daily_amount, currency)
    if daily_count is not None:
        args["daily_count"] = daily_count
    _show(_run(cfg, cell, "card.set_limits", args), as_json)


# -- credit ---------------------------------------------------------------------------------------------
@click.group("credit")
def credit() -> None:
    """Credit lines (customer-level limits shared by all their cards), payments and installment plans."""


@credit.command("show")
@conf_option
@click.argument("customer")
@json_option
def credit_show(conf: Path, customer: str, as_json: bool) -> None:
    """The customer's credit line: limit, cash limit, owed, held, open-to-buy, installment plans."""
    cfg = _config(conf)
    _show(_run(cfg, _cell_of(customer, cfg), "credit.show", {"customer": customer}), as_json)


@credit.command("set-limit")
@conf_option
@click.argument("customer")
@click.option("--limit", default=None, help="credit limit, major units")
@click.option("--cash-limit", default=None, help="cash-advance sub-limit, major units")
@json_option
def credit_set_limit(conf: Path, customer: str, limit: str | None, cash_limit: str | None, as_json: bool) -> None:
    """Change the customer-level credit limit (never below what is owed and held)."""
    cfg = _config(conf)
    if limit is None and cash_limit is None:
        raise click.UsageError("give --limit and/or --cash-limit")
    cell = _cell_of(customer, cfg)
    currency = _currency(cfg, cell, "credit.show", {"customer": customer})
    args: dict[str, Any] = {"customer": customer}
    if limit is not None:
        args["limit"] = _minor(limit, currency)
    if cash_limit is not None:
        args["cash_limit"] = _minor(cash_limit, currency)
    _show(_run(cfg, cell, "credit.set_limit", args), as_json)


@credit.command("pay")
@conf_option
@click.argument("account")
@click.option("--amount", required=True, help="in major units, e.g. 100.00")
@click.option("--reference", required=True, help="the payment's reference (used once: a repeat is refused)")
@json_option
def credit_pay(conf: Path, account: str, amount: str, reference: str, as_json: bool) -> None:
    """Post a cardholder's payment to a credit card account: what the line owes falls, open-to-buy rises."""
    cfg = _config(conf)
    cell = _cell_of(account, cfg, account=True)
    currency = _currency(cfg, cell, "account.show", {"account": account})
    args = {"account": account, "amount": _minor(amount, currency), "reference": reference}
    _show(_run(cfg, cell, "credit.payment", args), as_json)


@credit.command("installments")
@conf_option
@click.argument("account")
@click.option("--txn", required=True, help="the posted purchase to convert (transaction id)")
@click.option("--count", type=click.IntRange(2, 60), required=True, help="number of monthly installments")
@click.option("--rate-bp", type=click.IntRange(min=0), default=None,
              help="fee rate for this plan in basis points (overrides the account's and product's pricing)")
@json_option
def credit_installments(conf: Path, account: str, txn: str, count: int, rate_bp: int | None, as_json: bool) -> None:
    """Convert a posted purchase into monthly installments with a fee."""
    cfg = _config(conf)
    args: dict[str, Any] = {"account": account, "txn": txn, "count": count}
    if rate_bp is not None:
        args["rate_bp"] = rate_bp
    _show(_run(cfg, _cell_of(account, cfg, account=True), "credit.installments", args), as_json)


# -- ledger ---------------------------------------------------------------------------------------------
@click.group("ledger")
def ledger() -> None:
    """Ledger integrity."""


@ledger.command("check")
@conf_option
@click.option("--cell", "only", type=int, default=None, help="check one cell (default: every cell)")
def ledger_check(conf: Path, only: int | None) -> None:
    """Verify each cell's ledger: every posting balances, every balance and hold total matches its entries.
    Exits 1 when a problem is found."""
    from processors.storage import current_revision
    from processors.storage.ledger import ledger_check as check
    from switch.infra.db.engine import make_engine

    cfg = _config(conf)
    cells = _cells(cfg)
    bad = 0
    if only is not None and not 0 <= only < cells.count:
        raise click.BadParameter(f"cell {only} does not exist (cells 0..{cells.count - 1})", param_hint="--cell")
    for cell in ([only] if only is not None else range(cells.count)):
        engine = make_engine(cells.url(cell))
        try:
            if current_revision(engine) is None:
                click.echo(f"cell {cell:02d}: OK (no database yet: nothing posted)")
                continue
            report = check(engine)
        except BulkheadError as exc:
            raise click.ClickException(f"cell {cell:02d}: {exc}") from None
        finally:
            engine.dispose()
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
        click.echo(f"cell {cell:02d}: {'OK' if report.ok else 'PROBLEMS'} ({counts})")
        for problem in report.problems:
            click.echo(f"  {problem}")
        bad += not report.ok
    if bad:
        raise SystemExit(1)


GROUPS = (customers, accounts, cards, credit, ledger)
