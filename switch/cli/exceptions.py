"""``bulkhead exceptions``: the advices each cell posted on an assumption, or could not post, for the back office.

An advice (0120/0220) records what already happened at a terminal, so a cell posts it even where a request would
have been refused, and lists why here: a completion above its authorization's tolerance, an amount converted at the
cell's own rate, an account type the card does not have, an unusable DE 28, or a format error that kept it from
being posted (processors.model.ExceptionItem). ``list`` shows them; ``resolve`` closes one with a note.

Human output: amounts in major units with the ISO 4217 code, times in UTC with their zone. ``--json``: amounts in
minor units (integers), with their ``currency``; times ISO 8601.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from processors.money import format_amount
from switch.cli.cellcmds import cell_of, cells_config, config_with_cells, run_in, show
from switch.cli.cellview import when
from switch.cli.common import conf_option, json_option


@click.group("exceptions")
def exceptions() -> None:
    """Advices the cells posted on an assumption or could not post: list and resolve them."""


@exceptions.command("list")
@conf_option
@click.option("--cell", "only", type=int, default=None, help="one cell (default: every cell)")
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True,
              help="resolved ones are listed for the retention period (txn_retention_days) after they were raised")
@json_option
def exceptions_list(conf: Path, only: int | None, status: str, as_json: bool) -> None:
    """The exceptions of each cell, oldest first. Exits 0 whether or not there are any."""
    cfg = config_with_cells(conf)
    count = cells_config(cfg).count
    if only is not None and not 0 <= only < count:
        raise click.BadParameter(f"cell {only} does not exist (cells 0..{count - 1})", param_hint="--cell")
    results = [run_in(cfg, cell, "exception.list", {"status": status})
               for cell in ([only] if only is not None else range(count))]
    if as_json:
        click.echo(json.dumps({"status": status, "cells": results}, indent=2, sort_keys=True))
        return
    for result in results:
        items = result["exceptions"]
        label = "" if status == "all" else f" {status}"
        click.echo(f"cell {result['cell']:02d}: {len(items) or 'no'}{label} exception{'' if len(items) == 1 else 's'}")
        for item in items:
            click.echo(exception_lines(item))


def exception_lines(item: dict[str, Any]) -> str:
    """One exception in two or three lines: what and when, then why (then how it was resolved)."""
    head = (f"  {item['exception']}  {when(item['created_at'])}  {item['kind']}  "
            f"{format_amount(item['amount'], item['currency'])}  account {item['account'] or '-'}  "
            f"txn {item['txn']}  {item['mti']} stan {item['stan'] or '-'} rrn {item['rrn'] or '-'}")
    lines = [head, f"    {item['detail']}"]
    if item["status"] == "resolved":
        lines.append(f"    resolved {when(item['resolved_at'])}: {item['resolution']}")
    return "\n".join(lines)


@exceptions.command("resolve")
@conf_option
@click.argument("exception")
@click.option("--note", required=True, help="what the back office did (kept with the exception)")
@json_option
def exceptions_resolve(conf: Path, exception: str, note: str, as_json: bool) -> None:
    """Close an exception (E01-7) with a note; refused if it is already resolved."""
    cfg = config_with_cells(conf)
    result = run_in(cfg, cell_of(exception, cfg), "exception.resolve", {"exception": exception, "note": note})
    if as_json:
        show(result, as_json)
        return
    click.echo(f"{result['exception']} resolved")
    click.echo(exception_lines(result))
