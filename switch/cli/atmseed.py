"""``bulkhead atm seed``: register the demo fleet (``atm-fleet.toml`` beside node.toml), each terminal in service
with a TMK formed from the file's demo components by the node's software HSM under the public test LMK.

Idempotent, like ``bulkhead cell seed``: a terminal already registered is left alone, so ``make run`` calls it
every time. Demo data only: the components are public, and the command refuses any HSM but the software one with
the test LMK.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from atmp.errors import AtmpError
from atmp.model import Cassette, KeySet, Owner, Terminal, TerminalStatus, check_cryptogram, check_kcv
from hsm.api import Hsm, NewKey
from switch.cli.atmcommon import actor, cassettes, money, now, run, tell_node
from switch.cli.atmkeys import form_tmk, with_hsm
from switch.cli.common import conf_option, load
from switch.config import NodeConfig
from switch.model.errors import ConfigError
from switch.model.toml import TomlTable

FLEET_FILE = "atm-fleet.toml"
BDK_TYPE = "009"


@dataclass(frozen=True)
class DemoTerminal:
    terminal: Terminal
    components: tuple[str, ...]


@dataclass(frozen=True)
class Fleet:
    bdk: str | None
    bdk_kcv: str | None
    terminals: tuple[DemoTerminal, ...]


def _checked(table: TomlTable, name: str, work: Any) -> Any:
    """``work()``, with a bad value reported as the file's key."""
    try:
        return work()
    except click.ClickException as exc:
        raise table.error(name, exc.message) from None
    except AtmpError as exc:
        raise table.error(name, str(exc)) from None


def read_fleet(file: Path) -> Fleet:
    """The fleet file, every key checked (an unknown key is an error naming it)."""
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(file), "", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), "", f"TOML syntax error: {exc}") from None
    root = TomlTable(data, str(file), "")
    bdk = bdk_kcv = None
    dukpt = root.table("dukpt")
    if dukpt is not None:
        bdk = _checked(dukpt, "bdk", lambda: check_cryptogram("bdk", dukpt.get("bdk", str, required=True)))
        bdk_kcv = _checked(dukpt, "bdk_kcv", lambda: check_kcv("bdk kcv", dukpt.get("bdk_kcv", str, required=True)))
        dukpt.done()
    terminals = []
    for i, item in enumerate(root.get("terminals", list, required=True)):
        if not isinstance(item, dict):
            raise root.error(f"terminals[{i}]", "expected a table")
        terminals.append(_terminal(TomlTable(item, str(file), f"terminals[{i}]"), bdk))
    root.done()
    return Fleet(bdk, bdk_kcv, tuple(terminals))


def _terminal(t: TomlTable, bdk: str | None) -> DemoTerminal:
    currency = t.get("currency", str, required=True)
    specs = t.get("cassettes", list, [])
    if not all(isinstance(s, str) for s in specs):
        raise t.error("cassettes", "expected strings POSITION:DENOMINATION:COUNT")
    cash: tuple[Cassette, ...] = _checked(t, "cassettes", lambda: cassettes(tuple(specs), currency))
    surcharge: int = _checked(t, "surcharge", lambda: money(t.get("surcharge", str, "0"), currency, "surcharge"))
    components = t.get("tmk_components", list, required=True)
    if len(components) not in (2, 3) or not all(isinstance(c, str) for c in components):
        raise t.error("tmk_components", "2 or 3 components (hex strings)")
    dukpt = t.get("dukpt", bool, False)
    if dukpt and bdk is None:
        raise t.error("dukpt", "a DUKPT terminal needs the [dukpt] bdk")
    owner = t.get("owner", str, required=True)
    if owner not in ("own", "partner"):
        raise t.error("owner", "own or partner")

    def build() -> Terminal:
        return Terminal(id=t.get("id", str, required=True), location=t.get("location", str, required=True),
                        institution=t.get("institution", str, required=True), owner=Owner(owner), currency=currency,
                        status=TerminalStatus.IN_SERVICE, cassettes=cash, surcharge=surcharge,
                        low_cash_notes=t.non_negative("low_cash", 0),
                        keys=KeySet(dukpt_bdk=bdk if dukpt else None, mac=t.get("mac", bool, False),
                                    pin_format=t.get("pin_format", str, "01")))

    terminal: Terminal = _checked(t, "id", build)
    t.done()
    return DemoTerminal(terminal, tuple(str(c) for c in components))


def _add(cfg: NodeConfig, terminal: Terminal) -> None:
    run(cfg, lambda store: store.add_terminal(terminal, at=now(), actor=actor()))


@click.command("seed")
@conf_option
@click.option("--fleet", "fleet_file", type=click.Path(path_type=Path),
              help=f"the fleet file (default: {FLEET_FILE} beside node.toml)")
def seed(conf: Path, fleet_file: Path | None) -> None:
    """Register the demo ATM fleet (terminals already registered are left alone). Demo data only: each TMK is
    formed from public components under the test LMK."""
    from dataclasses import replace

    cfg = load(conf)
    if cfg.hsm is None or cfg.hsm.kind != "software" or not cfg.hsm.test_lmk:
        raise click.ClickException("the demo fleet's keys are formed under the public test LMK: it needs [hsm] "
                                   "kind = \"software\", test_lmk = true")
    file = fleet_file or cfg.file.parent / FLEET_FILE
    try:
        fleet = read_fleet(file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    known = {t.id for t in run(cfg, lambda store: store.terminals())}
    todo = [d for d in fleet.terminals if d.terminal.id not in known]
    for d in fleet.terminals:
        if d.terminal.id in known:
            click.echo(f"{d.terminal.id}: registered already, not seeded")
    if not todo:
        return

    async def keys(hsm: Hsm) -> list[NewKey]:
        if fleet.bdk is not None and await hsm.key_check_value(BDK_TYPE, fleet.bdk) != fleet.bdk_kcv:
            raise click.ClickException(f"{file}: dukpt.bdk does not have the check value {fleet.bdk_kcv} under "
                                       "this HSM's LMK")
        return [await form_tmk(hsm, d.components) for d in todo]

    made = with_hsm(cfg, keys)
    for d, tmk in zip(todo, made, strict=True):
        terminal = replace(d.terminal, keys=replace(d.terminal.keys, tmk=tmk.under_lmk, tmk_kcv=tmk.kcv),
                           rekey_due=True)
        _add(cfg, terminal)
        kinds = [k for k, on in (("MAC", terminal.keys.mac), ("DUKPT", terminal.keys.dukpt)) if on]
        click.echo(f"{terminal.id}: seeded, in service, {terminal.owner.value}, TMK KCV {tmk.kcv}"
                   + (f", {', '.join(kinds)}" if kinds else ""))
    tell_node(cfg)
