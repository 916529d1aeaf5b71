"""``bulkhead cell``: run one processor cell, seed the demo into the cells."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from processors.cell.config import CellsConfig
from processors.cell.section import cells_of
from switch.cli.common import conf_option, load, log_level_option, plain_logs_option
from switch.config import load_config
from switch.model.errors import BulkheadError, ConfigError


@click.group()
def cell() -> None:
    """Issuer processor cells ([cells] in node.toml)."""


@cell.command("run")
@conf_option
@click.option("--cell", "number", type=int, required=True, help="cell number, 0 .. count - 1")
@log_level_option
@plain_logs_option
@click.option("--lifeline", type=int, default=None, hidden=True,
              help="the supervising node's lifeline pipe: stop when it goes away, take no signals from the terminal")
def cell_run(conf: Path, number: int, log_level: str, plain_logs: bool, lifeline: int | None) -> None:
    """Run one cell in the foreground (the node does this itself when [cells] supervise = true)."""
    if lifeline is not None:  # first: a node killed while this cell starts must not leave it behind
        from switch.infra.lifeline import hold_lifeline, ignore_terminal_signals

        hold_lifeline(lifeline, f"cell {number}")
        ignore_terminal_signals()
    from processors.cell.host import main as run_cell_process

    def cells() -> CellsConfig:
        cfg = load_config(conf)
        found = cells_of(cfg.sections)
        if found is None:
            raise ConfigError(str(cfg.file), "cells", "no [cells] table: this node has no cells")
        return found

    sys.exit(run_cell_process(cells, number, log_level=log_level, json_logs=not plain_logs,
                              supervised=lifeline is not None))


@cell.command("seed")
@conf_option
def cell_seed(conf: Path) -> None:
    """Seed the demo customers, accounts and cards into empty cells (a cell that already has customers is left
    alone, so `make run` can call this every time). Demo data only: the PINs are formed under the test LMK."""
    from processors.catalog_file import load_catalog
    from processors.cell.client import run_command, run_commands
    from processors.demo import demo_commands

    cfg = load(conf)
    cells = cells_of(cfg.sections)
    if cells is None:
        raise click.ClickException(f"{cfg.file}: no [cells] table")
    if cells.hsm is None or cells.hsm.kind != "software" or not cells.hsm.test_lmk:
        raise click.ClickException("the demo seed forms its PIN blocks under the public test LMK: it needs "
                                   "[cells] hsm = { kind = \"software\", test_lmk = true }")
    try:
        steps = demo_commands(load_catalog(cells.products), cells.count)
    except KeyError as exc:
        raise click.ClickException(f"{cells.products}: the demo seed needs product {exc}") from None
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    for number in range(cells.count):
        mine = [(name, args) for cell_no, name, args in steps if cell_no == number]
        try:
            stats = run_command(cells, number, "cell.stats", {})
            if stats["customers"]:
                click.echo(f"cell {number:02d}: {stats['customers']} customer(s) already, not seeded")
                continue
            run_commands(cells, number, mine, atomic=True)  # all of a cell's demo or nothing
        except BulkheadError as exc:
            raise click.ClickException(f"cell {number:02d}: {exc}") from None
        click.echo(f"cell {number:02d}: seeded ({len(mine)} commands)")




if __name__ == "__main__":  # python -m switch.cli.cell run ...: how the node starts a cell
    cell()
