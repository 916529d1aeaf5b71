"""``bulkhead links``: the running node's links: status, sign-on, sign-off, echo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from switch.cli.common import admin, conf_option, json_option, load


@click.group()
def links() -> None:
    """Links of the running node."""


@links.command("status")
@conf_option
@json_option
def links_status(conf: Path, as_json: bool) -> None:
    """Every link of the running node, a line each (--json: the list of objects the node reports)."""
    found = admin(load(conf), "links.status")
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for link in found:
        extra = {k: v for k, v in link.items() if k not in ("name", "kind", "state")}
        click.echo(f"{link['name']:<14} {link['kind']:<10} {link['state']:<10} "
                   + " ".join(f"{k}={_value(v)}" for k, v in extra.items()))


def _value(value: object) -> str:
    """One ``key=value`` token, without spaces: counts by reason (a listener's refusals and closes) as
    ``reason:n,...``, nested details (a degraded link's reason, the last error) likewise, nothing as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ",".join(f"{_value(k)}:{_value(n)}" for k, n in sorted(value.items())) or "-"
    return str(value).replace(" ", "_")


def _link_command(cmd: str, verb: str) -> Any:
    @links.command(verb)
    @click.argument("name")
    @conf_option
    def command(name: str, conf: Path) -> None:
        result = admin(load(conf), cmd, {"name": name})
        click.echo(json.dumps(result))

    command.__doc__ = f"Send a {verb} (0800) on connector NAME and print the answer."
    return command


for _cmd, _verb in (("links.signon", "signon"), ("links.signoff", "signoff"), ("links.echo", "echo")):
    _link_command(_cmd, _verb)


@links.command("rekey")
@click.argument("name")
@click.option("--key", "key", type=click.Choice(["pin", "mac"]), default=None,
              help="The key to change: the zone PIN key (ZPK) or the zone MAC key (ZAK); default the link's choice.")
@conf_option
def links_rekey(name: str, key: str | None, conf: Path) -> None:
    """Ask connector NAME's network for a new zone PIN or MAC key (its key exchange; needs zmk on the link)."""
    result = admin(load(conf), "links.rekey", {"name": name} if key is None else {"name": name, "key": key})
    click.echo(json.dumps(result))
    if not result.get("installed"):
        raise SystemExit(1)


