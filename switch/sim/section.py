"""The demo's ``[[simulators]]`` in node.toml: issuer simulators the node runs beside itself.

A section (switch.contracts.section) registered as ``simulators``: the node starts each simulator in its primary
process before opening its links, and the demo's connectors point at them. For demos and tests only: production
nodes have no such table, and nothing the node runs imports this module (the registry finds it when a node.toml
has the table).

    [[simulators]]
    name = "issuer-sim"      # a name for logs and the banner
    host = "127.0.0.1"
    port = 9583              # 0: any free port
    scheme = "generic"       # the network it speaks, with its framing and options tables
    rules = "issuer-rules.toml"
    # A card network's simulator can also originate towards the bank down the connection the bank's connector
    # opened (switch.sim.originate; every key optional but cards; rate = 0 or no table: it only answers):
    originate = { rate = 0.2, cards = ["4761730010000019"], amount = 100, mti = "0200", reversal_every = 3,
                  partial_amount = 40, repeat_every = 0, stip_every = 5, stip_reason = "9020", pin = "1234",
                  zpk = "U..." }
    reject_code = "0001"     # a malformed message goes back in the network's reject form (default: per network;
                             # a network without one, Mastercard or American Express, answers a request 30)
    # A card network's simulator can exchange zone keys with the bank (switch.sim.simkeys; demo only: the software
    # HSM under the public test LMK): the zone master key it shares with the bank's connector, a key change of its
    # own every key_every seconds, and the network's link options as on the bank's connector (its key-exchange
    # codes, UnionPay's nk_check_value_bytes):
    zmk = "U..."
    key_every = 600
    options = { nk_check_value_bytes = 3 }
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from switch.config.links import network_of
from switch.contracts.network import LinkOptions
from switch.contracts.section import LinkRequest, NodeContext, Service, TaskStatus
from switch.model.errors import ConfigError
from switch.model.toml import TomlTable
from switch.sim.issuer import REJECT_CODES, IssuerConfig, serve_issuer
from switch.sim.originate import OriginateConfig
from switch.sim.rules import IssuerRules, load_rules
from switch.sim.simkeys import zmk_problem

# The ISO 8583:1987 hosts of the bank's own: a simulated one skips a malformed message (the issuer simulator's way); a
# card network's simulator answers it as its network refuses one.
_HOSTS = frozenset({"generic", "generic-ascii", "atm"})


@dataclass(frozen=True)
class SimulatorConfig:
    name: str
    host: str
    port: int
    scheme: str
    framing: LinkOptions
    rules: Path | None = None
    originate: OriginateConfig | None = None
    reject_code: str | None = None
    zmk: str | None = None
    key_every_s: float = 0.0


class IssuerSimulators:
    """The node's demo issuers, as one service."""

    what = "simulator"

    def __init__(self, simulators: Sequence[SimulatorConfig]) -> None:
        # Rules files are read now, so a broken one stops the node at start with its file, key and reason.
        self._configs = [IssuerConfig(host=sim.host, port=sim.port, scheme=sim.scheme, framing=sim.framing,
                                      rules=load_rules(sim.rules) if sim.rules is not None else IssuerRules(),
                                      originate=sim.originate, reject_code=sim.reject_code,
                                      refuse=sim.scheme not in _HOSTS, zmk=sim.zmk,
                                      key_every_s=sim.key_every_s)
                         for sim in simulators]
        self._originating = {sim.name: sim.originate for sim in simulators if sim.originate is not None}
        self._names = [sim.name for sim in simulators]
        self.ports: dict[str, int] = {}

    async def run(self, *, task_status: TaskStatus) -> None:
        async with trio.open_nursery() as nursery:
            for name, config in zip(self._names, self._configs, strict=True):
                self.ports[name] = await nursery.start(serve_issuer, config)
            task_status.started()

    def status(self) -> list[dict[str, Any]]:
        return []  # simulators run inside the node: no process of their own

    def describe(self) -> list[str]:
        return [f"  simulator {name:<12} 127.0.0.1:{port}  (demo issuer{self._originates(name)})"
                for name, port in self.ports.items()]

    def _originates(self, name: str) -> str:
        cfg = self._originating.get(name)
        return "" if cfg is None else f"; originates {cfg.mti} at {cfg.rate:g}/s for {len(cfg.cards)} card(s)"

    def terminate(self) -> None:
        pass  # cancelled with the node's services


