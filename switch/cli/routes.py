"""``bulkhead routes``: the routing table: show, check offline, reload on the running node (or only show what a
reload would change), and the audit of past reloads."""

from __future__ import annotations

import json
import sys
from datetime import UTC
from pathlib import Path
from typing import NoReturn

import click

from switch.cli.common import admin, conf_option, json_option, load
from switch.config import NodeConfig
from switch.model.errors import BulkheadError, ConfigError, ConfigErrors


@click.group()
def routes() -> None:
    """Routing table: show, check offline, reload on the running node, history of reloads."""


@routes.command("show")
@conf_option
@click.option("--file", "file", type=click.Path(path_type=Path), help="show this file instead of the live table")
def routes_show(conf: Path, file: Path | None) -> None:
    """Show the table the running node uses (or, with --file or no node running, the file)."""
    from switch.ops.admin import AdminError, call
    from switch.routing import load_routes

    cfg = load(conf)
    if file is None:
        try:
            answer = call(cfg.admin_socket, "routes.show")
            if answer.get("ok"):
                result = answer["result"]
                click.echo(f"# live table from {result['source']} (digest {result['digest'][:16]})")
                click.echo(result["table"])
                return
        except AdminError:
            pass
    path = file or cfg.routes
    try:
        table = load_routes(path, known_links=frozenset(c.name for c in cfg.connectors))
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"# file {path} (digest {table.digest[:16]}; no running node answered)" if file is None
               else f"# file {path} (digest {table.digest[:16]})")
    click.echo(table.describe())


@routes.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@conf_option
def routes_check(file: Path, conf: Path) -> None:
    """Validate FILE offline against the configured links; print every problem (file, line, key, reason), one a
    line, and exit 1 if there is any."""
    from switch.routing import load_routes

    known = None
    if (conf / "node.toml" if conf.is_dir() else conf).exists():
        known = frozenset(c.name for c in load(conf).connectors)
    try:
        table = load_routes(file, known_links=known)
    except ConfigError as exc:
        _fail_with_errors(exc)
    click.echo(f"{file}: ok (digest {table.digest[:16]})")


def _fail_with_errors(exc: ConfigError) -> NoReturn:
    """Every problem of a refused table on stderr, one a line, then exit 1."""
    problems = exc.errors if isinstance(exc, ConfigErrors) else (exc,)
    for problem in problems:
        click.echo(str(problem), err=True)
    click.echo(f"{exc.file}: {len(problems)} {'problem' if len(problems) == 1 else 'problems'}", err=True)
    sys.exit(1)


@routes.command("reload")
@conf_option
@click.option("--file", "file", type=click.Path(path_type=Path), help="load this file instead of the configured one")
@click.option("--dry-run", is_flag=True,
              help="validate and print the diff against the live table; change nothing, audit nothing")
def routes_reload(conf: Path, file: Path | None, dry_run: bool) -> None:
    """Validate and atomically swap the running node's routing table (with --dry-run: only show what would
    change)."""
    cfg = load(conf)
    if dry_run:
        _dry_run(cfg, file)
        return
    args = {"path": str(file.resolve())} if file else {}
    result = admin(cfg, "routes.reload", args)
    click.echo(f"reloaded {result['source']}: {result['old_digest'][:12]} -> {result['new_digest'][:12]}")
    _print_diff(result["diff"])


def _print_diff(lines: list[str]) -> None:
    for line in lines or ["(no changes)"]:
        click.echo(f"  {line}")


def _dry_run(cfg: NodeConfig, file: Path | None) -> None:
    """The diff against the table the running node uses (asked over the admin socket), or, with no node
    running, against the configured file. Nothing is swapped and no audit row is written."""
    from switch.ops.admin import AdminError, call
    from switch.routing import load_routes

    args = {"path": str(file.resolve())} if file else {}
    try:
        answer = call(cfg.admin_socket, "routes.diff", args)
    except AdminError:
        answer = None  # no node running: compare with the configured file below
    if answer is not None:
        if not answer.get("ok"):
            raise click.ClickException(str(answer.get("error")))
        result = answer["result"]
        click.echo(f"dry run: {result['source']} against the live table: {result['old_digest'][:12]} -> "
                   f"{result['new_digest'][:12]} (nothing changed)")
        _print_diff(result["diff"])
        return
    known = frozenset(c.name for c in cfg.connectors)
    path = file or cfg.routes
    try:
        new = load_routes(path, known_links=known)
    except ConfigError as exc:
        _fail_with_errors(exc)
    try:
        base = load_routes(cfg.routes, known_links=known)
    except ConfigError as exc:
        raise click.ClickException(f"no node is running and the configured table is broken: {exc}") from None
    click.echo(f"dry run: {path} against the configured file {cfg.routes} (no node running): "
               f"{base.digest[:12]} -> {new.digest[:12]} (nothing changed)")
    _print_diff(base.diff(new))


@routes.command("history")
@conf_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def routes_history(conf: Path, limit: int, as_json: bool) -> None:
    """Routing-table reloads, newest first: who, when, source, digests, outcome, reason and the diff. Reads the
    database: works with or without a running node."""
    from switch.infra.db.engine import make_engine
    from switch.storage.audit import list_route_reloads

    cfg = load(conf)
    engine = make_engine(cfg.database_url)
    try:
        reloads = list_route_reloads(engine, limit)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([
            {"id": r.id, "at": r.at.astimezone(UTC).isoformat(), "actor": r.actor, "source": r.source,
             "old_digest": r.old_digest, "new_digest": r.new_digest, "outcome": r.outcome, "reason": r.reason,
             "diff": r.diff.splitlines()} for r in reloads], indent=2))
        return
    if not reloads:
        click.echo("no reload recorded")
    for r in reloads:
        digests = f"{(r.old_digest or '-')[:12]} -> {(r.new_digest or '-')[:12]}"
        click.echo(f"#{r.id} {r.at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}  {r.outcome}  by {r.actor}  "
                   f"{r.source}  {digests}")
        for line in (r.reason or "").splitlines():
            click.echo(f"  reason: {line}")
        if r.outcome == "applied":
            _print_diff(r.diff.splitlines())
