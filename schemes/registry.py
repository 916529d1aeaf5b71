"""Scheme registry: built-ins plus the ``bulkhead.schemes`` entry-point group; a duplicate name is an error."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from schemes.base import SchemeAdapter
from switch.model.errors import BulkheadError

ENTRY_POINT_GROUP = "bulkhead.schemes"


class SchemeRegistryError(BulkheadError):
    pass


def _builtins() -> dict[str, SchemeAdapter]:
    from schemes import atm, generic

    return {s.name: s for s in (generic.SCHEME, generic.SCHEME_ASCII, atm.SCHEME)}


@cache
def registry() -> dict[str, SchemeAdapter]:
    found = _builtins()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        adapter = ep.load()
        if not isinstance(adapter, SchemeAdapter):
            raise SchemeRegistryError(f"entry point {ep.name!r} is not a SchemeAdapter")
        existing = found.get(ep.name)
        if existing is not None and existing is not adapter:
            raise SchemeRegistryError(f"scheme name {ep.name!r} is registered twice")
        found[ep.name] = adapter
    return found


def get_scheme(name: str) -> SchemeAdapter:
    schemes = registry()
    try:
        return schemes[name]
    except KeyError:
        raise SchemeRegistryError(
            f"unknown scheme {name!r} (known: {', '.join(sorted(schemes))})"
        ) from None
