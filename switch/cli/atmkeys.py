"""``bulkhead atm load-tmk``: a terminal master key formed from components under dual control, or imported under a
zone master key, through the node's HSM (``[hsm]`` in node.toml).

Dual control: each component is typed by a different custodian, hidden and twice; only the HSM sees the components
together (it forms the key: their XOR, odd parity forced, under the LMK). The command prints the key's check value
for the custodians to compare with their key sheet and stores the LMK cryptogram; no component is stored, printed
or logged, and a refused component is never echoed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import click

from hsm.api import Hsm, NewKey
from switch.cli.atmcommon import actor, now, run, tell_node
from switch.cli.common import conf_option, json_option, load
from switch.config import NodeConfig

TMK_TYPE = "002"  # payShield key type of a TPK/TMK/PVK (LMK pair 14-15)
T = TypeVar("T")
# A double-length component as custodians type it (32 hex), or under the LMK (U + 32 hex: a payShield takes
# only those from a host, A4).
_COMPONENT = re.compile(r"[0-9A-Fa-f]{32}|U[0-9A-F]{32}")
_UNDER_ZMK = re.compile(r"[UTXYZ]?[0-9A-F]{16,48}|R[0-9A-Za-z]{16,}")


@runtime_checkable
class FormsKeys(Protocol):
    """An HSM that forms a key from components (``Hsm.form_key_from_components``)."""

    async def form_key_from_components(self, key_type: str, components: Sequence[str],
                                       scheme: str = "U") -> NewKey: ...


@asynccontextmanager
async def _opened(cfg: NodeConfig) -> AsyncIterator[Hsm]:
    from hsm.open import open_hsm

    if cfg.hsm is None:
        raise click.ClickException(f"{cfg.file}: no [hsm] table: a TMK is formed or imported by the node's HSM")
    async with open_hsm(cfg.hsm) as hsm:
        yield hsm


def open_node_hsm(cfg: NodeConfig) -> AbstractAsyncContextManager[Hsm]:
    """The node's HSM, for one command (tests replace this)."""
    return _opened(cfg)


def with_hsm(cfg: NodeConfig, work: Callable[[Hsm], Awaitable[T]]) -> T:
    """Run ``work(hsm)`` (a coroutine function) with the node's HSM; an HSM refusal is one line, exit 1."""
    import trio

    from hsm.errors import HsmError

    async def main() -> T:
        async with open_node_hsm(cfg) as hsm:
            return await work(hsm)

    try:
        return trio.run(main)
    except HsmError as exc:
        raise click.ClickException(f"the HSM refused: {exc}") from None


async def form_tmk(hsm: Hsm, components: Sequence[str]) -> NewKey:
    if not isinstance(hsm, FormsKeys):
        raise click.ClickException("this HSM backend cannot form a key from components")
    return await hsm.form_key_from_components(TMK_TYPE, list(components), "U")


def _custodians(count: int) -> tuple[list[str], list[str]]:
    """Each custodian's name and component, prompted; checked before the HSM sees any."""
    names: list[str] = []
    components: list[str] = []
    for i in range(1, count + 1):
        name = click.prompt(f"custodian {i} name").strip()
        if not name:
            raise click.ClickException(f"custodian {i}: a name is needed (the audit trail records who)")
        if name in names:
            raise click.ClickException(f"custodian {i}: {name} has a component already: dual control needs a "
                                       "different custodian for each")
        component = click.prompt(f"component {i} ({name})", hide_input=True, confirmation_prompt=True).strip()
        if not _COMPONENT.fullmatch(component):
            raise click.ClickException(f"component {i}: expected 32 hex digits (or U + 32 hex under the LMK)")
        if components and (len(component) != len(components[0])
                           or (component[0] == "U") != (components[0][0] == "U")):
            raise click.ClickException(f"component {i}: not of the same kind and length as component 1")
        names.append(name)
        components.append(component.upper())
    return names, components


@click.command("load-tmk")
@conf_option
@click.argument("terminal_id")
@click.option("--components", "count", type=click.Choice(["2", "3"]),
              help="form the TMK from 2 or 3 components, each typed by its own custodian (prompted, hidden)")
@click.option("--under-zmk", help="import the TMK sent under a zone master key (its cryptogram under the ZMK)")
@click.option("--zmk", help="the zone master key it came under (an LMK cryptogram)")
@json_option
def load_tmk(conf: Path, terminal_id: str, count: str | None, under_zmk: str | None, zmk: str | None,
             as_json: bool) -> None:
    """Load a terminal's master key: from components under dual control (--components 2|3) or imported under a
    zone master key (--under-zmk KEY --zmk ZMK). Prints the check value; stores only the LMK cryptogram. A key
    exchange becomes due, so the terminal gets working keys under the new TMK."""
    import json

    from atmp.errors import TerminalSpecError
    from atmp.model import check_cryptogram

    if (count is None) == (under_zmk is None):
        raise click.ClickException("give either --components 2|3 or --under-zmk KEY --zmk ZMK")
    if under_zmk is not None:
        if zmk is None:
            raise click.ClickException("--under-zmk needs --zmk, the zone master key it came under")
        try:
            check_cryptogram("--zmk", zmk)
        except TerminalSpecError as exc:
            raise click.ClickException(str(exc)) from None
        if not _UNDER_ZMK.fullmatch(under_zmk):
            raise click.ClickException("--under-zmk: not a key under a ZMK (a scheme letter and 16, 32 or 48 hex, or "
                                       "R + a TR-31 block)")
    elif zmk is not None:
        raise click.ClickException("--zmk goes with --under-zmk")
    cfg = load(conf)
    if run(cfg, lambda store: store.terminal(terminal_id)) is None:  # before anyone types a component
        raise click.ClickException(f"unknown terminal {terminal_id!r}")
    if count is not None:
        names, components = _custodians(int(count))
        made = with_hsm(cfg, lambda hsm: form_tmk(hsm, components))
        tmk, kcv = made.under_lmk, made.kcv
        how, note = f"{count} components under dual control: {', '.join(names)}", ""
    else:
        assert under_zmk is not None and zmk is not None
        zone_key, sent = zmk, under_zmk
        imported = with_hsm(cfg, lambda hsm: hsm.import_key(TMK_TYPE, zone_key, sent))
        tmk, kcv = imported.under_lmk, imported.kcv
        how = "imported under a ZMK"
        note = " (parity was even and has been corrected)" if imported.parity_forced else ""
    run(cfg, lambda store: store.load_tmk(terminal_id, tmk, kcv, at=now(), actor=actor(), how=how))
    told = tell_node(cfg)
    if as_json:
        click.echo(json.dumps({"id": terminal_id, "tmk_kcv": kcv, "how": how, "rekey_due": True,
                               "node_reloaded": told}, indent=2))
        return
    click.echo(f"{terminal_id}: TMK loaded, KCV {kcv}{note} ({how})")
    click.echo("check the KCV against the key sheet; the terminal's next 0800 is answered RK (key exchange)")
