"""Finding networks and sections: the ``bulkhead.schemes`` and ``bulkhead.sections`` entry-point groups.

Every network and section is registered through its entry-point group, the built-in ones included (setup.cfg),
so the engine imports none of them: adding a network touches ``schemes/<network>`` and the registry entry, not
the engine. A name registered twice (for two different objects) is an error, as is an entry point that does not
implement its contract.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from switch.contracts.network import Network
from switch.contracts.section import Section
from switch.model.errors import BulkheadError

NETWORKS = "bulkhead.schemes"
SECTIONS = "bulkhead.sections"


class RegistryError(BulkheadError):
    pass


def _load(group: str, kind: type) -> dict[str, object]:
    found: dict[str, object] = {}
    for ep in entry_points(group=group):
        obj = ep.load()
        if not isinstance(obj, kind):
            raise RegistryError(f"entry point {ep.name!r} in {group} is not a {kind.__name__}")
        existing = found.get(ep.name)
        if existing is not None and existing is not obj:
            raise RegistryError(f"{group}: name {ep.name!r} is registered twice")
        found[ep.name] = obj
    return found


@cache
def networks() -> dict[str, Network]:
    """Every registered network by name."""
    return {name: obj for name, obj in _load(NETWORKS, Network).items() if isinstance(obj, Network)}


@cache
def sections() -> dict[str, Section]:
    """Every registered node.toml section by table name."""
    return {name: obj for name, obj in _load(SECTIONS, Section).items() if isinstance(obj, Section)}


def network(name: str) -> Network:
    known = networks()
    try:
        return known[name]
    except KeyError:
        raise RegistryError(f"unknown network {name!r} (known: {', '.join(sorted(known))})") from None


def refresh() -> None:
    """Forget what was found (a test that registers an entry point of its own)."""
    networks.cache_clear()
    sections.cache_clear()
