"""``bulkhead sim network visa|unionpay|mastercard|amex``: a card network's endpoint for the bank to connect to (the
issuer simulator's server with the network's framing), which also originates requests for the bank's cards
(:mod:`switch.sim.originate`) and rejects malformed messages in the network's reject form (a network without one,
Mastercard or American Express, answers a malformed request 30, as its links do). With ``--zmk`` it exchanges zone
keys with the bank (:mod:`switch.sim.simkeys`; demo only: the software HSM under the public test LMK): the bank's key
exchange is answered with a new key, ``--key-every S`` starts one of its own, and what it originates is under the new
key.

Output is masked: the summary counts, it names no card (``--cards -`` reads them from standard input, so that a
load run's cards are neither on a command line nor in a file).

As the benchmark's load generator in the issuer direction (bench/scenarios.py ``net-*-issuer``): ``--inflight N``
requests outstanding per connection (closed loop), for ``--warmup`` + ``--duration`` seconds, then ``--report
FILE``: JSON with what was sent, the answers by code, timeouts, and the measured window's figures (answers, TPS,
codes, latency percentiles by nearest rank).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click
import trio

from switch.model.errors import BulkheadError
from switch.sim.acquirer import percentile
from switch.sim.framingopts import default_framing_kind, framing_options
from switch.sim.issuer import REJECT_CODES, IssuerConfig, IssuerStats, serve_issuer
from switch.sim.originate import IDENTITIES, KINDS, Identity, OriginateConfig
from switch.sim.rules import IssuerRules, load_rules
from switch.sim.simkeys import zmk_problem

# The network's side of the demo's identities (conf/demo/node.toml): its station/id first, the bank's second.
DEFAULT_FRAMING: dict[str, tuple[str, ...]] = {
    "visa": ('source_station="400000"', 'destination_station="123456"'),
    "unionpay": ('source_id="00010000"', 'destination_id="04071234"'),
}


def _cards(cards: tuple[str, ...], cards_file: Path | None) -> tuple[str, ...]:
    found = list(cards)
    if cards_file is not None:
        try:
            text = sys.stdin.read() if str(cards_file) == "-" else cards_file.read_text(encoding="utf-8")
            lines = text.splitlines()
        except OSError as exc:
            raise click.BadParameter(f"cannot read: {exc.strerror}", param_hint="--cards") from None
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if not (text.isdigit() and 12 <= len(text) <= 19):
                raise click.BadParameter(f"line {number}: expected a card number (12 to 19 digits)",
                                         param_hint="--cards")
            found.append(text)
    return tuple(found)


@click.command()
@click.argument("scheme", metavar="NETWORK", type=click.Choice(["visa", "unionpay", "mastercard", "amex", "generic"]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), required=True, help="where the bank connects; 0 picks one")
@click.option("--framing-opt", "framing_opts", multiple=True, metavar="KEY=VALUE",
              help="framing setting of the network's framing, as for `sim issuer` [default: the demo's network "
                   "identities: VISA station 400000 to 123456, UnionPay 00010000 to 04071234]")
@click.option("--rules", type=click.Path(path_type=Path, dir_okay=False), help="rules TOML file (the bank's requests)")
@click.option("--approve-all", is_flag=True, help="approve every request of the bank, ignoring the rules")
@click.option("--card", "cards", multiple=True, metavar="PAN", help="a bank card to originate for; repeatable")
@click.option("--cards", "cards_file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="a file of bank cards, one PAN a line (# comments); - reads them from standard input")
@click.option("--originate-rate", "rate", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="requests a second towards the bank; 0: one at a time, each after the last answer")
@click.option("--count", type=click.IntRange(min=1), default=None, help="stop after this many originations")
@click.option("--once", is_flag=True, help="originate one request, print its answer's summary and stop")
@click.option("--mti", type=click.Choice(KINDS), default="0200", show_default=True,
              help="0200 purchase or 0100 authorization")
@click.option("--amount", type=click.IntRange(0, 10**12 - 1), default=1000, show_default=True, help="minor units")
@click.option("--currency", default="840", show_default=True)
@click.option("--reversal-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="reverse (0400) every Nth approved request; 0: never")
@click.option("--partial-amount", type=click.IntRange(min=1), default=None,
              help="make the reversals partial: DE 95 with this actual amount (minor units, below --amount)")
@click.option("--repeat-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="send every Nth approved request again as a repeat (0101/0201); 0: never")
@click.option("--stip-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="make every Nth origination a STIP advice (0120: the network stood in and approved); 0: never")
@click.option("--stip-reason", default="9020", show_default=True, help="VISA DE 63.4 of a STIP advice (4 digits)")
@click.option("--pin", default=None, help="with --zpk: the PIN requests carry (test cards only)")
@click.option("--zpk", default=None, help="the link's zone PIN key (a cryptogram under the public test LMK)")
@click.option("--zmk", default=None,
              help="the zone master key shared with the bank (a cryptogram under the public test LMK): a key exchange "
                   "is answered with a new key under it [default: none, answered 96]")
@click.option("--key-every", "key_every_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="seconds between key changes the network starts itself (needs --zmk); 0: never")
@click.option("--option", "link_opts", multiple=True, metavar="KEY=VALUE",
              help="the network's link option, as the bank's connector's options table (key-exchange codes, "
                   "UnionPay's nk_check_value_bytes); repeatable")
@click.option("--acquirer-id", default=None, help="DE 32 of what the network originates [default: per network]")
@click.option("--forwarder-id", default=None, help="DE 33 [default: per network]")
@click.option("--reject-code", default=None,
              help="reject code of a malformed message [default: VISA 0001, UnionPay 00035 or the header fault's]")
@click.option("--inflight", type=click.IntRange(min=0), default=0, show_default=True,
              help="closed loop: requests outstanding per connection, each answer sending the next (not with "
                   "--originate-rate); 0: off")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="originate for --warmup + this many seconds from the first connection's start, then stop")
@click.option("--warmup", "warmup_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="seconds at the start of a --duration run that are not measured")
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write what was originated and the measured window's figures here as JSON at the end")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="seconds before an originated request counts as timed out")
def network(scheme: str, host: str, port: int, framing_opts: tuple[str, ...], rules: Path | None, approve_all: bool,
            cards: tuple[str, ...], cards_file: Path | None, rate: float, count: int | None, once: bool, mti: str,
            amount: int, currency: str, reversal_every: int, partial_amount: int | None, repeat_every: int,
            stip_every: int, stip_reason: str,
            pin: str | None, zpk: str | None, zmk: str | None, key_every_s: float, link_opts: tuple[str, ...],
            acquirer_id: str | None, forwarder_id: str | None,
            reject_code: str | None, inflight: int, duration_s: float | None, warmup_s: float,
            report_file: Path | None, timeout_s: float) -> None:
    """A card network's endpoint: answers the bank's sign-on, echo and requests (by rules), originates requests
    for the bank's cards (with --card/--cards), rejects malformed messages in the network's reject form."""
    from switch.infra import logs

    logs.setup("info", json_lines=False)
    all_cards = _cards(cards, cards_file)
    if once:
        count = 1
    timed = duration_s is not None or inflight > 0
    if (count is not None or rate > 0 or timed) and not all_cards:
        raise click.UsageError("originating needs --card or --cards")
    problem = zmk_problem(zmk) if zmk is not None else None
    if problem is not None:
        raise click.BadParameter(problem, param_hint="--zmk")
    default_id = IDENTITIES.get(scheme, Identity("00000000002", "00000000002"))
    originate = None
    try:
        if all_cards and (count is not None or rate > 0 or timed or reversal_every or stip_every or repeat_every):
            originate = OriginateConfig(
                cards=all_cards, rate=rate, count=count, mti=mti, amount=amount, currency=currency,
                identity=Identity(acquirer_id or default_id.acquirer, forwarder_id or default_id.forwarder),
                reversal_every=reversal_every, partial_amount=partial_amount, repeat_every=repeat_every,
                stip_every=stip_every,
                stip_reason=stip_reason, pin=pin, zpk=zpk, timeout_s=timeout_s, inflight=inflight,
                duration_s=duration_s, warmup_s=warmup_s)
        config = IssuerConfig(
            host=host, port=port, scheme=scheme,
            framing=framing_options(scheme, default_framing_kind(scheme),
                                    framing_opts or DEFAULT_FRAMING.get(scheme, ()), link_opts),
            rules=load_rules(rules) if rules is not None else IssuerRules(), approve_all=approve_all,
            originate=originate, reject_code=reject_code or REJECT_CODES.get(scheme), refuse=True, zmk=zmk,
            key_every_s=key_every_s)
        stats = IssuerStats()
        trio.run(_serve, config, stats)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    received = ", ".join(f"{m}: {n}" for m, n in sorted(stats.received.items())) or "-"
    answered = ", ".join(f"{code}: {n}" for code, n in sorted(stats.answered.items())) or "-"
    if report_file is not None:
        try:
            report_file.write_text(json.dumps(load_report(scheme, stats), indent=2) + "\n")
        except OSError as exc:
            raise click.ClickException(f"cannot write {report_file}: {exc.strerror or exc}") from None
    click.echo(f"{stats.originated.summary()}; malformed rejected {stats.rejected}")
    click.echo(f"from the bank: received {received}; answered {answered}; malformed {stats.malformed}; "
               f"connections {stats.connections}; keys given {stats.keys_given}")


def load_report(scheme: str, stats: IssuerStats) -> dict[str, Any]:
    """``--report``'s JSON: everything originated (warm-up and drain included) and how the bank answered, and the
    measured window of a timed run (``measured``: None without ``--duration``). Counts only, never a card."""
    originated = stats.originated
    out: dict[str, Any] = {
        "network": scheme, "sent": dict(sorted(originated.sent.items())),
        "answered": dict(sorted(originated.answered.items())), "rejected": originated.rejected,
        "timeouts": originated.timeouts, "unmatched": originated.unmatched,
        "repeats_differing": originated.repeats_differing, "connections": stats.connections, "measured": None,
    }
    window = originated.window
    if window is not None:
        m = originated.measured
        ordered = sorted(m.latencies)
        ms = 1000.0
        out["measured"] = {
            "warmup_s": window.warmup, "duration_s": window.duration, "started": window.started is not None,
            "sent": m.sent, "answered": m.answered, "tps": round(m.answered / window.duration, 1),
            "codes": dict(sorted(m.codes.items())), "timeouts": m.timeouts,
            "latency_ms": {
                "p50": round(percentile(ordered, 50) * ms, 3), "p95": round(percentile(ordered, 95) * ms, 3),
                "p99": round(percentile(ordered, 99) * ms, 3), "max": round((ordered[-1] if ordered else 0.0) * ms, 3),
                "mean": round(sum(ordered) / len(ordered) * ms if ordered else 0.0, 3),
            },
        }
    return out


async def _serve(config: IssuerConfig, stats: IssuerStats) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            once = config.originate is not None and (config.originate.count is not None
                                                     or config.originate.duration_s is not None)

            def done() -> None:
                if once:
                    nursery.cancel_scope.cancel()

            port = await nursery.start(lambda task_status: serve_issuer(config, stats=stats, on_done=done,
                                                                        task_status=task_status))
            click.echo(f"{config.scheme} network simulator listening on {config.host}:{port}; waiting for the bank "
                       "to connect; Ctrl-C to stop", err=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
