"""``bulkhead cards``: card issuance and lifecycle."""

from __future__ import annotations

import csv
import difflib
import sys
from pathlib import Path
from typing import Any

import click

from switch.cli.cellcmds import (
    cell_of,
    cells_config,
    config_with_cells,
    currency_of,
    minor,
    open_perso,
    public,
    run_in,
    show,
    write_perso,
)
from switch.cli.common import conf_option, json_option
from switch.config import NodeConfig
from switch.model.errors import BulkheadError

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
    cfg = config_with_cells(conf)
    args: dict[str, Any] = {"customer": customer, "product": product, "activate": activate}
    if account:
        args["account"] = account
    if vanity:
        args["vanity"] = vanity
    with open_perso(perso_file) as out:
        result = run_in(cfg, cell_of(customer, cfg), "card.issue", args)
        write_perso(out, [result])
    show(public(result), as_json)


BATCH_REQUIRED = ("customer", "product")
BATCH_COLUMNS = (*BATCH_REQUIRED, "account", "vanity", "activate")


@cards.command("issue-batch")
@conf_option
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="columns: customer, product, and optionally account, vanity, activate (yes/no)")
@perso_option
def cards_issue_batch(conf: Path, csv_file: Path, perso_file: Path) -> None:
    """Issue cards from a CSV file, with a progress bar. Every row is checked first (its columns here, then in its
    cell every check a single `cards issue` makes: customer, product, account, vanity); if any row is refused,
    nothing is issued. A card that still fails while issuing (the cell changed meanwhile) is reported and the
    rest go on (each card is its own transaction)."""
    cfg = config_with_cells(conf)
    by_line = _check_batch(cfg, csv_file, _read_batch(csv_file))
    issued, failed = 0, []
    with open_perso(perso_file) as out, click.progressbar(list(by_line.items()), label="issuing cards",
                                                          file=sys.stderr) as bar:
        for line, args in bar:
            try:
                result = run_in(cfg, cell_of(args["customer"], cfg), "card.issue", args)
            except click.ClickException as exc:
                failed.append(f"{csv_file}:{line}: {exc.message}")
                continue
            write_perso(out, [result])
            issued += 1
    click.echo(f"issued {issued} card(s), {len(failed)} failed")
    for problem in failed:
        click.echo(problem, err=True)
    if failed:
        raise SystemExit(1)


def _read_batch(csv_file: Path) -> list[tuple[int, dict[str, str]]]:
    """The rows by line number, after checking the header: an unknown column is named as such (a typo in a
    column name is not a missing value in every row), a missing required column too."""
    try:
        with csv_file.open(newline="", encoding="utf-8") as src:
            reader = csv.DictReader(src)
            header = [name.strip() for name in reader.fieldnames or []]
            rows = [(line, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None})
                    for line, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise click.ClickException(f"{csv_file}: cannot read: {exc}") from None
    problems = []
    for name in header:
        if name not in BATCH_COLUMNS:
            hint = difflib.get_close_matches(name, BATCH_COLUMNS, n=1)
            problems.append(f"{csv_file}:1: unknown column {name!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else "")
                            + f"; the columns are {', '.join(BATCH_COLUMNS)}")
    problems += [f"{csv_file}:1: column {name!r} is missing" for name in BATCH_REQUIRED if name not in header]
    if problems:
        raise click.ClickException("\n".join(problems))
    return rows


