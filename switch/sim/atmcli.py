"""``bulkhead sim atm``: a fleet of simulated ATMs against the host's ATM port (:mod:`switch.sim.atmfleet`).

Output is masked like everything else: the summary counts, it names no card; keys appear only as check values in the
log. Ctrl-C once: no new customers, the terminals finish, forward what they owe and sign off, then the summary (exit
130); twice: stop at once.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import trio

from switch.model.errors import BulkheadError
from switch.sim.atmcash import DEFAULT_AMOUNTS, DEFAULT_CASSETTES, Cassettes
from switch.sim.atmfields import DEFAULT_MIX, Kind, parse_mix
from switch.sim.atmfleet import Fleet, FleetConfig, FleetError, terminal_ids
from switch.sim.atmkeys import load_tmk_file
from switch.sim.atmmsgs import Card, Rates
from switch.sim.atmregistry import HostTerminal, check, read_registry
from switch.sim.atmreport import FleetReport
from switch.sim.atmshared import SimCard, TerminalSettings
from switch.sim.framingopts import framing_options

_MIX = ",".join(f"{kind.value}={weight}" for kind, weight in DEFAULT_MIX.items())
_RATE = click.FloatRange(0.0, 1.0)


def _pans(cards: tuple[str, ...], cards_file: Path | None) -> list[str]:
    found = list(cards)
    if cards_file is not None:
        try:
            text = sys.stdin.read() if str(cards_file) == "-" else cards_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read: {exc.strerror}", param_hint="--cards") from None
        for number, line in enumerate(text.splitlines(), 1):
            pan = line.split("#", 1)[0].strip()
            if pan and not (pan.isdigit() and 12 <= len(pan) <= 19):
                raise click.BadParameter(f"line {number}: expected a card number (12 to 19 digits)",
                                         param_hint="--cards")
            if pan:
                found.append(pan)
    for pan in cards:
        if not (pan.isdigit() and 12 <= len(pan) <= 19):
            raise click.BadParameter("expected 12 to 19 digits", param_hint="--card")
    if not found:
        raise click.UsageError("the fleet needs cards: --card PAN (repeatable) or --cards FILE")
    return found


def _cards(pans: list[str], conf: Path | None, expiry: str, pin: str) -> tuple[SimCard, ...]:
    """Each card's track 2: with a node configuration, a real CVV from its product's CVK (another bank's card: CVV
    000), as ``sim acquirer --test-card`` builds it (:mod:`switch.sim.cards`)."""
    from switch.sim.cards import test_card

    products = None
    if conf is not None:
        from processors.cell.section import cells_of
        from switch.config import load_config

        try:
            cells = cells_of(load_config(conf).sections)
        except BulkheadError as exc:
            raise click.BadParameter(str(exc), param_hint="--test-card") from None
        if cells is None:
            raise click.BadParameter(f"{conf} has no [cells] table (no card catalogue)", param_hint="--test-card")
        products = cells.products
    out = []
    for pan in dict.fromkeys(pans):  # a card given twice is one card
        try:
            track2 = test_card(products, pan, expiry).track2
        except BulkheadError as exc:
            raise click.ClickException(str(exc)) from None
        out.append(SimCard(Card(pan, track2), pin, pin))
    return tuple(out)


def _amounts(text: str) -> tuple[int, ...]:
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() and int(item) > 0 for item in items):
        raise click.BadParameter("expected amounts in minor units, comma-separated", param_hint="--amounts")
    return tuple(int(item) for item in items)


def _pin(value: str | None, hint: str) -> None:
    if value is not None and not (value.isdigit() and 4 <= len(value) <= 12):
        raise click.BadParameter("a PIN is 4 to 12 digits", param_hint=hint)


@click.command("atm")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="the host's ATM port")
@click.option("--framing", "framing_kind", default="binary2", show_default=True,
              help="the ATM port's framing: binary2 | bcd2 | ascii4")
@click.option("--framing-opt", "framing_opts", multiple=True, metavar="KEY=VALUE", help="framing setting; repeatable")
@click.option("--terminals", type=click.IntRange(min=1), default=1, show_default=True,
              help="simulated ATMs, each on its own connection with its own keys")
@click.option("--terminal-prefix", "prefix", default="ATM", show_default=True,
              help="terminal ids: the prefix and the terminal's number, 8 characters (ATM00001, ...)")
@click.option("--first", type=click.IntRange(min=0), default=1, show_default=True, help="the first terminal's number")
@click.option("--rate", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="customers a second over the whole fleet; 0: each terminal serves back to back")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="serve customers for --warmup + this many seconds [default: until --count or Ctrl-C]")
@click.option("--count", type=click.IntRange(min=0), default=None, help="stop after this many customers")
@click.option("--warmup", "warmup_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="seconds of customers at the start that are not measured (latency, TPS)")
@click.option("--card", "cards", multiple=True, metavar="PAN", help="a card the customers carry; repeatable")
@click.option("--cards", "cards_file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="a file of cards, one PAN a line (# comments); - reads them from standard input")
@click.option("--pin", default="1234", show_default=True, help="the cards' PIN (test cards only)")
@click.option("--new-pin", default=None,
              help="a PIN change sets this PIN, and the next one sets --pin back [default: the PIN is kept]")
@click.option("--expiry", default="3012", show_default=True, help="the cards' expiry YYMM (their track 2)")
@click.option("--test-card", "test_card_conf", type=click.Path(path_type=Path), default=None,
              help="a node configuration (e.g. conf/demo) whose catalogue gives the bank's cards a real CVV")
@click.option("--tmk", default=None, help="every terminal's TMK, a cryptogram under the public test LMK")
@click.option("--tmk-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="ID CRYPTOGRAM a line: each terminal's TMK under the test LMK (--tmk for the others)")
@click.option("--mac", is_flag=True, help="the terminals MAC their messages (X9.19 under their TAK)")
@click.option("--conf", "host_conf", type=click.Path(path_type=Path), default=None,
              help="the host's node configuration (e.g. conf/demo): each terminal's TMK, MAC setting and cassettes "
                   "come from its ATM registry (as `bulkhead atm show` has them) unless given here; DUKPT terminals "
                   "are left out")
@click.option("--check-host", is_flag=True,
              help="with --conf: at the end, compare each terminal's cash with the host's cassette counts (exit 1 on "
                   "a mismatch)")
@click.option("--cassettes", default=DEFAULT_CASSETTES, show_default=True,
              help="each terminal's cassettes: POSITION:DENOMINATION:COUNT,... (minor units)")
@click.option("--amounts", default=",".join(map(str, DEFAULT_AMOUNTS)), show_default=True,
              help="withdrawal amounts customers choose from (minor units; only those the cassettes make)")
@click.option("--currency", default="840", show_default=True)
@click.option("--mix", "mix_text", default=_MIX, show_default=True, help="transaction weights")
@click.option("--partial-rate", type=_RATE, default=0.0, show_default=True,
              help="approved withdrawals the dispenser jams on (0420 reason 22, DE 95)")
@click.option("--no-take-rate", type=_RATE, default=0.0, show_default=True,
              help="approved withdrawals whose cash is not taken and is retracted (0420 reason RT)")
@click.option("--capture-rate", type=_RATE, default=0.0, show_default=True,
              help="approved withdrawals after which the card is captured (DE 60 C; the card leaves the pool)")
@click.option("--lost-confirm-rate", type=_RATE, default=0.0, show_default=True,
              help="confirmations whose first transmission is lost (sent again as 0221)")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="seconds a terminal waits for a 0210 before it reverses (0420 reason 68)")
@click.option("--advice-timeout", "advice_timeout_s", type=click.FloatRange(min=0, min_open=True), default=5.0,
              show_default=True, help="seconds a terminal waits for a 0230/0430 before it repeats the advice")
@click.option("--drain", "drain_s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="after the last customer, seconds to forward the advices still owed")
@click.option("--start-timeout", "start_timeout_s", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="seconds for the terminals to connect, exchange keys and sign on")
@click.option("--echo-every", "echo_every_s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="seconds between a terminal's echo tests (the host asks for new keys on their answers); 0: none")
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the summary's figures here as JSON")
@click.option("--seed", type=int, default=None, help="random seed (transactions, amounts, outcomes, STANs)")
def atm(host: str, port: int, framing_kind: str, framing_opts: tuple[str, ...], terminals: int, prefix: str,
        first: int, rate: float, duration_s: float | None, count: int | None, warmup_s: float, cards: tuple[str, ...],
        cards_file: Path | None, pin: str, new_pin: str | None, expiry: str, test_card_conf: Path | None,
        tmk: str | None, tmk_file: Path | None, mac: bool, host_conf: Path | None, check_host: bool,
        cassettes: str, amounts: str, currency: str, mix_text: str, partial_rate: float, no_take_rate: float,
        capture_rate: float, lost_confirm_rate: float, timeout_s: float, advice_timeout_s: float, drain_s: float,
        start_timeout_s: float, echo_every_s: float, report_file: Path | None, seed: int | None) -> None:
    """A fleet of simulated ATMs: key exchange, sign-on, customers (withdrawals, inquiries, transfers, deposits, PIN
    changes, mini statements), dispense confirmations and reversals through a store-and-forward queue; a summary."""
    from switch.infra import logs

    logs.setup("info", json_lines=False)
    _pin(pin, "--pin")
    _pin(new_pin, "--new-pin")
    if not (len(expiry) == 4 and expiry.isdigit()):
        raise click.BadParameter("expected YYMM", param_hint="--expiry")
    if not (currency.isdigit() and len(currency) == 3):
        raise click.BadParameter("expected a 3-digit ISO 4217 code", param_hint="--currency")
    try:
        rates = Rates(partial=partial_rate, no_take=no_take_rate, capture=capture_rate, lost_confirm=lost_confirm_rate)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    settings = TerminalSettings(
        currency=currency, timeout_s=timeout_s, advice_timeout_s=advice_timeout_s, echo_every_s=echo_every_s,
        rates=rates, mix=_mix(mix_text), amounts=_amounts(amounts), new_pin=new_pin)
    if check_host and host_conf is None:
        raise click.UsageError("--check-host reads the host's counts: it needs --conf")
    side = _HostSide.read(host_conf, prefix, first, terminals, tmk_file, _cassettes(cassettes))
    if tmk is None and not side.tmks:
        raise click.UsageError("the terminals need their TMK: --tmk CRYPTOGRAM, --tmk-file FILE or --conf")
    try:
        fleet = Fleet(FleetConfig(
            port=port, host=host, cards=_cards(_pans(cards, cards_file), test_card_conf, expiry, pin),
            terminals=terminals, prefix=prefix, first=first, rate=rate, duration_s=duration_s, count=count,
            warmup_s=warmup_s, drain_s=drain_s, start_timeout_s=start_timeout_s, tmk=tmk, tmks=side.tmks, mac=mac,
            mac_terminals=side.mac_terminals, cassettes=cassettes, cassettes_by_terminal=side.cassettes, skip=side.skip,
            settings=settings, seed=seed, framing=framing_options("atm", framing_kind, framing_opts)))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    failure = trio.run(_run_until_signals, fleet)
    if failure is None and check_host and host_conf is not None:
        simulated = [t.id for t in fleet.terminals]
        fleet.report.host_check = check({tid: side.registry[tid] for tid in simulated},
                                        _registry(host_conf, simulated), fleet.report.cash)
    _write(report_file, fleet.report)
    if failure is not None:
        raise click.ClickException(str(failure))
    click.echo(fleet.report.summary())
    if fleet.report.interrupted:
        sys.exit(130)  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    if fleet.report.host_check is not None and not fleet.report.host_check["agree"]:
        sys.exit(1)


def _mix(text: str) -> dict[Kind, int]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mix") from None


def _cassettes(spec: str) -> bool:
    """Whether ``--cassettes`` was given on the command line (it then wins over the host's registry)."""
    try:
        Cassettes.parse(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cassettes") from None
    source = click.get_current_context().get_parameter_source("cassettes")
    return source is click.core.ParameterSource.COMMANDLINE


@dataclass(frozen=True)
class _HostSide:
    """What the fleet takes from the host's registry (``--conf``) and the TMK file."""

    registry: dict[str, HostTerminal]
    tmks: dict[str, str]
    mac_terminals: frozenset[str]
    cassettes: dict[str, str]
    skip: frozenset[str]

    @classmethod
    def read(cls, conf: Path | None, prefix: str, first: int, count: int, tmk_file: Path | None,
             explicit_cassettes: bool) -> _HostSide:
        tmks: dict[str, str] = {}
        if tmk_file is not None:
            try:
                tmks = load_tmk_file(tmk_file)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--tmk-file") from None
        try:
            ids = terminal_ids(prefix, first, count)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--terminal-prefix") from None
        registry = _registry(conf, ids) if conf is not None else {}
        skip = frozenset(tid for tid, found in registry.items() if found.dukpt)
        for tid in sorted(skip):
            click.echo(f"{tid}: a DUKPT terminal in the host's registry, left out (the simulated PIN pad uses a TPK)",
                       err=True)
        for tid, found in registry.items():
            if found.tmk is not None:
                tmks.setdefault(tid, found.tmk)  # the TMK file wins: it names a key on purpose
        return cls(registry, tmks, frozenset(tid for tid, found in registry.items() if found.mac),
                   {} if explicit_cassettes else {tid: found.cassette_spec() for tid, found in registry.items()}, skip)


def _registry(conf: Path, ids: list[str]) -> dict[str, HostTerminal]:
    try:
        return read_registry(conf, ids)
    except BulkheadError as exc:  # RegistryError, or the configuration itself
        raise click.ClickException(str(exc)) from None


def _write(path: Path | None, report: FleetReport) -> None:
    if path is None:
        return
    try:
        path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None


async def _run_until_signals(fleet: Fleet) -> FleetError | None:
    """The run; the first SIGINT/SIGTERM stops the customers (the terminals drain and sign off), the second stops
    everything at once. Why the fleet could not run, or None."""
    failure: list[FleetError] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                try:
                    await fleet.run()
                except FleetError as exc:
                    failure.append(exc)
                finally:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            async for _ in signals:
                if fleet.report.interrupted:
                    nursery.cancel_scope.cancel()
                    break
                click.echo("stopping: the terminals finish their customer and forward what they owe (Ctrl-C again "
                           "stops at once)", err=True)
                fleet.stop()
    return failure[0] if failure else None
