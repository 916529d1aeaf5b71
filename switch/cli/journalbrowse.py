"""``bulkhead journal list|follow|export``: browsing the journal by time window, terminal, response code,
destination and card, and exporting it for a dispute.

All three read the database directly, so they work with or without a running node. A card is given as its PAN
and looked up by its keyed hash (the node's data key, ``hash_key_file``); the PAN itself is never printed, stored
or echoed in an error, and the output holds only the masked PAN the journal stores (first six / last four).
A card lookup without ``--since``/``--last`` searches the 24 hours before ``--until`` (default: now), because the
hash column has no index (see :mod:`switch.storage.browse`).

Times are ISO 8601; one without a zone is taken as UTC. Output times are UTC with their zone.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from switch.cli.common import conf_option, json_option, load
from switch.config import NodeConfig
from switch.model.errors import BulkheadError
from switch.model.masking import mask_pan

if TYPE_CHECKING:  # typing only: storage loads when a command runs
    from switch.storage.browse import Exchange, JournalFilter

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# ISO 8583:1987 DE 39 is an2; the 1993 edition's is n3 (the journal column holds three).
_RESPONSE_CODE = re.compile(r"[0-9A-Z]{2,3}")
_PAN = re.compile(r"[0-9]{12,19}")  # ISO/IEC 7812: card schemes issue 12 to 19 digits
EXPORT_FIELDS = (
    "received_at", "responded_at", "trace_id", "source_link", "destination", "route", "mti_in", "mti_out",
    "processing_code", "stan", "rrn", "terminal_id", "pan", "amount", "currency", "amount_minor",
    "response_code", "auth_code", "outcome",
)


@dataclass(frozen=True, slots=True)
class Filters:
    """The command line's filters, checked; ``pan`` stays here only until it is hashed."""

    since: datetime | None
    until: datetime | None
    terminal: str | None
    rc: str | None
    destination: str | None
    pan: str | None

    def describe(self) -> dict[str, str]:
        """The filters as an export records them: the card masked."""
        shown = {"since": _iso(self.since), "until": _iso(self.until), "terminal": self.terminal,
                 "response_code": self.rc, "destination": self.destination,
                 "pan": mask_pan(self.pan) if self.pan else None}
        return {key: value for key, value in shown.items() if value is not None}


# -- parsing the options ------------------------------------------------------------------------------------
def _instant(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2026-12-07T14:30:00Z)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    found = _DURATION.fullmatch(value.strip())
    if not found:
        raise click.BadParameter(f"{value!r} is not a duration such as 90s, 15m, 2h or 7d")
    return timedelta(**{_UNITS[found[2]]: int(found[1])})