def _check_batch(cfg: NodeConfig, csv_file: Path, rows: list[tuple[int, dict[str, str]]]) -> dict[int, dict[str, Any]]:
    """Each row's ``card.issue`` arguments by line, once every row has passed: its own columns first, then its
    cell's checks (one ``card.issue_check`` per cell, which changes nothing). Any problem: all of them are
    reported and nothing is issued."""
    problems: list[tuple[int, str]] = []
    by_line: dict[int, dict[str, Any]] = {}
    per_cell: dict[int, list[int]] = {}
    vanities: dict[tuple[int, str, str], int] = {}
    for line, row in rows:
        if not row.get("customer") or not row.get("product"):
            problems.append((line, "customer and product are required"))
            continue
        activate = row.get("activate", "").lower()
        if activate not in ("yes", "no", "true", "false", ""):
            problems.append((line, "activate must be yes or no"))
            continue
        args: dict[str, Any] = {"customer": row["customer"], "product": row["product"],
                                "activate": activate in ("yes", "true")}
        args.update({k: row[k] for k in ("account", "vanity") if row.get(k)})
        try:
            cell = cell_of(args["customer"], cfg)
        except click.ClickException as exc:
            problems.append((line, exc.message))
            continue
        if "vanity" in args:  # two rows asking for one number: the cell could only tell when issuing the second
            key = (cell, args["product"], args["vanity"])
            if key in vanities:
                # The digits are not repeated: with the BIN they would give the card number away.
                problems.append((line, f"the same vanity number is asked for on line {vanities[key]} too"))
                continue
            vanities[key] = line
        per_cell.setdefault(cell, []).append(line)
        by_line[line] = args
    for cell, lines in sorted(per_cell.items()):
        checked = run_in(cfg, cell, "card.issue_check", {"rows": [by_line[n] for n in lines]})
        problems += [(lines[p["row"]], str(p["error"])) for p in checked["problems"]]
    if problems:
        raise click.ClickException(f"nothing issued: {len(problems)} row(s) refused\n" + "\n".join(
            f"{csv_file}:{line}: {text}" for line, text in sorted(problems)))
    return by_line


@cards.command("show")
@conf_option
@click.argument("card")
@json_option
def cards_show(conf: Path, card: str, as_json: bool) -> None:
    """A card (masked PAN), its status, limits and linked accounts."""
    cfg = config_with_cells(conf)
    show(run_in(cfg, cell_of(card, cfg), "card.show", {"card": card}), as_json)


def _simple_card_command(name: str, command: str, doc: str) -> None:
    @cards.command(name, help=doc)
    @conf_option
    @click.argument("card")
    @json_option
    def run_it(conf: Path, card: str, as_json: bool) -> None:
        cfg = config_with_cells(conf)
        show(run_in(cfg, cell_of(card, cfg), command, {"card": card}), as_json)


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
    cfg = config_with_cells(conf)
    show(run_in(cfg, cell_of(card, cfg), "card.block", {"card": card, "status": status, "reason": reason}), as_json)


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
    cfg = config_with_cells(conf)
    with open_perso(perso_file) as out:
        result = run_in(cfg, cell_of(card, cfg), "card.replace",
                      {"card": card, "new_number": new_number, "reason": reason})
        write_perso(out, [result])
    show(public(result), as_json)


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
    cfg = config_with_cells(conf)
    if (pin_block is None) == (not test_pin):
        raise click.UsageError("give exactly one of --pin-block HEX or --test-pin")
    if pin_block is None:
        pin_block = _test_pin_block(cfg, card, click.prompt("PIN", hide_input=True, confirmation_prompt=True))
    show(run_in(cfg, cell_of(card, cfg), "card.set_pin", {"card": card, "pin_block": pin_block}), as_json)


def _test_pin_block(cfg: NodeConfig, card: str, pin: str) -> str:
    """What a PIN pad would send: the PIN block under the product's zone PIN key (test LMK only)."""
    from hsm.errors import HsmError
    from hsm.testing import TestPinPad
    from processors.cardnumber import is_pan
    from processors.catalog_file import load_catalog

    if not (card.isdigit() and is_pan(card)):
        raise click.UsageError("--test-pin needs the card's PAN (the PIN block is formed with it)")
    shown = run_in(cfg, cell_of(card, cfg), "card.show", {"card": card})
    try:
        catalog = load_catalog(cells_config(cfg).products)
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
    cfg = config_with_cells(conf)
    if per_txn is None and daily_amount is None and daily_count is None:
        raise click.UsageError("give at least one of --per-txn, --daily-amount, --daily-count")
    cell = cell_of(card, cfg)
    currency = currency_of(cfg, cell, "card.show", {"card": card}) if (per_txn or daily_amount) else ""
    args: dict[str, Any] = {"card": card, "channel": channel}
    if per_txn is not None:
        args["per_txn"] = minor(per_txn, currency)
    if daily_amount is not None:
        args["daily_amount"] = minor(daily_amount, currency)
    if daily_count is not None:
        args["daily_count"] = daily_count
    show(run_in(cfg, cell, "card.set_limits", args), as_json)