@dataclass(frozen=True)
class Simulators:
    items: tuple[SimulatorConfig, ...]

    def links(self) -> Sequence[LinkRequest]:
        return ()

    def services(self) -> Sequence[Service]:
        return (IssuerSimulators(self.items),) if self.items else ()


class SimulatorsSection:
    name = "simulators"
    array = True

    def parse(self, tables: Sequence[TomlTable], node: NodeContext) -> Simulators:
        items = tuple(_simulator(t, node.base) for t in tables)
        names: set[str] = set()
        for i, sim in enumerate(items):
            if sim.name in node.link_names or sim.name in names:
                raise ConfigError(str(node.file), f"simulators[{i}].name", f"name {sim.name!r} is already used")
            names.add(sim.name)
        taken = {(host, port): key for host, port, key in node.listener_ports if port}
        for i, sim in enumerate(items):
            if sim.port and (sim.host, sim.port) in taken:
                used_by = taken[sim.host, sim.port].rsplit(".", 1)[0]
                raise ConfigError(str(node.file), f"simulators[{i}].port",
                                  f"{sim.host}:{sim.port} is already used by {used_by}")
            taken[sim.host, sim.port] = f"simulators[{i}].port"
        return Simulators(items)


SECTION = SimulatorsSection()


def _simulator(t: TomlTable, base: Path) -> SimulatorConfig:
    rules = t.get("rules", str, None)
    name = t.get("name", str, required=True)
    host = t.get("host", str, "127.0.0.1")
    port = t.port()
    scheme, network = network_of(t)
    t.used.add("framing")
    raw = t.data.get("framing")
    framing = TomlTable({"kind": raw} if isinstance(raw, str) else raw, t.file, t.key("framing")) \
        if raw is not None else None
    if raw is not None and not isinstance(raw, (str, dict)):
        raise t.error("framing", "expected a table or a framing name")
    # The network's link options, as on the bank's connector: the codes and key form of its key exchanges.
    options = t.table("options")
    link = network.link_options(framing, options)
    if framing is not None:
        framing.done()
    zmk = t.get("zmk", str, None)
    problem = zmk_problem(zmk) if zmk is not None else None
    if problem is not None:
        raise t.error("zmk", problem)
    key_every = t.non_negative_number("key_every", 0.0)
    if key_every and zmk is None:
        raise t.error("key_every", "a key change of the simulator's own needs its zmk")
    reject = t.get("reject_code", str, REJECT_CODES.get(scheme))
    cfg = SimulatorConfig(name=name, host=host, port=port, scheme=scheme, framing=link,
                          rules=t.path(rules, base) if rules else None, originate=_originate(t), reject_code=reject,
                          zmk=zmk, key_every_s=key_every)
    t.done()
    return cfg


_ORIGINATE_INTS = ("amount", "reversal_every", "repeat_every", "stip_every")


def _originate(t: TomlTable) -> OriginateConfig | None:
    """The ``originate`` table: None when absent or its rate is 0."""
    table = t.table("originate")
    if table is None:
        return None
    rate = table.non_negative_number("rate", 0.0)
    cards = table.get("cards", list, required=True)
    if not cards or not all(isinstance(c, str) for c in cards):
        raise table.error("cards", "expected a list of card numbers (text)")
    every = {name: table.integer(name, 0, high=10**6) for name in _ORIGINATE_INTS[1:]}
    partial = table.optional_integer("partial_amount", None, low=1, high=10**12 - 1)
    try:
        cfg = OriginateConfig(
            cards=tuple(cards), rate=rate, mti=table.get("mti", str, "0200"),
            currency=table.get("currency", str, "840"), stip_reason=table.get("stip_reason", str, "9020"),
            stip_repeat=table.get("stip_repeat", bool, False), pin=table.get("pin", str, None),
            zpk=table.get("zpk", str, None), amount=table.integer("amount", 1000, high=10**12 - 1),
            reversal_every=every["reversal_every"], partial_amount=partial, repeat_every=every["repeat_every"],
            stip_every=every["stip_every"])
    except ValueError as exc:
        raise t.error("originate", str(exc).removeprefix("originate: ")) from None
    table.done()
    return cfg if rate > 0 else None
