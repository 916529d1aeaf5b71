"""``bulkhead saf``: the store-and-forward queue of reversals and advices.

``show`` and the operator actions (``resend``, ``cancel``, ``expire``) read and change the database directly, so
they work with or without a running node; a running node's forwarder sees a resent entry at its next poll. Every
action is audited (``saf_actions``: the OS user, when, what, the reason) in the transaction that makes it, and a
refused action changes nothing. Card data appears masked only (the entries store nothing else in clear).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from switch.cli.common import admin, conf_option, json_option, load
from switch.config import NodeConfig
from switch.model.errors import BulkheadError

if TYPE_CHECKING:  # typing only: the storage modules load when a command runs, not when the CLI starts
    from switch.storage.saf import DestinationSummary, SafItem, SafStore

T = TypeVar("T")
STATUSES = ["pending", "exception", "acked", "expired", "failed", "cancelled"]


@click.group()
def saf() -> None:
    """Store-and-forward queue (reversals and advices)."""


@contextmanager
def _store(cfg: NodeConfig) -> Iterator[SafStore]:
    from switch.infra.db.engine import make_engine
    from switch.storage.saf import SafStore

    engine = make_engine(cfg.database_url)
    try:
        yield SafStore(engine)
    finally:
        engine.dispose()


def _run(cfg: NodeConfig, work: Callable[[SafStore], T]) -> T:
    """``work`` on the node's queue; a storage or state error is a one-line message and exit code 1."""
    try:
        with _store(cfg) as store:
            return work(store)
    except (BulkheadError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _check_destination(cfg: NodeConfig, store: SafStore, destination: str | None) -> None:
    """A destination is a link of the configuration or one the queue has had entries for; anything else is
    a typo, which must not look like an empty queue."""
    if destination is None:
        return
    known = set(cfg.link_names) | set(store.destinations())
    if destination not in known:
        raise click.BadParameter(
            f"unknown destination {destination!r} (known: {', '.join(sorted(known)) or 'none'})",
            param_hint="--destination")


def _now() -> datetime:
    return datetime.now(UTC)


def _age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _item_json(it: SafItem) -> dict[str, Any]:
    return {
        "id": it.id, "destination": it.destination, "mti": it.mti, "stan": it.stan, "rrn": it.rrn,
        "pan": it.pan_masked, "amount": it.amount, "currency": it.currency, "status": it.status,
        "attempts": it.attempts, "created_at": it.created_at.isoformat(),
        "next_attempt_at": it.next_attempt_at.isoformat(),
        "last_attempt_at": it.last_attempt_at.isoformat() if it.last_attempt_at else None,
        "last_response_code": it.last_response_code,
        "expires_at": it.expires_at.isoformat() if it.expires_at else None,
        "completed_at": it.completed_at.isoformat() if it.completed_at else None,
        "original_trace_id": it.original_trace_id, "original_key": it.original_key,
    }


def _summary_json(s: DestinationSummary, now: datetime) -> dict[str, Any]:
    return {"destination": s.destination, "pending": s.pending, "exceptions": s.exceptions,
            "oldest_age_s": int((now - s.oldest_created_at).total_seconds())}


@saf.command("show")
@conf_option
@click.argument("item_id", required=False, type=int)
@click.option("--destination", help="only this destination (a link name)")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@json_option
def saf_show(conf: Path, item_id: int | None, destination: str | None, status: str | None, limit: int,
             as_json: bool) -> None:
    """List entries (exceptions, then pending, then finished; masked) and the oldest undelivered age per
    destination; or, with ITEM_ID, one entry and its audit. Reads the database: works with or without a node."""
    cfg = load(conf)
    if item_id is not None:
        _show_one(cfg, item_id, as_json)
        return

    def read(store: SafStore) -> tuple[list[SafItem], int, list[DestinationSummary]]:
        _check_destination(cfg, store, destination)
        items, more = store.list_page(destination=destination, status=status, limit=limit)
        summary = [s for s in store.summary() if destination is None or s.destination == destination]
        return items, more, summary

    items, more, summary = _run(cfg, read)
    now = _now()
    if as_json:
        click.echo(json.dumps({"destinations": [_summary_json(s, now) for s in summary],
                               "entries": [_item_json(it) for it in items], "truncated": more}, indent=2))
        return
    for s in summary:
        click.echo(f"{s.destination}: {s.pending} pending, {s.exceptions} exceptions, "
                   f"oldest undelivered {_age(s.oldest_created_at, now)}")
    if not items:
        click.echo("store-and-forward queue is empty" if not summary else "no entries match")
        return
    click.echo(f"{'id':>6} {'destination':<14} {'mti':<5} {'stan':<7} {'pan':<20} {'amount':>12} "
               f"{'status':<9} {'tries':>5} {'age':>7} next attempt / last code")
    for it in items:
        amount = f"{it.amount} {it.currency or ''}" if it.amount is not None else "-"
        click.echo(f"{it.id:>6} {it.destination:<14} {it.mti:<5} {it.stan or '-':<7} {it.pan_masked or '-':<20} "
                   f"{amount:>12} {it.status:<9} {it.attempts:>5} {_age(it.created_at, now):>7} "
                   f"{it.next_attempt_at:%Y-%m-%d %H:%M:%S} {it.last_response_code or ''}")
    if more:
        click.echo(f"truncated: {more} more (use --limit, --destination or --status)")


def _show_one(cfg: NodeConfig, item_id: int, as_json: bool) -> None:
    from switch.storage.errors import SafItemNotFoundError

    def read(store: SafStore) -> tuple[SafItem, list[Any]]:
        item = store.get(item_id)
        if item is None:
            raise SafItemNotFoundError(item_id)
        return item, store.actions(item_id)

    item, actions = _run(cfg, read)
    audit = [{"at": a.at.isoformat(), "actor": a.actor, "action": a.action, "reason": a.reason,
              "from": a.old_status, "to": a.new_status, "forced": a.forced} for a in actions]
    if as_json:
        click.echo(json.dumps({**_item_json(item), "actions": audit}, indent=2))
        return
    for key, value in _item_json(item).items():
        click.echo(f"{key:<19} {value if value is not None else '-'}")
    for a in audit:
        what = f"{a['action']} --force" if a["forced"] else a["action"]
        click.echo(f"{'action':<19} {a['at']} {a['actor']} {what} ({a['from']} -> {a['to']}): {a['reason']}")


def _act(conf: Path, item_id: int, action: str, reason: str, force: bool = False) -> None:
    from switch.infra.adminsocket import user_name

    cfg = load(conf)
    now = _now()
    actor = user_name(os.getuid())
    expires = now + timedelta(seconds=cfg.saf.expire_after_s) if action == "resend" else None
    item = _run(cfg, lambda store: store.act(item_id, action, actor=actor, reason=reason, now=now,
                                              expires_at=expires, force=force))
    forced = ", forced" if force else ""
    click.echo(f"#{item.id} {item.mti} for {item.destination}: {item.status} ({action}{forced} by {actor}: {reason})")


reason_option = click.option("--reason", required=True, help="why (kept in the audit with your user name)")


@saf.command("resend")
@conf_option
@click.argument("item_id", type=int)
@reason_option
@click.option("--force", is_flag=True,
              help="resend even though a later entry for the same original may have reached the destination")
def saf_resend(conf: Path, item_id: int, reason: str, force: bool) -> None:
    """Send an entry again (an exception, or one failed, expired or cancelled): back to pending, due now, with a
    fresh budget of attempts and time. It goes out as the repeat MTI if it was ever sent. Refused while a later
    entry for the same original (its reversal, say) is acknowledged or was sent: the destination would get this
    one after it. --force resends anyway; the audit row records that it was forced."""
    _act(conf, item_id, "resend", reason, force)


@saf.command("cancel")
@conf_option
@click.argument("item_id", type=int)
@reason_option
def saf_cancel(conf: Path, item_id: int, reason: str) -> None:
    """Give up an undelivered entry (pending or exception) because it must not be sent (e.g. settled by hand)."""
    _act(conf, item_id, "cancel", reason)


@saf.command("expire")
@conf_option
@click.argument("item_id", type=int)
@reason_option
def saf_expire(conf: Path, item_id: int, reason: str) -> None:
    """Mark an undelivered entry (pending or exception) expired: too late to send, to be settled elsewhere."""
    _act(conf, item_id, "expire", reason)


@saf.command("retry")
@conf_option
@click.option("--destination")
def saf_retry(conf: Path, destination: str | None) -> None:
    """Make pending entries due now on the running node."""
    cfg = load(conf)
    _run(cfg, lambda store: _check_destination(cfg, store, destination))
    result = admin(cfg, "saf.retry", {"destination": destination})
    click.echo(f"{result['made_due']} entries due now")
