"""Text for people: the canonical form behind the digest, ``routes show`` and the reload audit diff.

The canonical form keeps what changes routing and drops what does not: route order stays (it breaks ties)
and so does link order (it is the failover order), while the order of values inside one criterion, the
spelling of a one-value range (``"400000-400000"`` is ``"400000"``), comments and layout go.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Protocol

from switch.routing.model import Destination, Route


class TableView(Protocol):
    """What describing and comparing a routing table reads of it (switch.routing.table.RoutingTable)."""

    @property
    def source(self) -> str: ...

    @property
    def digest(self) -> str: ...

    @property
    def default(self) -> Destination | None: ...

    @property
    def destinations(self) -> Mapping[str, Destination]: ...

    @property
    def routes(self) -> tuple[Route, ...]: ...

# (attribute, label in describe()); the attribute name is also the key in the file and in diff lines.
_CRITERIA = (
    ("processing_codes", "processing codes"),
    ("mti_classes", "MTI classes"),
    ("source_links", "source links"),
    ("currencies", "currencies"),
)


def _sorted(values: Iterable[str] | None) -> list[str] | None:
    return None if values is None else sorted(values)


def _bin_texts(route: Route) -> list[str] | None:
    return None if route.bins is None else sorted(entry.text for entry in route.bins)


def canonical_form(
    default: Destination | None, destinations: Mapping[str, Destination], routes: Iterable[Route]
) -> dict[str, object]:
    return {
        "default": default.name if default is not None else None,
        "destinations": {name: _destination_form(d) for name, d in sorted(destinations.items())},
        "routes": [
            {
                "name": r.name,
                "bins": _bin_texts(r),
                "processing_codes": _sorted(r.processing_codes),
                "mti_classes": _sorted(r.mti_classes),
                "source_links": _sorted(r.source_links),
                "currencies": _sorted(r.currencies),
                "amount_min": r.amount_min,
                "amount_max": r.amount_max,
                "action": r.action,
                "destination": r.destination,
            }
            for r in routes
        ],
    }


def _destination_form(d: Destination) -> dict[str, object]:
    form: dict[str, object] = {"links": list(d.links), "strategy": d.strategy, "timeout_ms": d.timeout_ms}
    if d.stand_in is not None:
        # Only when set, so the digest of a table without stand-in is what it was before stand-in existed.
        s = d.stand_in
        form["stand_in"] = {"max_amount": s.max_amount, "mti": sorted(s.mtis),
                            "processing_codes": sorted(s.processing_codes), "currency": s.currency}
    return form


# -- describe ---------------------------------------------------------------------------------------
def _destination_text(d: Destination) -> str:
    timeout = f", timeout {d.timeout_ms} ms" if d.timeout_ms is not None else ""
    stand_in = f"; {d.stand_in.text()}" if d.stand_in is not None else ""
    return f"{d.strategy}: {', '.join(d.links)}{timeout}{stand_in}"


def _outcome(route: Route) -> str:
    return "reject (92)" if route.action == "reject" else f"-> {route.destination}"


def _amount(route: Route) -> str | None:
    if route.amount_min is None and route.amount_max is None:
        return None
    if route.amount_max is None:
        return f"{route.amount_min} or more (minor units)"
    if route.amount_min is None:
        return f"up to {route.amount_max} (minor units)"
    return f"{route.amount_min} to {route.amount_max} (minor units, inclusive)"


def describe(table: TableView) -> str:
    out = [f"routing table {table.source}", f"  sha256   {table.digest}"]
    if table.default is not None:
        out.append(f"  default  {table.default.name}")
    else:
        out.append("  default  none: requests no route matches are answered 92")
    out.append(f"destinations ({len(table.destinations)}):")
    width = max((len(name) for name in table.destinations), default=0)
    for name, destination in sorted(table.destinations.items()):
        out.append(f"  {name:<{width}}  {_destination_text(destination)}")
    out.append(f"routes ({len(table.routes)}; the longest BIN match wins, then the first listed):")
    for route in table.routes:
        where = f", line {route.line}" if route.line is not None else ""
        out.append(f"  routes[{route.position}] {route.name} {_outcome(route)}{where}")
        # As written in the file, so an operator finds each entry where they put it.
        bins = None if route.bins is None else ", ".join(entry.text for entry in route.bins)
        rows = [("bins", bins)]
        rows += [(label, _join(getattr(route, attr), sort=False)) for attr, label in _CRITERIA]
        rows.append(("amount", _amount(route)))
        set_rows = [(label, text) for label, text in rows if text is not None]
        for label, text in set_rows:
            out.append(f"      {label:<17} {text}")
        if not set_rows:
            out.append("      matches every request")
    return "\n".join(out) + "\n"


def _join(values: Iterable[str] | None, sort: bool = True) -> str | None:
    if values is None:
        return None
    return ", ".join(sorted(values) if sort else values)


# -- diff -------------------------------------------------------------------------------------------
def diff(old: TableView, new: TableView) -> list[str]:
    out: list[str] = []
    old_default = old.default.name if old.default else "none"
    new_default = new.default.name if new.default else "none"
    if old_default != new_default:
        out.append(f"default: {old_default} -> {new_default}")
    out += _destination_changes(old.destinations, new.destinations)
    out += _route_changes(old.routes, new.routes)
    return out


def _destination_changes(old: Mapping[str, Destination], new: Mapping[str, Destination]) -> list[str]:
    out: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before is None and after is not None:
            out.append(f"destination added: {name} ({_destination_text(after)})")
        elif after is None and before is not None:
            out.append(f"destination removed: {name}")
        elif before is not None and after is not None and before != after:
            change = f"{_destination_text(before)} -> {_destination_text(after)}"
            out.append(f"destination changed: {name}: {change}")
    return out


def _route_changes(old: tuple[Route, ...], new: tuple[Route, ...]) -> list[str]:
    out: list[str] = []
    before = {route.name: route for route in old}
    after = {route.name: route for route in new}
    for route in old:
        if route.name not in after:
            out.append(f"route removed: {route.name}")
    for route in new:
        if route.name not in before:
            out.append(f"route added: {route.name} at routes[{route.position}] ({_summary(route)})")
        else:
            changes = _changes(before[route.name], route)
            out += [f"route changed: {route.name}: {change}" for change in changes]
    out += _moves([r.name for r in old if r.name in after], [r.name for r in new if r.name in before])
    return out


def _moves(old_order: list[str], new_order: list[str]) -> list[str]:
    """Routes whose place among the routes kept changed; those outside the longest common subsequence
    moved (order decides ties, so a move can change routing)."""
    kept: set[str] = set()
    matcher = difflib.SequenceMatcher(a=old_order, b=new_order, autojunk=False)
    for block in matcher.get_matching_blocks():
        kept.update(old_order[block.a : block.a + block.size])
    out = []
    for i, name in enumerate(new_order):
        if name not in kept:
            after = f"after {new_order[i - 1]}" if i else "first"
            out.append(f"route moved: {name} now {after}")
    return out


def _summary(route: Route) -> str:
    parts = []
    bins = _bin_texts(route)
    if bins is not None:
        parts.append(f"bins {', '.join(bins)}")
    parts += [f"{attr} {_join(getattr(route, attr))}" for attr, _ in _CRITERIA if getattr(route, attr)]
    amount = _amount(route)
    if amount:
        parts.append(f"amount {amount}")
    parts.append(_outcome(route))
    return "; ".join(parts)


def _changes(old: Route, new: Route) -> list[str]:
    out: list[str] = []
    out += _set_change("bins", _bin_texts(old), _bin_texts(new))
    for attr, _ in _CRITERIA:
        out += _set_change(attr, _sorted(getattr(old, attr)), _sorted(getattr(new, attr)))
    for attr in ("amount_min", "amount_max", "action", "destination"):
        a, b = getattr(old, attr), getattr(new, attr)
        if a != b:
            out.append(f"{attr} {'none' if a is None else a} -> {'none' if b is None else b}")
    return out


def _set_change(key: str, old: list[str] | None, new: list[str] | None) -> list[str]:
    if old == new:
        return []
    if old is None or new is None:
        return [f"{key} {_any(old)} -> {_any(new)}"]
    old_set, new_set = set(old), set(new)
    added = [v for v in new if v not in old_set]
    removed = [v for v in old if v not in new_set]
    parts = ([f"+{', +'.join(added)}"] if added else []) + ([f"-{', -'.join(removed)}"] if removed else [])
    return [f"{key} {' '.join(parts)}"]


def _any(values: list[str] | None) -> str:
    return "any" if values is None else ", ".join(values)
