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


def _load(group: str, kind: type, name: str | None = None) -> dict[str, object]:
    found: dict[str, object] = {}
    for ep in entry_points(group=group) if name is None else entry_points(group=group, name=name):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in names itself rather than ending in a traceback
            raise RegistryError(f"entry point {ep.name!r} in {group} ({ep.value}) cannot be loaded: "
                                f"{type(exc).__name__}: {exc}") from exc
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
def section_names() -> frozenset[str]:
    """The table names sections are registered for (nothing is imported to tell)."""
    return frozenset(ep.name for ep in entry_points(group=SECTIONS))


@cache
def section(name: str) -> Section:
    """The section registered for table ``name``, imported only now: a node imports only the sections its
    node.toml has (the demo's simulators are not loaded by a node without ``[[simulators]]``)."""
    found = _load(SECTIONS, Section, name)
    obj = found.get(name)
    if not isinstance(obj, Section):
        raise RegistryError(f"no section is registered for [{name}]")
    return obj


def network(name: str) -> Network:
    known = networks()
    try:
        return known[name]
    except KeyError:
        raise RegistryError(f"unknown network {name!r} (known: {', '.join(sorted(known))})") from None


def refresh() -> None:
    """Forget what was found (a test that registers an entry point of its own)."""
    networks.cache_clear()
    section_names.cache_clear()
    section.cache_clear()
