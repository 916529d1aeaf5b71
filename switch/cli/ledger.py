"""``bulkhead ledger``: the double-entry checks of every cell's ledger."""

from __future__ import annotations

import json
from pathlib import Path

import click

from switch.cli.cellcmds import (
    cells_config,
    config_with_cells,
)
from switch.cli.common import conf_option, json_option
from switch.model.errors import BulkheadError


@click.group("ledger")
def ledger() -> None:
    """Ledger integrity."""


@ledger.command("check")
@conf_option
@click.option("--cell", "only", type=int, default=None, help="check one cell (default: every cell)")
@json_option
def ledger_check(conf: Path, only: int | None, as_json: bool) -> None:
    """Verify each cell's ledger: every posting balances, every balance and hold total matches its entries.
    Exits 1 when a problem is found. --json: one object with a result per cell."""
    from processors.storage import current_revision
    from processors.storage.ledger import ledger_check as check
    from switch.infra.db.engine import make_engine

    cfg = config_with_cells(conf)
    cells = cells_config(cfg)
    bad = 0
    if only is not None and not 0 <= only < cells.count:
        raise click.BadParameter(f"cell {only} does not exist (cells 0..{cells.count - 1})", param_hint="--cell")
    results: list[dict[str, object]] = []
    for cell in ([only] if only is not None else range(cells.count)):
        engine = make_engine(cells.url(cell))
        try:
            if current_revision(engine) is None:
                results.append({"cell": cell, "ok": True, "counts": {}, "problems": [], "database": False})
                if not as_json:
                    click.echo(f"cell {cell:02d}: OK (no database yet: nothing posted)")
                continue
            report = check(engine)
        except BulkheadError as exc:
            raise click.ClickException(f"cell {cell:02d}: {exc}") from None
        finally:
            engine.dispose()
        results.append({"cell": cell, "ok": report.ok, "counts": dict(sorted(report.counts.items())),
                        "problems": list(report.problems), "database": True})
        bad += not report.ok
        if as_json:
            continue
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
        click.echo(f"cell {cell:02d}: {'OK' if report.ok else 'PROBLEMS'} ({counts})")
        for problem in report.problems:
            click.echo(f"  {problem}")
    if as_json:
        click.echo(json.dumps({"ok": not bad, "cells": results}, indent=2))
    if bad:
        raise SystemExit(1)


