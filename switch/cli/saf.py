"""``bulkhead saf``: the store-and-forward queue of reversals and advices."""

from __future__ import annotations

from pathlib import Path

import click

from switch.cli.common import admin, conf_option, load


@click.group()
def saf() -> None:
    """Store-and-forward queue (reversals and advices)."""


@saf.command("show")
@conf_option
@click.option("--destination")
@click.option("--status", type=click.Choice(["pending", "acked", "expired", "failed"]))
@click.option("--limit", default=100, show_default=True)
def saf_show(conf: Path, destination: str | None, status: str | None, limit: int) -> None:
    """List queued entries (masked); reads the database, works with or without a running node."""
    from switch.infra.db.engine import make_engine
    from switch.storage.saf import SafStore

    cfg = load(conf)
    engine = make_engine(cfg.database_url)
    try:
        items = SafStore(engine).list_items(destination=destination, status=status, limit=limit)
    finally:
        engine.dispose()
    if not items:
        click.echo("store-and-forward queue is empty")
        return
    click.echo(f"{'id':>6} {'destination':<14} {'mti':<5} {'stan':<7} {'pan':<20} {'amount':>12} "
               f"{'status':<8} {'tries':>5} next attempt / last code")
    for it in items:
        amount = f"{it.amount} {it.currency or ''}" if it.amount is not None else "-"
        click.echo(f"{it.id:>6} {it.destination:<14} {it.mti:<5} {it.stan or '-':<7} {it.pan_masked or '-':<20} "
                   f"{amount:>12} {it.status:<8} {it.attempts:>5} "
                   f"{it.next_attempt_at:%Y-%m-%d %H:%M:%S} {it.last_response_code or ''}")


@saf.command("retry")
@conf_option
@click.option("--destination")
def saf_retry(conf: Path, destination: str | None) -> None:
    """Make pending entries due now on the running node."""
    result = admin(load(conf), "saf.retry", {"destination": destination})
    click.echo(f"{result['made_due']} entries due now")


