"""``bulkhead journal``: the exchange journal."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from switch.cli.common import conf_option, load


@click.group()
def journal() -> None:
    """The exchange journal."""


def _stan(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """DE 11 is n 6 (ISO 8583:1987) and journaled as sent, zero-padded: ``33370`` is ``033370``."""
    if value is None:
        return None
    stan = value.strip()
    if not stan.isdigit() or len(stan) > 6:
        raise click.BadParameter(f"{value!r} is not a STAN (1-6 digits)")
    return stan.zfill(6)


@journal.command("show")
@conf_option
@click.option("--rrn", help="retrieval reference number (DE 37), as sent")
@click.option("--stan", callback=_stan, help="system trace audit number (DE 11): 1-6 digits, zero-padded to six")
@click.option("--trace", help="the node's trace id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
def journal_show(conf: Path, rrn: str | None, stan: str | None, trace: str | None, limit: int) -> None:
    """Print exchanges (masked) by RRN, STAN or trace id."""
    from switch.infra.db.engine import make_engine
    from switch.storage.journal import find_exchanges

    if not (rrn or stan or trace):
        raise click.UsageError("give --rrn, --stan or --trace")
    cfg = load(conf)
    engine = make_engine(cfg.database_url)
    try:
        rows = find_exchanges(engine, rrn=rrn, stan=stan, trace_id=trace, limit=limit)
    finally:
        engine.dispose()
    if not rows:
        click.echo("no exchange found")
        sys.exit(1)
    for r in rows:
        click.echo(f"trace {r.trace_id}  {r.received_at:%Y-%m-%d %H:%M:%S.%f}  {r.source_link} -> "
                   f"{r.destination or '-'} (route {r.route or '-'})")
        click.echo(f"  {r.mti_in} -> {r.mti_out or '-'}  rc {r.response_code or '-'}  {r.outcome}  "
                   f"pan {r.pan_masked or '-'}  amount {r.amount if r.amount is not None else '-'} "
                   f"{r.currency or ''}  stan {r.stan or '-'}  rrn {r.rrn or '-'}  tid {r.terminal_id or '-'}")
        click.echo(f"  latency {r.latency_us} us" + (f" (upstream {r.upstream_us} us)" if r.upstream_us else ""))
        if r.upstream_stan or r.settlement_date:
            click.echo(f"  sent upstream as stan {r.upstream_stan or '-'}  time {r.upstream_time or '-'}  "
                       f"rrn {r.upstream_rrn or '-'}  settlement date {r.settlement_date or '-'}")
        click.echo("  request:  " + " ".join(f"{k}={v}" for k, v in r.request.items()))
        if r.response:
            click.echo("  response: " + " ".join(f"{k}={v}" for k, v in r.response.items()))




# Browsing and export live in their own module (switch.cli.journalbrowse); they are added to the group here.
def _add_browsing() -> None:
    from switch.cli.journalbrowse import journal_export, journal_follow, journal_list

    for command in (journal_list, journal_follow, journal_export):
        journal.add_command(command)


_add_browsing()
