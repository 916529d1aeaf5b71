"""``bulkhead customers``: open, show and close customers, each in its cell."""

from __future__ import annotations

from pathlib import Path

import click

from switch.cli.cellcmds import (
    cell_of,
    cells_config,
    config_with_cells,
    run_in,
    show,
)
from switch.cli.common import conf_option, json_option


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

    cfg = config_with_cells(conf)
    try:
        cell = cell_for_external_ref(external_ref, cells_config(cfg).count)
    except CardNumberError as exc:
        raise click.ClickException(str(exc)) from None
    show(run_in(cfg, cell, "customer.open", {"name": name, "external_ref": external_ref}), as_json)


@customers.command("show")
@conf_option
@click.argument("customer")
@json_option
def customers_show(conf: Path, customer: str, as_json: bool) -> None:
    """A customer with their accounts, cards (masked) and credit line."""
    cfg = config_with_cells(conf)
    show(run_in(cfg, cell_of(customer, cfg), "customer.show", {"customer": customer}), as_json)


@customers.command("close")
@conf_option
@click.argument("customer")
@json_option
def customers_close(conf: Path, customer: str, as_json: bool) -> None:
    """Close a customer whose accounts are all closed and who has no active card (closes the credit line)."""
    cfg = config_with_cells(conf)
    show(run_in(cfg, cell_of(customer, cfg), "customer.close", {"customer": customer}), as_json)


# -- accounts -------------------------------------------------------------------------------------------
