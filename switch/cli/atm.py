"""``bulkhead atm``: the ATM terminal registry, its cash and its totals (README "ATM processing (ATMP)").

The commands read and write the node's database directly (with or without a running node) and then ask a running
node to reload its terminal cache. Every command checks its input before changing anything, and each change is
one transaction: a refused command leaves the registry as it was.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import click

from atmp.errors import AtmpError
from atmp.model import KeySet, Owner, Terminal
from atmp.records import Event, StoredOutcome
from atmp.storage import AtmStore
from atmp.totals import Comparison, Totals
from switch.cli.atmcommon import (
    actor,
    cassettes,
    currency_alpha,
    figures,
    money,
    note_counts,
    now,
    run,
    show_money,
    tell_node,
)
from switch.cli.atmkeys import load_tmk
from switch.cli.atmseed import seed
from switch.cli.atmview import (
    age,
    cash_line,
    event_json,
    outcome_json,
    outcome_line,
    replenishment_json,
    terminal_json,
    terminal_lines,
)
from switch.cli.common import conf_option, json_option, load


@click.group()
def atm() -> None:
    """ATM terminals: registry, keys, cash, totals (the ATMP)."""


atm.add_command(load_tmk)
atm.add_command(seed)


@atm.command("add")
@conf_option
@click.argument("terminal_id")
@click.option("--location", required=True, help="where it stands (up to 40 characters, DE 43)")
@click.option("--institution", required=True, help="owning institution id (1-11 digits, DE 32)")
@click.option("--owner", required=True, type=click.Choice(["own", "partner"]))
@click.option("--currency", required=True, help="ISO 4217 numeric code of its cash, e.g. 840")
@click.option("--cassette", "cassette_specs", multiple=True,
              help="POSITION:DENOMINATION:COUNT, the denomination in major units (1:20.00:2000); repeat per cassette")
@click.option("--surcharge", default="0", show_default=True, help="charged to foreign cards (major units, DE 28)")
@click.option("--low-cash", default=0, show_default=True, type=click.IntRange(min=0),
              help="a cassette with fewer notes left is low (alert and metric); 0: never")
@click.option("--mac", is_flag=True, help="the terminal MACs its messages with its TAK")
@click.option("--dukpt-bdk", help="a DUKPT terminal: its key set's BDK (an LMK cryptogram)")
@click.option("--pin-format", default="01", show_default=True, help="payShield PIN block format code it sends")
@json_option
def atm_add(conf: Path, terminal_id: str, location: str, institution: str, owner: str, currency: str,
            cassette_specs: tuple[str, ...], surcharge: str, low_cash: int, mac: bool, dukpt_bdk: str | None,
            pin_format: str, as_json: bool) -> None:
    """Register a terminal, out of service until `atm enable` (load its TMK first)."""
    currency_alpha(currency)
    try:
        terminal = Terminal(id=terminal_id, location=location, institution=institution, owner=Owner(owner),
                            currency=currency, cassettes=cassettes(cassette_specs, currency),
                            surcharge=money(surcharge, currency, "--surcharge"), low_cash_notes=low_cash,
                            keys=KeySet(dukpt_bdk=dukpt_bdk, pin_format=pin_format, mac=mac))
    except AtmpError as exc:
        raise click.ClickException(str(exc)) from None
    cfg = load(conf)
    run(cfg, lambda store: store.add_terminal(terminal, at=now(), actor=actor()))
    told = tell_node(cfg)
    if as_json:
        click.echo(json.dumps({**terminal_json(terminal), "node_reloaded": told}, indent=2))
        return
    click.echo(f"{terminal.id}: added, out of service ({len(terminal.cassettes)} cassette(s), "
               f"{show_money(terminal.cash_remaining(), currency)})")
    click.echo(f"next: bulkhead atm load-tmk {terminal.id} --components 2, then bulkhead atm enable {terminal.id}")


@atm.command("list")
@conf_option
@json_option
def atm_list(conf: Path, as_json: bool) -> None:
    """Every terminal, one a line."""
    cfg = load(conf)
    terminals = run(cfg, lambda store: store.terminals())
    if as_json:
        click.echo(json.dumps([terminal_json(t) for t in terminals], indent=2))
        return
    if not terminals:
        click.echo("no terminals (bulkhead atm add, or bulkhead atm seed for the demo fleet)")
        return
    for t in terminals:
        click.echo(f"{t.id}  {t.status.value:<14} {t.owner.value:<7} {t.location:<40} "
                   f"{show_money(t.cash_remaining(), t.currency):>16}")


@atm.command("show")
@conf_option
@click.argument("terminal_id")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=0),
              help="latest dispense outcomes and audit rows shown")
@json_option
def atm_show(conf: Path, terminal_id: str, limit: int, as_json: bool) -> None:
    """One terminal: status, devices, keys (check values), cassettes, latest outcomes and audit trail."""
    cfg = load(conf)

    def read(store: AtmStore) -> tuple[Terminal, list[StoredOutcome], list[Event]]:
        terminal = store.terminal(terminal_id)
        if terminal is None:
            raise click.ClickException(f"unknown terminal {terminal_id!r}")
        return terminal, store.dispenses(terminal_id, limit), store.events(terminal_id, limit)

    terminal, dispenses, audit = run(cfg, read)
    if as_json:
        click.echo(json.dumps({**terminal_json(terminal, cryptograms=True),
                               "dispenses": [outcome_json(o) for o in dispenses],
                               "events": [event_json(e) for e in audit]}, indent=2))
        return
    for line in terminal_lines(terminal, now()):
        click.echo(line)
    for o in dispenses:
        click.echo(f"{'dispense':<14} {outcome_line(o)}")
    for e in audit:
        click.echo(f"{'event':<14} {e.at.isoformat()} {e.kind}: {e.detail} ({e.actor})")


def _status_command(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @conf_option
    @click.argument("terminal_id")
    @json_option
    def command(conf: Path, terminal_id: str, as_json: bool) -> None:
        cfg = load(conf)
        change = run(cfg, lambda store: store.set_status(terminal_id, action, at=now(), actor=actor()))
        told = tell_node(cfg)
        if as_json:
            click.echo(json.dumps({"id": terminal_id, "before": change.before.value, "after": change.after.value,
                                   "node_reloaded": told}))
            return
        moved = (f"{change.before.value} -> {change.after.value}" if change.before is not change.after
                 else f"{change.after.value} already")
        click.echo(f"{terminal_id}: {moved}")

    return command


atm.add_command(_status_command("enable", "Put a terminal in service."))
atm.add_command(_status_command("disable", "Take a terminal out of service (requests 58; its advices are still "
                                           "recorded). Also reopens a closed one, out of service."))
atm.add_command(_status_command("supervisor", "Supervisor mode: network management and totals only."))
atm.add_command(_status_command("close", "Close (decommission) a terminal."))


@atm.command("rekey")
@conf_option
@click.argument("terminal_id")
def atm_rekey(conf: Path, terminal_id: str) -> None:
    """Ask for new working keys: the host's answer to the terminal's next 0800 carries DE 48 RK."""
    cfg = load(conf)

    def request(store: AtmStore) -> None:
        terminal = store.terminal(terminal_id)
        if terminal is None:
            raise click.ClickException(f"unknown terminal {terminal_id!r}")
        if terminal.keys.tmk is None:
            raise click.ClickException(f"{terminal_id}: no TMK loaded: its new keys would have nothing to travel "
                                       f"under (bulkhead atm load-tmk {terminal_id} first)")
        store.set_rekey_due(terminal_id, True, at=now(), actor=actor())

    run(cfg, request)
    tell_node(cfg)
    click.echo(f"{terminal_id}: key exchange requested: its next 0800 is answered RK")


@atm.command("replenish")
@conf_option
@click.argument("terminal_id")
@click.option("--removed", multiple=True, required=True,
              help="POSITION:COUNT notes counted in each cassette taken out (repeat, or 1:1995,2:2000)")
@click.option("--loaded", multiple=True, required=True, help="POSITION:COUNT notes in each cassette put in")
@json_option
def atm_replenish(conf: Path, terminal_id: str, removed: tuple[str, ...], loaded: tuple[str, ...],
                  as_json: bool) -> None:
    """Record a replenishment: the counts removed against the host's (the discrepancy), then the new load."""
    taken, put = note_counts(removed, "--removed"), note_counts(loaded, "--loaded")
    cfg = load(conf)
    record = run(cfg, lambda store: store.replenish(terminal_id, taken, put, at=now(), actor=actor()))
    tell_node(cfg)
    result = record.replenishment
    if as_json:
        click.echo(json.dumps({"id": terminal_id, **replenishment_json(result)}, indent=2))
        return
    click.echo(f"{'cassette':<9}{'denomination':>16}{'host':>7}{'counted':>9}{'difference':>12}{'value':>18}"
               f"{'loaded':>8}")
    for c in result.counts:
        click.echo(f"{c.position:<9}{show_money(c.denomination, c.currency):>16}{c.expected:>7}{c.removed:>9}"
                   f"{c.difference:>+12}{show_money(c.difference_value, c.currency):>18}{c.loaded:>8}")
    if result.balanced:
        click.echo(f"{terminal_id}: balanced, cassettes loaded")
    else:
        money_ = ", ".join(show_money(v, cur) for cur, v in result.difference_by_currency().items())
        click.echo(f"{terminal_id}: DISCREPANCY {money_} (counted minus the host's), cassettes loaded")


