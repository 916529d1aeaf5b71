"""``bulkhead db``: the node's database migrations."""

from __future__ import annotations

from pathlib import Path

import click

from switch.cli.common import conf_option, load


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@conf_option
def db_upgrade(conf: Path) -> None:
    """Create or migrate the node's database to the latest schema."""
    from switch.infra.db.engine import safe_url
    from switch.storage.db import upgrade

    cfg = load(conf)
    upgrade(cfg.database_url)
    click.echo(f"database at {safe_url(cfg.database_url)} is up to date")


