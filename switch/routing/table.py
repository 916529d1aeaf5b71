"""The routing table: immutable, built once from validated routes, matched on the hot path.

Matching (DESIGN.md section 5): a route matches when every criterion it sets matches; among matching routes
the longest BIN match wins (a route without bins matches with length 0) and ties go to the route listed first.
No match gives the default destination, or 92 without one; a ``reject`` route gives 92.

:meth:`RoutingTable.route` never scans all routes: the BIN index (:mod:`switch.routing.bins`) yields only the
routes whose BINs match, already in winning order, and the first of those that passes its other criteria
is the answer. Only routes without bins are tried in a plain loop, after every BIN candidate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import NoReturn

from switch.routing import render
from switch.routing.bins import BinLevel, build_levels
from switch.routing.model import (
    DEFAULT_ROUTE,
    NO_ROUTE_CODE,
    UNROUTED,
    Destination,
    Route,
    RouteDecision,
    RouteQuery,
)


class _Matcher:
    """One route's non-BIN criteria in the form cheapest to test, and its precomputed decision."""

    __slots__ = ("codes", "currencies", "decision", "high", "low", "mti_classes", "sources")

    def __init__(self, route: Route, decision: RouteDecision) -> None:
        self.codes = route.processing_codes  # a tuple, so str.startswith tests every prefix in one call
        self.mti_classes = None if route.mti_classes is None else frozenset(route.mti_classes)
        self.sources = None if route.source_links is None else frozenset(route.source_links)
        self.currencies = None if route.currencies is None else frozenset(route.currencies)
        self.low = route.amount_min
        self.high = route.amount_max
        self.decision = decision

    def accepts(self, query: RouteQuery) -> bool:
        if self.codes is not None:
            code = query.processing_code
            if not code or not code.startswith(self.codes):
                return False
        if self.mti_classes is not None and query.mti[1:2] not in self.mti_classes:
            return False
        if self.sources is not None and query.source_link not in self.sources:
            return False
        if self.currencies is not None and query.currency not in self.currencies:
            return False
        if self.low is not None or self.high is not None:
            amount = query.amount
            if amount is None:
                return False
            if self.low is not None and amount < self.low:
                return False
            if self.high is not None and amount > self.high:
                return False
        return True


class RoutingTable:
    """A validated routing table. Build it with :func:`switch.routing.parse_routes` or ``load_routes``.

    Attributes: ``source`` (the file it came from), ``digest`` (hex SHA-256 of a canonical form: the same
    routing content gives the same digest whatever the layout, comments or order of keys and of values
    within a criterion), ``default``, ``destinations`` (read-only mapping by name) and ``routes`` (in file
    order). Instances cannot be modified.
    """

    __slots__ = ("_binless", "_fallback", "_levels", "default", "destinations", "digest", "routes", "source")

    source: str
    digest: str
    default: Destination | None
    destinations: Mapping[str, Destination]
    routes: tuple[Route, ...]
    _levels: tuple[BinLevel[_Matcher], ...]
    _binless: tuple[_Matcher, ...]
    _fallback: RouteDecision

    def __init__(
        self,
        source: str,
        default: Destination | None,
        destinations: Mapping[str, Destination],
        routes: tuple[Route, ...],
    ) -> None:
        init = object.__setattr__
        init(self, "source", source)
        init(self, "default", default)
        init(self, "destinations", MappingProxyType(dict(destinations)))
        init(self, "routes", routes)
        form = render.canonical_form(default, destinations, routes)
        init(self, "digest", hashlib.sha256(json.dumps(form, sort_keys=True, separators=(",", ":"))
                                            .encode()).hexdigest())
        matchers = [_Matcher(route, self._decision(route)) for route in routes]
        entries = [(entry, i) for i, route in enumerate(routes) for entry in route.bins or ()]
        init(self, "_levels", build_levels(entries, matchers))
        binless = tuple(m for m, route in zip(matchers, routes, strict=True) if route.bins is None)
        init(self, "_binless", binless)
        fallback = (
            RouteDecision(DEFAULT_ROUTE, default, None)
            if default is not None
            else RouteDecision(UNROUTED, None, NO_ROUTE_CODE)
        )
        init(self, "_fallback", fallback)

    def _decision(self, route: Route) -> RouteDecision:
        if route.action == "reject" or route.destination is None:
            return RouteDecision(route.name, None, NO_ROUTE_CODE)
        return RouteDecision(route.name, self.destinations[route.destination], None)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a RoutingTable cannot be changed; build a new one and swap it")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("a RoutingTable cannot be changed; build a new one and swap it")

    def __repr__(self) -> str:
        return f"<RoutingTable {self.source} routes={len(self.routes)} sha256={self.digest[:12]}>"

    # -- the hot path -------------------------------------------------------------------------------
    def route(self, query: RouteQuery) -> RouteDecision:
        """The decision for one request. Pure: same table and query, same answer."""
        pan = query.pan
        # Field 2 is numeric (ISO 8583 n..19); anything else matches no BIN rather than half of one.
        if pan and pan.isascii() and pan.isdigit():
            size = len(pan)
            for level in self._levels:
                if size >= level.length:
                    for matcher in level.lookup(pan):
                        if matcher.accepts(query):
                            return matcher.decision
        for matcher in self._binless:
            if matcher.accepts(query):
                return matcher.decision
        return self._fallback

    # -- for operators ------------------------------------------------------------------------------
    def describe(self) -> str:
        """A human-readable listing (``bulkhead routes show``)."""
        return render.describe(self)

    def diff(self, other: RoutingTable) -> list[str]:
        """The changes from this table to ``other``, one line each (empty when they route the same)."""
        return render.diff(self, other)

    def link_names(self) -> frozenset[str]:
        """Every link the table names: the links of its destinations and the routes' ``source_links``."""
        names = {link for destination in self.destinations.values() for link in destination.links}
        for route in self.routes:
            names.update(route.source_links or ())
        return frozenset(names)

    def destination_links(self) -> frozenset[str]:
        """Only the links requests can be sent to (those of the destinations)."""
        return frozenset(link for destination in self.destinations.values() for link in destination.links)
