"""``bulkhead accounts``: open, show, deposit to and close accounts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from switch.cli.cellcmds import (
    cell_of,
    config_with_cells,
    currency_of,
    minor,
    run_in,
    show,
)
from switch.cli.common import conf_option, json_option


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
    cfg = config_with_cells(conf)
    args: dict[str, Any] = {"customer": customer, "kind": kind, "product": product}
    if currency:
        args["currency"] = currency.upper()
    show(run_in(cfg, cell_of(customer, cfg), "account.open", args), as_json)


@accounts.command("show")
@conf_option
@click.argument("account")
@json_option
def accounts_show(conf: Path, account: str, as_json: bool) -> None:
    """An account: balances (ledger, held, available), status and its own pricing items."""
    cfg = config_with_cells(conf)
    show(run_in(cfg, cell_of(account, cfg, account=True), "account.show", {"account": account}), as_json)


@accounts.command("deposit")
@conf_option
@click.argument("account")
@click.option("--amount", required=True, help="in major units, e.g. 250.00")
@click.option("--reference", default="branch deposit", show_default=True)
@json_option
def accounts_deposit(conf: Path, account: str, amount: str, reference: str, as_json: bool) -> None:
    """Post a branch cash deposit to an account (a balanced posting against GL:CASH)."""
    cfg = config_with_cells(conf)
    cell = cell_of(account, cfg, account=True)
    currency = currency_of(cfg, cell, "account.show", {"account": account})
    args = {"account": account, "amount": minor(amount, currency), "reference": reference}
    show(run_in(cfg, cell, "account.deposit", args), as_json)


@accounts.command("set-pricing")
@conf_option
@click.argument("account")
@click.option("--item", required=True,
              help="pricing item: installment.fee_rate_bp, installment.max_count, installment.min_amount, "
                   "overdraft, cash_advance.fee, fee.<txn type>.<channel>[.foreign|.cross_border]")
@click.option("--value", default=None,
              help="the account's value, written as in products.toml's [pricing]: an integer (minor units, basis "
                   "points or a count) or a fee table, e.g. '{ fixed = 250, rate_bp = 100 }'")
@click.option("--remove", is_flag=True, help="remove the account's value: the product's applies again")
@json_option
def accounts_set_pricing(conf: Path, account: str, item: str, value: str | None, remove: bool,
                         as_json: bool) -> None:
    """Set (or remove) an account-level pricing item: negotiated terms that override the product's, and are
    overridden by a transaction's own value (processors/pricing.py)."""
    if (value is None) == (not remove):
        raise click.UsageError("give exactly one of --value or --remove")
    cfg = config_with_cells(conf)
    parsed = None if value is None else _toml_value(value)
    args = {"account": account, "item": item, "value": parsed}
    show(run_in(cfg, cell_of(account, cfg, account=True), "account.set_pricing", args), as_json)


def _toml_value(text: str) -> Any:
    """A TOML value as products.toml would hold it (so a line can be copied from the catalogue)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        raise click.BadParameter(f"{text!r} is not a TOML value (an integer, or a table like "
                                 "'{ fixed = 250 }')", param_hint="--value") from None


@accounts.command("close")
@conf_option
@click.argument("account")
@json_option
def accounts_close(conf: Path, account: str, as_json: bool) -> None:
    """Close an account: refused while it has a balance, open holds, installments to bill or active cards."""
    cfg = config_with_cells(conf)
    show(run_in(cfg, cell_of(account, cfg, account=True), "account.close", {"account": account}), as_json)


