"""``bulkhead routes``: the routing table: show, check offline, reload on the running node."""

from __future__ import annotations

from pathlib import Path

import click

from switch.cli.common import admin, conf_option, load
from switch.model.errors import BulkheadError


@click.group()
def routes() -> None:
    """Routing table: show, check offline, reload on the running node."""


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
    """Validate FILE offline against the configured links; exit 1 with file, line, key and reason."""
    from switch.routing import load_routes

    known = None
    if (conf / "node.toml" if conf.is_dir() else conf).exists():
        known = frozenset(c.name for c in load(conf).connectors)
    try:
        table = load_routes(file, known_links=known)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{file}: ok (digest {table.digest[:16]})")


@routes.command("reload")
@conf_option
@click.option("--file", "file", type=click.Path(path_type=Path), help="load this file instead of the configured one")
def routes_reload(conf: Path, file: Path | None) -> None:
    """Validate and atomically swap the running node's routing table."""
    cfg = load(conf)
    args = {"path": str(file.resolve())} if file else {}
    result = admin(cfg, "routes.reload", args)
    click.echo(f"reloaded {result['source']}: {result['old_digest'][:12]} -> {result['new_digest'][:12]}")
    for line in result["diff"] or ["(no changes)"]:
        click.echo(f"  {line}")