def _response_code(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not _RESPONSE_CODE.fullmatch(value.upper()):
        raise click.BadParameter(f"{value!r} is not a response code (two or three letters or digits, e.g. 05)")
    return value.upper()


def _card(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    digits = value.replace(" ", "")
    if not _PAN.fullmatch(digits):
        # The value is not repeated: a mistyped card number is still card data.
        raise click.BadParameter("not a card number (12 to 19 digits)")
    return digits


def filter_options(follow: bool = False) -> Callable[[F], F]:
    """The filters every browsing command takes (``follow`` has no ``--until``: it runs until stopped)."""

    def wrap(command: F) -> F:
        options = [
            click.option("--since", callback=_instant, help="from this time (ISO 8601; no zone: UTC)"),
            *([] if follow else [click.option("--until", callback=_instant,
                                              help="before this time (ISO 8601; no zone: UTC)")]),
            click.option("--last", callback=_duration, help="the last 90s, 15m, 2h, 7d (instead of --since)"),
            click.option("--terminal", help="card acceptor terminal id (field 41)"),
            click.option("--rc", callback=_response_code, help="response code sent (field 39), e.g. 05"),
            click.option("--destination", help="the link the request was routed to"),
            click.option("--pan", callback=_card, help="card number: looked up by its keyed hash, never shown"),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return wrap


def _filters(cfg: NodeConfig, since: datetime | None, until: datetime | None, last: timedelta | None,
             terminal: str | None, rc: str | None, destination: str | None, pan: str | None) -> Filters:
    if last is not None:
        if since is not None:
            raise click.UsageError("give --since or --last, not both")
        since = (until or datetime.now(UTC)) - last
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    if destination is not None and destination not in cfg.link_names:
        # A typo must not look like a quiet hour.
        raise click.BadParameter(
            f"unknown destination {destination!r} (links: {', '.join(sorted(cfg.link_names))})",
            param_hint="--destination")
    return Filters(since, until, terminal, rc, destination, pan)


def _journal_filter(cfg: NodeConfig, filters: Filters) -> JournalFilter:
    from switch.infra.datakey import load as load_key
    from switch.storage.browse import JournalFilter

    pan_hash = None
    if filters.pan is not None:
        try:
            pan_hash = load_key(cfg.hash_key_file).pan_hash(filters.pan)
        except BulkheadError as exc:
            raise click.ClickException(f"cannot look up a card: {exc}") from None
    return JournalFilter(filters.since, filters.until, filters.terminal, filters.rc, filters.destination, pan_hash)


@contextmanager
def _engine(cfg: NodeConfig) -> Iterator[Any]:  # a SQLAlchemy Engine (only storage modules name SQLAlchemy)
    from switch.infra.db.engine import make_engine

    engine = make_engine(cfg.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _storage(work: Callable[[], T]) -> T:
    """``work``, with a storage error as a one-line message and exit code 1."""
    try:
        return work()
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None


# -- rendering -------------------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def money(amount: int | None, currency: str | None) -> tuple[str | None, str | None]:
    """``(amount in major units, ISO 4217 alpha code)``; for a currency outside the table the numeric code and no
    major amount (its exponent is not known, and a guess could be off by a factor of 100)."""
    from processors.money import alpha, exponent

    if currency is None:
        return (None if amount is None else str(amount)), None
    code = alpha(currency)
    if code is None:
        return None, currency
    if amount is None:
        return None, code
    places = exponent(code)
    return str(Decimal(amount).scaleb(-places).quantize(Decimal(1).scaleb(-places))), code


def exchange_json(exchange: Exchange) -> dict[str, Any]:
    r = exchange.record
    major, code = money(r.amount, r.currency)
    return {
        "id": exchange.id, "received_at": _iso(r.received_at), "responded_at": _iso(r.responded_at),
        "trace_id": r.trace_id, "source_link": r.source_link, "destination": r.destination, "route": r.route,
        "mti_in": r.mti_in, "mti_out": r.mti_out, "processing_code": r.processing_code, "stan": r.stan,
        "rrn": r.rrn, "terminal_id": r.terminal_id, "pan": r.pan_masked, "amount": major, "currency": code,
        "amount_minor": r.amount, "response_code": r.response_code,
        "auth_code": (r.response or {}).get("38"), "outcome": r.outcome, "latency_us": r.latency_us,
    }


def exchange_line(exchange: Exchange) -> str:
    r = exchange.record
    major, code = money(r.amount, r.currency)
    amount = f"{major or r.amount} {code or ''}".strip() if r.amount is not None else "-"
    return (f"{r.received_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}Z  {r.mti_in}->{r.mti_out or '----'}  "
            f"rc {r.response_code or '--'}  {r.outcome:<11} {r.pan_masked or '-':<19} {amount:>14}  "
            f"tid {r.terminal_id or '-'}  {r.source_link}->{r.destination or '-'}  route {r.route or '-'}  "
            f"stan {r.stan or '-'}  trace {r.trace_id}")


def _bounded(asked: JournalFilter) -> tuple[JournalFilter, str | None]:
    """The filter with a card lookup's default window, and a note saying so when it was applied."""
    flt = asked.bounded()
    if flt.since is asked.since:
        return flt, None
    return flt, f"card lookup from {_iso(flt.since)} (give --since or --last to look further back)"


# -- commands ----------------------------------------------------------------------------------------------------
@click.command("list")
@conf_option
@filter_options()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def journal_list(conf: Path, since: datetime | None, until: datetime | None, last: timedelta | None,
                 terminal: str | None, rc: str | None, destination: str | None, pan: str | None, limit: int,
                 as_json: bool) -> None:
    """Exchanges matching every filter given, newest first (card numbers masked)."""
    from switch.storage.browse import list_exchanges

    cfg = load(conf)
    flt, note = _bounded(_journal_filter(cfg, _filters(cfg, since, until, last, terminal, rc, destination, pan)))
    with _engine(cfg) as engine:
        rows, truncated = _storage(lambda: list_exchanges(engine, flt, limit))
    if as_json:
        click.echo(json.dumps({"exchanges": [exchange_json(x) for x in rows], "truncated": truncated,
                               "since": _iso(flt.since), "until": _iso(flt.until)}, indent=2))
        return
    if note:
        click.echo(f"# {note}")
    for x in rows:
        click.echo(exchange_line(x))
    if not rows:
        click.echo("no exchange found")
    if truncated:
        click.echo(f"truncated: more than {limit} exchanges match (narrow the filters or raise --limit)")


@click.command("follow")
@conf_option
@filter_options(follow=True)
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="seconds between polls of the database")
@click.option("--count", type=click.IntRange(min=1), help="stop after this many exchanges (default: at Ctrl-C)")
@json_option
def journal_follow(conf: Path, since: datetime | None, last: timedelta | None, terminal: str | None,
                   rc: str | None, destination: str | None, pan: str | None, interval: float, count: int | None,
                   as_json: bool) -> None:
    """Print exchanges matching the filters as they are committed, until Ctrl-C (or --count). With --since or
    --last, the matching exchanges already journaled come first. --json: one object per line."""
    from switch.storage.browse import export_exchanges, follow_poll, follow_start

    cfg = load(conf)
    flt = _journal_filter(cfg, _filters(cfg, since, None, last, terminal, rc, destination, pan))
    shown = 0

    def show(rows: Iterable[Exchange]) -> bool:
        nonlocal shown
        for x in rows:
            click.echo(json.dumps(exchange_json(x)) if as_json else exchange_line(x))
            shown += 1
            if count is not None and shown >= count:
                return False
        return True

    with _engine(cfg) as engine, contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it ends
        # The cursor is taken before the backlog is read, so no row falls between the two.
        cursor = _storage(lambda: follow_start(engine))
        if flt.since is not None:
            backlog = _storage(lambda: [x for x in export_exchanges(engine, flt) if x.id <= cursor.last_id])
            if not show(backlog):
                return
        while show(_storage(lambda: follow_poll(engine, flt, cursor, time.monotonic()))):
            time.sleep(interval)


@click.command("export")
@conf_option
@filter_options()
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="file to write (refused if it exists)")
def journal_export(conf: Path, since: datetime | None, until: datetime | None, last: timedelta | None,
                   terminal: str | None, rc: str | None, destination: str | None, pan: str | None, fmt: str,
                   out: Path) -> None:
    """Write the exchanges matching the filters, oldest first, to a CSV or JSON file for a dispute: masked card,
    UTC times, amounts in major units with the ISO 4217 alpha code, response code, route, outcome, trace id."""
    from switch.storage.browse import export_exchanges

    cfg = load(conf)
    filters = _filters(cfg, since, until, last, terminal, rc, destination, pan)
    flt, note = _bounded(_journal_filter(cfg, filters))
    if out.exists():
        raise click.BadParameter(f"{out} exists; choose another name or remove it", param_hint="--out")
    # Written to a fresh temporary file beside the target (mkstemp: a new name, O_EXCL, mode 0600, so neither a
    # planted symlink nor a leftover file nor a second export can be written through), flushed to disk, then
    # linked into place when complete: a failed export leaves no partial file.
    written = 0
    partial: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent or Path("."))
        partial = Path(name)
        with open(fd, "w", encoding="utf-8", newline="") as stream, _engine(cfg) as engine:
            rows = export_exchanges(engine, flt)
            written = _storage(lambda: (_write_csv if fmt == "csv" else _write_json)(stream, rows, filters, flt))
            stream.flush()
            os.fsync(stream.fileno())
        os.link(partial, out)  # not rename: a file that appeared at ``out`` meanwhile is not overwritten
    except FileExistsError:
        raise click.BadParameter(f"{out} exists; choose another name or remove it", param_hint="--out") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    click.echo(f"exported {written} exchanges to {out}" + (f" ({note})" if note else ""))


def _export_row(exchange: Exchange) -> dict[str, Any]:
    row = exchange_json(exchange)
    return {key: row[key] for key in EXPORT_FIELDS}


def _write_csv(stream: IO[str], rows: Iterable[Exchange], filters: Filters, flt: JournalFilter) -> int:
    writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    written = 0
    for x in rows:
        writer.writerow(_export_row(x))
        written += 1
    return written


def _write_json(stream: IO[str], rows: Iterable[Exchange], filters: Filters, flt: JournalFilter) -> int:
    exchanges = [_export_row(x) for x in rows]
    described = {**filters.describe(), "since": _iso(flt.since), "until": _iso(flt.until)}
    json.dump({"exported_at": _iso(datetime.now(UTC)),
               "filters": {key: value for key, value in described.items() if value is not None},
               "exchanges": exchanges}, stream, indent=2)
    stream.write("\n")
    return len(exchanges)
