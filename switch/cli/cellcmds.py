"""What the card and account commands share (``customers``, ``accounts``, ``cards``, ``credit``, ``ledger``): finding a
command's cell from the identifier it is given, running the command there, amounts in major units, masked output,
and the card personalisation file.

Every command finds its cell from the identifier it is given (customer, account and credit-line numbers start
with the two-digit cell, card ids with ``K`` + cell, our PANs carry the cell after the 6-digit BIN; a new
customer's cell comes from the bank reference, see :func:`processors.cardnumber.cell_for_external_ref`) and
runs in that cell: through the cell's admin socket while the cell runs, or directly on its database when it
does not (:mod:`processors.cell.client`). A command validates everything before it changes anything, so an error
leaves the cell as it was.

Output is masked: PANs as first 6 / last 4. Amounts print in major units with their ISO 4217 code and times in
UTC with their zone (:mod:`switch.cli.cellview`); ``--json`` prints the cell's result as it is, amounts in minor
units. The full PAN of a new card is written only to the personalisation
file named with ``--perso-file`` (created 0600), the input of the card bureau.
"""

from __future__ import annotations

import csv
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import click

from processors.cell.config import CellsConfig
from processors.cell.section import cells_of
from switch.cli.common import load
from switch.config import NodeConfig
from switch.model.errors import BulkheadError


def config_with_cells(conf: Path) -> NodeConfig:
    """The configuration of a node that has processor cells (``[cells]``)."""
    cfg = load(conf)
    if cells_of(cfg.sections) is None:
        raise click.ClickException(f"{cfg.file}: no [cells] table: this node has no processor cells")
    return cfg


def cells_config(cfg: NodeConfig) -> CellsConfig:
    cells = cells_of(cfg.sections)
    assert cells is not None  # config_with_cells checked
    return cells


def run_in(cfg: NodeConfig, cell: int, name: str, args: dict[str, Any]) -> Any:
    from processors.cell.client import run_command

    cells = cells_config(cfg)
    if not 0 <= cell < cells.count:
        raise click.ClickException(f"cell {cell:02d} does not exist (this node has {cells.count} cells)")
    try:
        return run_command(cells, cell, name, args)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None


def cell_of(identifier: str, cfg: NodeConfig, *, account: bool = False) -> int:
    """The cell of a PAN, an id (customer, account, line, card) or ``ref:<bank reference>``; with ``account``,
    also of ``ref:<bank reference>/<kind>`` (the customer's account of that kind, processors.commands), whose
    cell is the customer's: the reference before the last ``/``."""
    from processors.cardnumber import MAX_PAN_LENGTH, MIN_PAN_LENGTH, CardNumberError, cell_for_external_ref, cell_of_id

    try:
        if identifier.startswith("ref:"):
            ref = identifier[4:].rpartition("/")[0] if account and "/" in identifier else identifier[4:]
            return cell_for_external_ref(ref, cells_config(cfg).count)
        if identifier.isdigit() and MIN_PAN_LENGTH <= len(identifier) <= MAX_PAN_LENGTH:
            return _cell_of_our_pan(identifier, cfg)
        return cell_of_id(identifier)
    except CardNumberError as exc:
        raise click.ClickException(str(exc)) from None


def _cell_of_our_pan(pan: str, cfg: NodeConfig) -> int:
    """The cell of a PAN this bank issued; anything else is said to be what it is (a mistyped number, another
    bank's card) rather than sent to a cell its digits 7-8 happen to name."""
    from processors.cardnumber import BIN_LENGTH, cell_of_pan, luhn_valid
    from processors.catalog_file import load_catalog
    from switch.model.masking import mask_pan

    if not luhn_valid(pan):
        raise click.ClickException(f"{mask_pan(pan)}: not a valid card number (its check digit is wrong)")
    cells = cells_config(cfg)
    try:
        catalog = load_catalog(cells.products)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    bin_ = pan[:BIN_LENGTH]
    if catalog.product_for_bin(bin_) is None:
        raise click.ClickException(f"{mask_pan(pan)}: not a card of this bank (no product has BIN {bin_})")
    cell = cell_of_pan(pan)
    if cell >= cells.count:
        raise click.ClickException(f"{mask_pan(pan)}: not a card of this bank (its digits 7-8, {cell:02d}, name no "
                                   f"cell: this node has {cells.count})")
    return cell


def minor(amount: str, currency: str) -> int:
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


def currency_of(cfg: NodeConfig, cell: int, command: str, args: dict[str, Any]) -> str:
    """The currency an amount argument is in: that of the account, card or credit line it applies to."""
    shown = run_in(cfg, cell, command, args)
    if "currency" in shown:
        return str(shown["currency"])
    from processors.catalog_file import load_catalog

    try:
        return load_catalog(cells_config(cfg).products).product(str(shown["product"])).currency
    except (BulkheadError, KeyError) as exc:
        raise click.ClickException(f"cannot tell the currency: {exc}") from None


def show(result: Any, as_json: bool) -> None:
    """Print a command's result: for people (amounts in major units with their ISO 4217 code, times in UTC with
    their zone: :mod:`switch.cli.cellview`), or with ``--json`` as the cell gave it (amounts in minor units)."""
    if as_json or not isinstance(result, dict):
        click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    from switch.cli.cellview import render

    click.echo(render(result))


@contextmanager
def open_perso(path: Path) -> Iterator[TextIO]:
    """Open (create 0600, or append to an owner-only file) the card personalisation file *before* a card is
    issued, so a PAN can never be issued and then lost because the file cannot be written. A file this call
    created and nothing was written to (the command failed) is removed again: an empty file would tell the card
    bureau's pick-up job that there is a batch."""
    existed = os.path.lexists(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot open the personalisation file: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO) or not stat.S_ISREG(mode):
        os.close(fd)
        raise click.ClickException(f"{path}: must be a regular file only its owner can read (chmod 600)")
    out = os.fdopen(fd, "a", encoding="ascii", newline="")
    try:
        yield out
    finally:
        empty = os.fstat(out.fileno()).st_size == 0
        out.close()
        if not existed and empty:
            path.unlink(missing_ok=True)


def write_perso(out: TextIO, records: list[dict[str, Any]]) -> None:
    """Append card personalisation records (card id, full PAN, expiry, product) and flush them to disk."""
    writer = csv.writer(out)
    for record in records:
        writer.writerow([record["card"], record["pan"], record.get("expiry", ""), record.get("product", "")])
    out.flush()
    os.fsync(out.fileno())


def public(result: Any) -> Any:
    """The result without the clear PAN (never printed)."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k != "pan"}
    return result


