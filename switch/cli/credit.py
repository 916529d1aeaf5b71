"""``bulkhead credit``: credit lines, cardholder payments and installment plans."""

from __future__ import annotations

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


@click.group("credit")
def credit() -> None:
    """Credit lines (customer-level limits shared by all their cards), payments and installment plans."""


@credit.command("show")
@conf_option
@click.argument("customer")
@json_option
def credit_show(conf: Path, customer: str, as_json: bool) -> None:
    """The customer's credit line: limit, cash limit, owed, held, open-to-buy, installment plans."""
    cfg = config_with_cells(conf)
    show(run_in(cfg, cell_of(customer, cfg), "credit.show", {"customer": customer}), as_json)


@credit.command("set-limit")
@conf_option
@click.argument("customer")
@click.option("--limit", default=None, help="credit limit, major units")
@click.option("--cash-limit", default=None, help="cash-advance sub-limit, major units")
@json_option
def credit_set_limit(conf: Path, customer: str, limit: str | None, cash_limit: str | None, as_json: bool) -> None:
    """Change the customer-level credit limit (never below what is owed and held)."""
    cfg = config_with_cells(conf)
    if limit is None and cash_limit is None:
        raise click.UsageError("give --limit and/or --cash-limit")
    cell = cell_of(customer, cfg)
    currency = currency_of(cfg, cell, "credit.show", {"customer": customer})
    args: dict[str, Any] = {"customer": customer}
    if limit is not None:
        args["limit"] = minor(limit, currency)
    if cash_limit is not None:
        args["cash_limit"] = minor(cash_limit, currency)
    show(run_in(cfg, cell, "credit.set_limit", args), as_json)


@credit.command("pay")
@conf_option
@click.argument("account")
@click.option("--amount", required=True, help="in major units, e.g. 100.00")
@click.option("--reference", required=True, help="the payment's reference (used once: a repeat is refused)")
@json_option
def credit_pay(conf: Path, account: str, amount: str, reference: str, as_json: bool) -> None:
    """Post a cardholder's payment to a credit card account: what the line owes falls, open-to-buy rises."""
    cfg = config_with_cells(conf)
    cell = cell_of(account, cfg, account=True)
    currency = currency_of(cfg, cell, "account.show", {"account": account})
    args = {"account": account, "amount": minor(amount, currency), "reference": reference}
    show(run_in(cfg, cell, "credit.payment", args), as_json)


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
    cfg = config_with_cells(conf)
    args: dict[str, Any] = {"account": account, "txn": txn, "count": count}
    if rate_bp is not None:
        args["rate_bp"] = rate_bp
    show(run_in(cfg, cell_of(account, cfg, account=True), "credit.installments", args), as_json)


