"""The ``bulkhead`` command: a thin layer over library functions (pip-tools / warehouse style), one module per
command group; this root only assembles them.

Commands that act on a running node go through its admin socket; the others read the configuration and the
database directly. Output never contains a clear PAN, track, PIN block or key.

The command line is also where the demo's tools are offered (``sim``, ``cell seed``, ``cards set-pin
--test-pin``): nothing the node or a cell runs imports them.
"""

from __future__ import annotations

import click

from hsm.cli import hsm_group, keys_group
from switch.cli import accounts, cards, cell, credit, customers, db, journal, ledger, links, routes, run, saf
from switch.sim.cli import sim


@click.group()
@click.version_option(package_name="bulkhead")
def main() -> None:
    """Bulkhead: ISO 8583 payment switch."""


for command in (run.run, db.db, routes.routes, links.links, saf.saf, journal.journal, cell.cell, sim, keys_group,
                hsm_group, customers.customers, accounts.accounts, cards.cards, credit.credit, ledger.ledger):
    main.add_command(command)