@atm.command("totals")
@conf_option
@click.argument("terminal_id")
@click.option("--day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="business day, YYYY-MM-DD")
@click.option("--withdrawals", help="the terminal's withdrawals: COUNT:AMOUNT (major units), e.g. 12:1800.00")
@click.option("--deposits", help="the terminal's deposits: COUNT:AMOUNT")
@json_option
def atm_totals(conf: Path, terminal_id: str, day: datetime, withdrawals: str | None, deposits: str | None,
               as_json: bool) -> None:
    """A terminal's totals of a business day against the host's. With --withdrawals/--deposits the operator
    enters the terminal's own figures (its journal printout); without, the last recorded report (or the host's
    side alone)."""
    business_day: date = day.date()
    cfg = load(conf)
    terminal = run(cfg, lambda store: store.terminal(terminal_id))
    if terminal is None:
        raise click.ClickException(f"unknown terminal {terminal_id!r}")
    cur = terminal.currency
    if withdrawals is not None or deposits is not None:
        w, d = figures(withdrawals, cur, "--withdrawals"), figures(deposits, cur, "--deposits")
        entered = Totals(withdrawals=w[0], withdrawal_amount=w[1], deposits=d[0], deposit_amount=d[1])
        record = run(cfg, lambda store: store.record_terminal_totals(
            terminal_id, business_day, entered, at=now(), source="operator", actor=actor()))
        comparison, source = record.comparison, "operator"
    else:
        kept = run(cfg, lambda store: store.totals_for(terminal_id, business_day))
        if kept is None:
            host = run(cfg, lambda store: store.host_totals(terminal_id, business_day))
            comparison, source = Comparison(terminal_id, business_day, cur, Totals(), host), None
        else:
            comparison, source = kept.comparison, kept.source
    if as_json:
        click.echo(json.dumps({"id": terminal_id, "day": business_day.isoformat(), "currency": comparison.currency,
                               "source": source, "terminal": _totals_json(comparison.terminal) if source else None,
                               "host": _totals_json(comparison.host), "agree": comparison.agree if source else None},
                              indent=2))
        return
    if source is None:
        h = comparison.host
        click.echo(f"terminal {terminal_id}  business day {business_day.isoformat()}: no terminal totals yet; the "
                   f"host's: {h.withdrawals} withdrawal(s) {show_money(h.withdrawal_amount, cur)}, {h.deposits} "
                   f"deposit(s) {show_money(h.deposit_amount, cur)}")
        return
    click.echo(comparison.report(lambda minor: show_money(minor, cur)))
    click.echo(f"(terminal's side: {source})")


def _totals_json(t: Totals) -> dict[str, int]:
    return {"withdrawals": t.withdrawals, "withdrawal_amount": t.withdrawal_amount, "deposits": t.deposits,
            "deposit_amount": t.deposit_amount}


@atm.command("status")
@conf_option
@json_option
def atm_status(conf: Path, as_json: bool) -> None:
    """Each terminal: state, cash left per cassette, low cash, last contact, device faults."""
    cfg = load(conf)
    terminals = run(cfg, lambda store: store.terminals())
    at = now()
    if as_json:
        click.echo(json.dumps([{
            "id": t.id, "status": t.status.value, "last_contact": t.last_contact.isoformat() if t.last_contact
            else None, "faults": list(t.device.faults), "warnings": list(t.device.warnings),
            "low_cash": list(t.low_cash), "rekey_due": t.rekey_due, "cash_remaining": t.cash_remaining(),
            "currency": t.currency,
            "cassettes": [{"position": c.position, "denomination": c.denomination, "remaining": c.remaining}
                          for c in t.cassettes]} for t in terminals], indent=2))
        return
    if not terminals:
        click.echo("no terminals")
    for t in terminals:
        flags = [f"LOW CASH {','.join(map(str, t.low_cash))}"] if t.low_cash else []
        flags += [f"FAULT {', '.join(n.replace('_', ' ') for n in t.device.faults)}"] if t.device.faults else []
        flags += [f"warning {', '.join(n.replace('_', ' ') for n in t.device.warnings)}"] if t.device.warnings else []
        flags += ["rekey due"] if t.rekey_due else []
        click.echo(f"{t.id}  {t.status.value:<14} cash {show_money(t.cash_remaining(), t.currency)}  last contact "
                   f"{age(t.last_contact, at)}" + (f"  {'; '.join(flags)}" if flags else ""))
        for c in t.cassettes:
            click.echo(f"    {cash_line(c)}")
