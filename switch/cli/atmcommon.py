"""What the ``bulkhead atm`` commands share: the ATMP's store on the node's database, telling a running node to
reload its terminals, the operator's name, and reading money, cassettes and note counts as operators type them.

Every value is checked before anything changes; a bad one is one line naming the argument (exit 1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, TypeVar

import click

from switch.cli.common import admin
from switch.config import NodeConfig
from switch.model.errors import BulkheadError

if TYPE_CHECKING:
    from atmp.model import Cassette
    from atmp.storage import AtmStore

T = TypeVar("T")
_CASSETTE = re.compile(r"([1-4]):([0-9]+(?:\.[0-9]+)?):([0-9]+)")
_COUNT = re.compile(r"([1-4]):([0-9]+)")
_FIGURES = re.compile(r"([0-9]+):([0-9]+(?:\.[0-9]+)?)")


def now() -> datetime:
    return datetime.now(UTC)


def actor() -> str:
    """The OS user running the command: the audit trail's actor."""
    from switch.infra.adminsocket import user_name

    return user_name(os.getuid())


@contextmanager
def opened_store(cfg: NodeConfig) -> Iterator[AtmStore]:
    """The ATMP's store on the node's database, which must be migrated to the schema this version ships."""
    from atmp.storage import AtmStore
    from switch.infra.db.engine import make_engine, safe_url
    from switch.storage.db import current_revision, head_revision

    engine = make_engine(cfg.database_url)
    try:
        revision, head = current_revision(engine), head_revision()
        if revision != head:
            raise click.ClickException(f"the node's database at {safe_url(cfg.database_url)} is at revision "
                                       f"{revision or 'none'}, not {head}: run `bulkhead db upgrade` first")
        yield AtmStore(engine)
    finally:
        engine.dispose()


def run(cfg: NodeConfig, work: Callable[[AtmStore], T]) -> T:
    """``work`` on the store; a registry, cash or storage error is one line and exit 1."""
    try:
        with opened_store(cfg) as store:
            return work(store)
    except (BulkheadError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def tell_node(cfg: NodeConfig) -> bool:
    """Ask a running node to reload its terminal cache (after any change). No node running is fine: it reads the
    registry when it starts. Any other failure is an error: the change is saved but the node has not seen it.
    Returns whether a node was told."""
    try:
        admin(cfg, "atm.reload")
    except click.ClickException as exc:
        if exc.message.startswith("no node is running"):
            return False
        raise click.ClickException(f"saved, but the running node did not reload its terminals: {exc.message}") \
            from None
    return True


def currency_alpha(numeric: str, argument: str = "--currency") -> str:
    """The alphabetic code of an ISO 4217 numeric code this node knows (amounts are typed in its major units)."""
    from processors.money import alpha

    code = alpha(numeric) if numeric.isdigit() and len(numeric) == 3 else None
    if code is None:
        raise click.ClickException(f"{argument} {numeric!r}: not an ISO 4217 numeric currency code this node knows")
    return code


def parse_money(text: str, currency: str) -> int:
    """``"20.00"`` or ``"20"`` in ``currency`` (numeric) -> minor units by its ISO 4217 exponent; ValueError with
    the reason otherwise."""
    from processors.money import exponent

    alpha = currency_alpha(currency)
    places = exponent(alpha)
    try:
        value = Decimal(text)
        if not value.is_finite() or value < 0:
            raise InvalidOperation
    except InvalidOperation:
        raise ValueError("not an amount") from None
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{alpha} has {places} decimal place(s)")
    return int(scaled)


def money(text: str, currency: str, argument: str) -> int:
    """:func:`parse_money`, a bad amount being one line naming ``argument``."""
    try:
        return parse_money(text, currency)
    except ValueError as exc:
        raise click.ClickException(f"{argument} {text!r}: {exc}") from None


def show_money(value: int, currency: str) -> str:
    """Minor units of a numeric currency as people read them (``1,234.56 USD``)."""
    from processors.money import alpha, format_amount

    return format_amount(value, alpha(currency) or currency)


def cassettes(specs: tuple[str, ...], currency: str) -> tuple[Cassette, ...]:
    """``--cassette POS:DENOMINATION:COUNT`` (the denomination in major units: ``1:20.00:2000``)."""
    from atmp.errors import TerminalSpecError
    from atmp.model import Cassette

    out = []
    for spec in specs:
        found = _CASSETTE.fullmatch(spec)
        if found is None:
            raise click.ClickException(f"--cassette {spec!r}: expected POSITION:DENOMINATION:COUNT, position 1-4, "
                                       "e.g. 1:20.00:2000")
        try:
            denomination = parse_money(found.group(2), currency)
            out.append(Cassette(int(found.group(1)), currency, denomination, int(found.group(3))))
        except ValueError as exc:
            raise click.ClickException(f"--cassette {spec!r}: {exc}") from None
        except TerminalSpecError as exc:
            raise click.ClickException(f"--cassette {spec!r}: {exc.reason}") from None
    if len({c.position for c in out}) != len(out):
        raise click.ClickException("--cassette: a position is given twice")
    return tuple(out)


def note_counts(specs: tuple[str, ...], argument: str) -> dict[int, int]:
    """``--removed 1:1995 --removed 2:2000`` or ``--removed 1:1995,2:2000`` -> {1: 1995, 2: 2000}."""
    out: dict[int, int] = {}
    for spec in (part for value in specs for part in value.split(",") if part):
        found = _COUNT.fullmatch(spec.strip())
        if found is None:
            raise click.ClickException(f"{argument} {spec!r}: expected POSITION:COUNT, position 1-4, e.g. 1:1995")
        position = int(found.group(1))
        if position in out:
            raise click.ClickException(f"{argument}: cassette {position} is given twice")
        out[position] = int(found.group(2))
    return out


def figures(spec: str | None, currency: str, argument: str) -> tuple[int, int]:
    """``--withdrawals N:AMOUNT`` -> (count, minor units)."""
    if spec is None:
        return 0, 0
    found = _FIGURES.fullmatch(spec)
    if found is None:
        raise click.ClickException(f"{argument} {spec!r}: expected COUNT:AMOUNT, e.g. 12:1800.00")
    try:
        return int(found.group(1)), parse_money(found.group(2), currency)
    except ValueError as exc:
        raise click.ClickException(f"{argument} {spec!r}: {exc}") from None
