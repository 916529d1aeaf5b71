"""``bulkhead sim issuer``, ``bulkhead sim acquirer``, ``bulkhead sim network`` (:mod:`switch.sim.netcli`) and
``bulkhead sim atm`` (:mod:`switch.sim.atmcli`): thin commands over :mod:`switch.sim`.

Output is masked like everything else: PANs as first six and last four, secret fields as their length.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
import trio

from switch.model.errors import BulkheadError
from switch.model.message import Message
from switch.sim.acquirer import AcquirerConfig, AcquirerReport, ResponseHook, run_acquirer
from switch.sim.atmcli import atm as atm_command
from switch.sim.framingopts import framing_options as _framing
from switch.sim.issuer import IssuerConfig, IssuerStats, serve_issuer
from switch.sim.netcli import network as network_command
from switch.sim.requests import RequestTemplate
from switch.sim.rules import IssuerRules, load_rules

sim = click.Group("sim", help="Issuer, acquirer, card network and ATM fleet simulators for demos, tests and "
                              "benchmarks.")
sim.add_command(network_command)
sim.add_command(atm_command)

_FRAMING_HELP = "a framing of the network (generic, atm: binary2 | bcd2 | ascii4; visa; unionpay)"
_OPT_HELP = ('framing setting KEY=VALUE (e.g. tpdu=true, max_frame=4096; digits that are ids in quotes: '
             'source_station=\'"400000"\'); repeatable')


def _common(func: click.decorators.FC) -> click.decorators.FC:
    for decorator in reversed((
        click.option("--host", default="127.0.0.1", show_default=True),
        click.option(
            "--scheme", default="generic", show_default=True, help="the network it speaks (a registered scheme name)"
        ),
        click.option("--framing", "framing_kind", default="binary2", show_default=True, help=_FRAMING_HELP),
        click.option("--framing-opt", "framing_opts", multiple=True, metavar="KEY=VALUE", help=_OPT_HELP),
    )):
        func = decorator(func)
    return func


@sim.command()
@_common
@click.option("--port", type=click.IntRange(0, 65535), required=True, help="0 picks a free port")
@click.option("--rules", type=click.Path(path_type=Path, dir_okay=False), help="rules TOML file")
@click.option("--approve-all", is_flag=True, help="approve every request, ignoring the rules")
def issuer(host: str, scheme: str, framing_kind: str, framing_opts: tuple[str, ...], port: int,
           rules: Path | None, approve_all: bool) -> None:
    """Answer ISO 8583 requests by rules until interrupted."""
    from switch.infra import logs

    logs.setup("info", json_lines=False)
    try:
        config = IssuerConfig(
            host=host, port=port, scheme=scheme, framing=_framing(scheme, framing_kind, framing_opts),
            rules=load_rules(rules) if rules is not None else IssuerRules(), approve_all=approve_all,
        )
        stats = IssuerStats()
        trio.run(_serve_until_signal, config, stats)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    received = ", ".join(f"{mti}: {n}" for mti, n in sorted(stats.received.items())) or "-"
    answered = ", ".join(f"{code}: {n}" for code, n in sorted(stats.answered.items())) or "-"
    click.echo(f"received {received}; answered {answered}; dropped {stats.dropped}; "
               f"malformed {stats.malformed}; connections {stats.connections}")


async def _serve_until_signal(config: IssuerConfig, stats: IssuerStats) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(lambda task_status: serve_issuer(config, stats=stats,
                                                                        task_status=task_status))
            click.echo(f"issuer simulator listening on {config.host}:{port} "
                       f"({config.scheme}, {config.framing.framing_kind if config.framing else 'default framing'}); "
                       "Ctrl-C to stop", err=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


@sim.command()
@_common
@click.option("--port", type=click.IntRange(1, 65535), required=True)
@click.option("--count", type=click.IntRange(min=1), help="requests to send [default: 1, or the file once]")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="send for this many seconds instead of a count (the file's requests in turn)")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="requests per second over all connections [default: as fast as --inflight allows]")
@click.option("--connections", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--inflight", type=click.IntRange(min=1), default=1, show_default=True,
              help="requests in flight per connection")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True,
              help="seconds before a request counts as timed out (above the switch's own timeouts: the switch "
                   "is expected to answer, 91 when its issuer is slow)")
@click.option("--late-wait", "late_wait_s", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="after the last answer or timeout, seconds to wait for answers to timed-out requests")
@click.option("--file", "requests_file", type=click.Path(path_type=Path, dir_okay=False),
              help='JSON lines: {"mti": "0200", "fields": {"2": "...", "11": null, ...}}; fields given are sent '
                   "as they are (STAN and RRN too), null leaves a field out, 7/11/12/13/37/41 are filled in "
                   "otherwise")
@click.option("--pan", default=RequestTemplate.pan, show_default=True)
@click.option("--amount", type=click.IntRange(0, 10**12 - 1), default=RequestTemplate.amount,
              show_default=True, help="minor units")
@click.option("--mti", default=RequestTemplate.mti, show_default=True)
@click.option("--processing-code", default=RequestTemplate.processing_code, show_default=True)
@click.option("--currency", default=RequestTemplate.currency, show_default=True)
@click.option("--terminal-id", default=RequestTemplate.terminal_id, show_default=True)
@click.option("--atm", is_flag=True,
              help="ATM withdrawals (track 2, PIN block, processing code 011000 unless given) for the atm scheme")
@click.option("--test-card", "test_card_conf", type=click.Path(path_type=Path), default=None,
              help="with --atm: a node configuration (e.g. conf/demo) whose test-LMK keys give the card a real "
                   "track 2 (CVV from the product's CVK) and a PIN block under the listener's TPK")
@click.option("--expiry", default="3012", show_default=True, help="with --test-card: the card's expiry YYMM")
@click.option("--pin", default=None, help="with --test-card: the PIN typed at the ATM (test cards only)")
@click.option("--verbose", is_flag=True, help="print every response (masked)")
def acquirer(host: str, scheme: str, framing_kind: str, framing_opts: tuple[str, ...], port: int,
             count: int | None, duration_s: float | None, rate: float | None, connections: int, inflight: int,
             timeout_s: float, late_wait_s: float, requests_file: Path | None, pan: str, amount: int, mti: str,
             processing_code: str, currency: str, terminal_id: str, atm: bool, test_card_conf: Path | None,
             expiry: str, pin: str | None, verbose: bool) -> None:
    """Send requests, match the answers and print a summary (codes, timeouts, late answers, TPS, latency).
    Ctrl-C stops the run and prints the summary so far (exit code 130)."""
    _check_template(pan, mti, processing_code, currency, terminal_id)
    if count is not None and duration_s is not None:
        raise click.UsageError("give --count or --duration, not both")
    track2, pin_block = None, None
    if test_card_conf is not None:
        track2, pin_block = _test_card(test_card_conf, port, pan, expiry, pin)
    config = AcquirerConfig(
        host=host, port=port, scheme=scheme, framing=_framing(scheme, framing_kind, framing_opts), count=count,
        connections=connections, inflight=inflight, timeout_s=timeout_s, requests_file=requests_file,
        duration_s=duration_s, rate=rate, late_wait_s=late_wait_s,
        template=RequestTemplate(mti=mti, pan=pan, amount=amount, processing_code=processing_code,
                                 currency=currency, terminal_id=terminal_id, atm=atm, track2=track2,
                                 pin_block=pin_block),
    )
    hook = _print_response if verbose else None
    report = AcquirerReport()
    try:
        trio.run(_run_until_signal, config, hook, report)
    except BaseExceptionGroup as group:
        leaf = first_bulkhead_error(group)
        if leaf is None:
            raise
        raise click.ClickException(str(leaf)) from None
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())
    if report.interrupted:
        sys.exit(130)  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


async def _run_until_signal(config: AcquirerConfig, hook: ResponseHook | None, report: AcquirerReport) -> None:
    """The run, stopped by the first SIGINT or SIGTERM with the report filled so far."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                await run_acquirer(config, hook, report)
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            async for _ in signals:
                report.interrupted = True
                nursery.cancel_scope.cancel()
                break


