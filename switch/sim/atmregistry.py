"""The host's view of the simulated terminals, read from the ATMP's terminal registry in the node's database (the
store ``bulkhead atm show`` prints from): each terminal's TMK cryptogram, whether it MACs, whether it is a DUKPT
terminal, and its cassettes as the host counts them.

``bulkhead sim atm --conf`` takes the terminals' keys and cassettes from there (what `bulkhead atm seed` registered
for the demo fleet), and ``--check-host`` compares, at the end of a run, each terminal's own cash with the host's:
per cassette, the notes the host counts as dispensed and as retracted since the run started against the notes the
terminal saw go out and be retracted, and the notes left on both sides.

The registry is the ATMP's storage (``atmp.storage.AtmStore``), found at run time: an installation without the
ATMP has none, and the simulator says so rather than guess (the command line, ``switch.cli``, is a layer above the
simulators and is not imported here).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switch.model.errors import BulkheadError
from switch.sim.atmreport import TerminalCash

STORE_MODULE = "atmp.storage"


class RegistryError(BulkheadError):
    """The host's terminal registry cannot be read (no ATMP in this installation, no such terminal, no database)."""


@dataclass(frozen=True)
class HostCassette:
    position: int
    denomination: int
    loaded: int
    dispensed: int
    rejected: int
    retracted: int

    @property
    def remaining(self) -> int:
        return self.loaded - self.dispensed - self.rejected - self.retracted


@dataclass(frozen=True)
class HostTerminal:
    id: str
    status: str
    tmk: str | None = field(repr=False)  # an LMK cryptogram, kept out of the output all the same
    mac: bool
    dukpt: bool
    cassettes: tuple[HostCassette, ...]

    def cassette_spec(self) -> str:
        """The terminal's cassettes for the simulator (``POS:DENOMINATION:COUNT``): what the host counts in each
        cassette now is what the terminal has loaded."""
        return ",".join(f"{c.position}:{c.denomination}:{max(c.remaining, 0)}" for c in self.cassettes)


def from_registry(terminal: Any) -> HostTerminal:
    """The registry's terminal (``atmp.model.Terminal``) as the simulator reads it."""
    keys = terminal.keys
    return HostTerminal(
        id=str(terminal.id), status=str(getattr(terminal.status, "value", terminal.status)), tmk=keys.tmk,
        mac=bool(keys.mac), dukpt=keys.dukpt_bdk is not None,
        cassettes=tuple(HostCassette(int(c.position), int(c.denomination), int(c.loaded), int(c.dispensed),
                                     int(c.rejected), int(c.retracted)) for c in terminal.cassettes))


def read_registry(conf: Path, ids: Sequence[str]) -> dict[str, HostTerminal]:
    """The terminals ``ids`` as the host's registry holds them, from the node configuration ``conf``'s database."""
    from switch.config import load_config
    from switch.infra.db.engine import make_engine

    cfg = load_config(conf)
    try:
        storage = importlib.import_module(STORE_MODULE)
    except ModuleNotFoundError:
        raise RegistryError(f"this installation has no ATMP terminal registry ({STORE_MODULE}): the host's keys "
                            "and counts cannot be read; give --tmk or --tmk-file") from None
    engine = make_engine(cfg.database_url)
    try:
        store = storage.AtmStore(engine)
        found: dict[str, HostTerminal] = {}
        for tid in ids:
            terminal = store.terminal(tid)
            if terminal is None:
                raise RegistryError(f"terminal {tid} is not in the host's registry (bulkhead atm list)")
            found[tid] = from_registry(terminal)
        return found
    except RegistryError:
        raise
    except Exception as exc:  # a database that is missing, not migrated, locked: one line, the run does not start
        raise RegistryError(f"cannot read the host's terminal registry: {exc}") from None
    finally:
        engine.dispose()


def check(before: dict[str, HostTerminal], after: dict[str, HostTerminal],
          cash: dict[str, TerminalCash]) -> dict[str, Any]:
    """Each terminal's own cash against the host's counts over the run: ``agree``, a one-line ``summary``, the
    ``mismatches`` (one line each) and per terminal and cassette both sides' figures."""
    mismatches: list[str] = []
    terminals: dict[str, Any] = {}
    for tid, own in sorted(cash.items()):
        start, end = before.get(tid), after.get(tid)
        if start is None or end is None:
            mismatches.append(f"{tid}: not in the host's registry")
            continue
        host_start = {c.position: c for c in start.cassettes}
        host_end = {c.position: c for c in end.cassettes}
        rows = []
        for c in own.cassettes.cassettes:
            first, last = host_start.get(c.position), host_end.get(c.position)
            if first is None or last is None:
                mismatches.append(f"{tid} cassette {c.position}: the host has no such cassette")
                continue
            figures: dict[str, Any] = {
                "position": c.position,
                "dispensed": {"terminal": c.out - c.retracted, "host": last.dispensed - first.dispensed},
                "retracted": {"terminal": c.retracted, "host": last.retracted - first.retracted},
                "rejected": {"terminal": 0, "host": last.rejected - first.rejected},
                "remaining": {"terminal": c.remaining, "host": last.remaining},
            }
            rows.append(figures)
            for name in ("dispensed", "retracted", "rejected", "remaining"):
                pair: dict[str, int] = figures[name]
                if pair["terminal"] != pair["host"]:
                    mismatches.append(f"{tid} cassette {c.position}: {name} {pair['terminal']} at the terminal, "
                                      f"{pair['host']} at the host")
        terminals[tid] = rows
    agree = not mismatches
    summary = (f"{len(terminals)} terminal(s): the host's cassette counts agree with the terminals'" if agree
               else f"{len(mismatches)} mismatch(es) between the terminals' cash and the host's counts")
    return {"agree": agree, "summary": summary, "mismatches": mismatches, "terminals": terminals}
