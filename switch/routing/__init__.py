"""Routing: an immutable table parsed from TOML, a pure match function, and the pool link selector.

Usage::

    table = load_routes(Path("conf/routes.toml"), known_links=node_links)
    decision = table.route(RouteQuery(pan, processing_code, mti, source_link, currency, amount))
    if decision.destination is None:      # reject, or no route and no default
        answer(decision.response_code)    # "92"
    else:
        link = selector.choose(decision.destination, is_up)

The file format is documented in ``conf/examples/routes.toml``.
"""

from switch.routing.model import (
    DEFAULT_ROUTE,
    NO_ROUTE_CODE,
    STAND_IN_MTIS,
    STRATEGIES,
    UNROUTED,
    BinEntry,
    Destination,
    Route,
    RouteDecision,
    RouteQuery,
    StandIn,
)
from switch.routing.parse import load_routes, parse_routes
from switch.routing.pool import PoolSelector
from switch.routing.table import RoutingTable

__all__ = [
    "DEFAULT_ROUTE",
    "NO_ROUTE_CODE",
    "STAND_IN_MTIS",
    "STRATEGIES",
    "UNROUTED",
    "BinEntry",
    "Destination",
    "PoolSelector",
    "Route",
    "RouteDecision",
    "RouteQuery",
    "RoutingTable",
    "StandIn",
    "load_routes",
    "parse_routes",
]