def first_bulkhead_error(group: BaseExceptionGroup[BaseException]) -> BulkheadError | None:
    """The first :class:`BulkheadError` in trio's exception groups."""
    for exc in group.exceptions:
        if isinstance(exc, BulkheadError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = first_bulkhead_error(exc)
            if found is not None:
                return found
    return None


def _test_card(conf: Path, port: int, pan: str, expiry: str, pin: str | None) -> tuple[str, bytes | None]:
    """Track 2 and PIN block of a demo card, from the node configuration's catalogue and listener keys."""
    from processors.cell.section import cells_of
    from switch.config import load_config
    from switch.sim.cards import test_card

    try:
        cfg = load_config(conf)
        cells = cells_of(cfg.sections)
        if cells is None:
            raise click.BadParameter(f"{cfg.file} has no [cells] table (no card catalogue)",
                                     param_hint="--test-card")
        listener = next((x for x in cfg.listeners if x.port == port), None)
        tpk = listener.pin_key.key if listener is not None and listener.pin_key is not None else None
        if pin is not None and tpk is None:
            raise click.BadParameter(f"no listener on port {port} with a pin_key in {cfg.file}",
                                     param_hint="--pin")
        card = test_card(cells.products, pan, expiry, pin=pin, tpk=tpk)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    return card.track2, card.pin_block


def _check_template(pan: str, mti: str, processing_code: str, currency: str, terminal_id: str) -> None:
    if not (pan.isdigit() and 12 <= len(pan) <= 19):
        raise click.BadParameter("expected 12 to 19 digits", param_hint="--pan")
    if not (mti.isdigit() and len(mti) == 4 and int(mti[2]) % 2 == 0):
        raise click.BadParameter("expected a 4-digit request MTI", param_hint="--mti")
    if not (processing_code.isdigit() and len(processing_code) == 6):
        raise click.BadParameter("expected 6 digits", param_hint="--processing-code")
    if not (currency.isdigit() and len(currency) == 3):
        raise click.BadParameter("expected a 3-digit ISO 4217 code", param_hint="--currency")
    if not 1 <= len(terminal_id) <= 8:
        raise click.BadParameter("expected 1 to 8 characters", param_hint="--terminal-id")


def _print_response(index: int, msg: Message, latency: float) -> None:
    fields = " ".join(f"{k}={v}" for k, v in msg.masked().items() if k != "mti")
    click.echo(f"#{index} {msg.mti} {latency * 1000:.2f} ms {fields}")
