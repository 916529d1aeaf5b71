"""The ``bulkhead`` command's root: it assembles the command groups, each in a module of its own (and the HSM's and
the simulators' groups from their packages), importing a group only when it is used. So ``bulkhead run`` imports
the node and not the simulators, and a cell process (``python -m switch.cli.cell run``) imports neither."""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of its click command or group
COMMANDS = {
    "run": "switch.cli.run:run",
    "status": "switch.cli.status:status",
    "db": "switch.cli.db:db",
    "routes": "switch.cli.routes:routes",
    "links": "switch.cli.links:links",
    "saf": "switch.cli.saf:saf",
    "journal": "switch.cli.journal:journal",
    "cell": "switch.cli.cell:cell",
    "customers": "switch.cli.customers:customers",
    "accounts": "switch.cli.accounts:accounts",
    "cards": "switch.cli.cards:cards",
    "credit": "switch.cli.credit:credit",
    "ledger": "switch.cli.ledger:ledger",
    "exceptions": "switch.cli.exceptions:exceptions",
    "wire": "switch.cli.wire:wire",
    "atm": "switch.cli.atm:atm",
    "sim": "switch.sim.cli:sim",
    "keys": "hsm.cli:keys_group",
    "hsm": "hsm.cli:hsm_group",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they are looked up (click's "lazily loading subcommands")."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="bulkhead")
def main() -> None:
    """Bulkhead: ISO 8583 payment switch."""
