"""Reading a routing table from TOML, with errors that name the file, the line and the dotted key.

The file format is documented option by option in ``conf/examples/routes.toml``. Validation stops at the first
problem and raises :class:`switch.model.errors.ConfigError`; nothing is built from a bad file, so a reload that
fails leaves the node on its old table. Errors about BIN entries never repeat the value: a mistyped entry
could be a card number.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import NoReturn, TypeVar

from switch.model.errors import ConfigError
from switch.model.tomlkeys import KeyLines, dotted, locate_keys
from switch.model.tomlkeys import Path as KeyPath
from switch.routing.bins import first_overlap
from switch.routing.model import (
    ACTIONS,
    STAND_IN_MTIS,
    STRATEGIES,
    Action,
    BinEntry,
    Destination,
    Route,
    StandIn,
    Strategy,
)
from switch.routing.table import RoutingTable

TOP_KEYS = ("default", "destinations", "routes")
DESTINATION_KEYS = ("links", "strategy", "timeout_ms", "stand_in")
STAND_IN_KEYS = ("max_amount", "mti", "processing_codes", "currency")
ROUTE_KEYS = (
    "name", "bins", "processing_codes", "mti_classes", "source_links", "currencies",
    "amount_min", "amount_max", "destination", "action",
)

# Issuer BINs are 6 or 8 digits and scheme account-range tables go a few digits further; a PAN is at least
# 12 digits (Maestro; ISO/IEC 7812 allows 8 to 19 but card schemes issue 12 and up). Refusing 12 or more
# keeps whole card numbers out of a file that `bulkhead routes show` prints.
MAX_BIN_DIGITS = 11
MAX_PROCESSING_CODE_DIGITS = 6  # field 3: transaction type (2), from account (2), to account (2)
MAX_TIMEOUT_MS = 600_000
MAX_AMOUNT = 999_999_999_999  # field 4 is n12 (ISO 8583:1987)
# ISO 8583:1987 message classes (second MTI digit); 0 and 9 are reserved for ISO use.
MTI_CLASSES = ("1", "2", "3", "4", "5", "6", "7", "8")

_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DESTINATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_LINK_NAME = re.compile(r"[^\s\x00-\x1f]{1,64}")
_BIN = re.compile(r"([0-9]+)(?:-([0-9]+))?")

T = TypeVar("T")


def load_routes(path: Path, known_links: Collection[str] | None = None) -> RoutingTable:
    """Read, parse and validate the routing table in ``path``; its ``source`` is ``str(path)``."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text (byte {exc.start})") from exc
    return parse_routes(text, str(path), known_links)


def parse_routes(
    text: str, source: str = "<string>", known_links: Collection[str] | None = None
) -> RoutingTable:
    """Parse and validate a routing table. With ``known_links``, every link it names must be one of them."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"invalid TOML: {exc}", _syntax_error_line(str(exc), text)) from exc
    checker = _Checker(source, locate_keys(text), None if known_links is None else frozenset(known_links))
    return checker.table(data)


def _syntax_error_line(message: str, text: str) -> int | None:
    """tomllib puts "(at line L, column C)" or "(at end of document)" in its messages."""
    found = re.search(r"at line (\d+)", message)
    if found:
        return int(found[1])
    if "end of document" in message:
        return text.count("\n") + (0 if text.endswith("\n") else 1)
    return None


def _kind(value: object) -> str:
    """The TOML name of a value's type, for "expected X, got Y"."""
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
        (dict, "table"), ((datetime, date, time), "date/time"),
    )
    return next((name for cls, name in kinds if isinstance(value, cls)), type(value).__name__)


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f' (did you mean "{close[0]}"?)'
    return f" (expected one of: {', '.join(choices)})" if len(choices) <= 12 else ""


class _Checker:
    """Validates the parsed TOML document key by key; every failure goes through :meth:`fail`."""

    def __init__(self, source: str, where: KeyLines, known_links: frozenset[str] | None) -> None:
        self.source = source
        self.where = where
        self.known_links = known_links

    def fail(self, path: KeyPath, reason: str) -> NoReturn:
        raise ConfigError(self.source, dotted(path), reason, self.where.line(path))

    # -- the document -----------------------------------------------------------------------------
    def table(self, data: Mapping[str, object]) -> RoutingTable:
        self.keys(data, (), TOP_KEYS)
        raw_destinations = data.get("destinations", {})
        if not isinstance(raw_destinations, dict):
            got = _kind(raw_destinations)
            self.fail(("destinations",), f"expected tables [destinations.NAME], got {got}")
        destinations = {name: self.destination(name, raw) for name, raw in raw_destinations.items()}
        default = None
        if "default" in data:
            default = destinations[self.destination_ref(data["default"], ("default",), destinations)]
        raw_routes = data.get("routes", [])
        if not isinstance(raw_routes, list):
            self.fail(("routes",), f"expected an array of tables ([[routes]]), got {_kind(raw_routes)}")
        routes: list[Route] = []
        names: dict[str, int] = {}
        for position, raw in enumerate(raw_routes):
            routes.append(self.route(position, raw, destinations, names))
            names[routes[-1].name] = position
        self.check_ambiguous(routes)
        return RoutingTable(self.source, default, destinations, tuple(routes))

    def keys(self, table: Mapping[str, object], path: KeyPath, allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                self.fail((*path, key), f'unknown key "{key}"{_suggest(key, allowed)}')

    # -- scalars and lists ------------------------------------------------------------------------
    def string(self, value: object, path: KeyPath, what: str = "a string") -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected {what}, got {_kind(value)}")
        return value

    def integer(self, value: object, path: KeyPath, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_kind(value)}")
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            self.fail(path, f"must be {bounds}, not {value}")
        return value

    def strings(self, value: object, path: KeyPath, what: str) -> list[str]:
        """A non-empty array of distinct strings."""
        if not isinstance(value, list):
            self.fail(path, f"expected an array of {what}, got {_kind(value)}")
        if not value:
            self.fail(path, "must not be empty (leave the key out to match any value)")
        items = [self.string(item, (*path, i), what) for i, item in enumerate(value)]
        self.no_duplicates(items, path)
        return items

    def no_duplicates(self, items: Sequence[object], path: KeyPath) -> None:
        first: dict[object, int] = {}
        for i, item in enumerate(items):
            if item in first:
                self.fail((*path, i), f"duplicate of {dotted((*path, first[item]))}")
            first[item] = i

    def digit_codes(self, value: object, path: KeyPath, what: str, sizes: range) -> tuple[str, ...]:
        items = self.strings(value, path, f"{what} strings")
        for i, item in enumerate(items):
            if not (item.isascii() and item.isdigit() and len(item) in sizes):
                size = f"{sizes.start}" if len(sizes) == 1 else f"{sizes.start} to {sizes.stop - 1}"
                self.fail((*path, i), f"{what} must be {size} digits, not {item!r}")
        return tuple(items)

    def link_names(self, value: object, path: KeyPath) -> tuple[str, ...]:
        items = self.strings(value, path, "link names")
        for i, item in enumerate(items):
            if not _LINK_NAME.fullmatch(item):
                self.fail((*path, i), f"link name {item!r} must be 1 to 64 characters without spaces")
            if self.known_links is not None and item not in self.known_links:
                self.fail((*path, i), f'unknown link "{item}"{_suggest(item, sorted(self.known_links))}')
        return tuple(items)

    # -- destinations -----------------------------------------------------------------------------
    def destination(self, name: str, raw: object) -> Destination:
        path: KeyPath = ("destinations", name)
        if not _DESTINATION_NAME.fullmatch(name):
            self.fail(path, "destination names are 1 to 64 letters, digits, '_' or '-'")
        if not isinstance(raw, dict):
            self.fail(path, f"expected a table, got {_kind(raw)}")
        self.keys(raw, path, DESTINATION_KEYS)
        if "links" not in raw:
            self.fail(path, 'missing key "links"')
        links = self.link_names(raw["links"], (*path, "links"))
        strategy = self.strategy(raw.get("strategy"), (*path, "strategy"), len(links))
        timeout = None
        if "timeout_ms" in raw:
            timeout = self.integer(raw["timeout_ms"], (*path, "timeout_ms"), 1, MAX_TIMEOUT_MS)
        stand_in = self.stand_in(raw["stand_in"], (*path, "stand_in")) if "stand_in" in raw else None
        return Destination(name, links, strategy, timeout, stand_in)

    def stand_in(self, raw: object, path: KeyPath) -> StandIn:
        """Every key is required: a policy that approves money on the issuer's behalf is spelled out."""
        if not isinstance(raw, dict):
            self.fail(path, f"expected a table (stand_in = {{ max_amount = ..., ... }}), got {_kind(raw)}")
        self.keys(raw, path, STAND_IN_KEYS)
        for key in STAND_IN_KEYS:
            if key not in raw:
                self.fail(path, f'missing key "{key}"')
        mtis = self.strings(raw["mti"], (*path, "mti"), "MTI strings")
        for i, mti in enumerate(mtis):
            if mti not in STAND_IN_MTIS:
                self.fail((*path, "mti", i), f"stand-in applies to {' and '.join(STAND_IN_MTIS)} (the requests an "
                                             f"advice can report), not {mti!r}")
        codes = self.digit_codes(raw["processing_codes"], (*path, "processing_codes"),
                                 "transaction type (field 3, first two digits)", range(2, 3))
        currency = self.string(raw["currency"], (*path, "currency"), 'an ISO 4217 numeric code such as "840"')
        if not (len(currency) == 3 and currency.isascii() and currency.isdigit()):
            self.fail((*path, "currency"), f"currency (ISO 4217 numeric) must be 3 digits, not {currency!r}")
        # Minor units of ``currency``, as field 4 carries them; 0 would approve nothing but free requests.
        amount = self.integer(raw["max_amount"], (*path, "max_amount"), 1, MAX_AMOUNT)
        return StandIn(amount, tuple(mtis), codes, currency)

    def strategy(self, value: object, path: KeyPath, links: int) -> Strategy:
        if value is None:
            if links > 1:
                self.fail(path[:-1], 'a destination with several links needs strategy = "primary_secondary" '
                                     'or "round_robin"')
            return "single"
        text = self.string(value, path)
        for strategy in STRATEGIES:
            if text == strategy:
                if strategy == "single" and links > 1:
                    self.fail(path, f'"single" takes one link, this destination has {links}')
                return strategy
        self.fail(path, f'unknown strategy "{text}"{_suggest(text, STRATEGIES)}')

    def destination_ref(self, value: object, path: KeyPath, destinations: Mapping[str, Destination]) -> str:
        name = self.string(value, path, "a destination name")
        if name not in destinations:
            self.fail(path, f'unknown destination "{name}"{_suggest(name, sorted(destinations))}')
        return name

    # -- routes -----------------------------------------------------------------------------------
    def route(
        self, position: int, raw: object, destinations: Mapping[str, Destination], names: Mapping[str, int]
    ) -> Route:
        path: KeyPath = ("routes", position)
        if not isinstance(raw, dict):
            self.fail(path, f"expected a table ([[routes]]), got {_kind(raw)}")
        self.keys(raw, path, ROUTE_KEYS)
        name = self.route_name(raw, path, names)

        def read(key: str, reader: Callable[[object, KeyPath], T]) -> T | None:
            return reader(raw[key], (*path, key)) if key in raw else None

        bins = read("bins", self.bins)
        codes = read("processing_codes", self.processing_codes)
        classes = read("mti_classes", self.mti_classes)
        sources = read("source_links", self.link_names)
        currencies = read("currencies", self.currencies)
        low = read("amount_min", self.amount)
        high = read("amount_max", self.amount)
        if low is not None and high is not None and low > high:
            self.fail((*path, "amount_min"), f"amount_min {low} is above amount_max {high}")
        action, destination = self.outcome(raw, path, destinations)
        return Route(name, bins, codes, classes, sources, currencies, low, high, action, destination,
                     position, self.where.line(path))

    def route_name(self, raw: Mapping[str, object], path: KeyPath, names: Mapping[str, int]) -> str:
        if "name" not in raw:
            self.fail(path, 'missing key "name"')
        name = self.string(raw["name"], (*path, "name"))
        if not _ROUTE_NAME.fullmatch(name):
            self.fail((*path, "name"), "route names are 1 to 64 letters, digits, '_', '.' or '-'")
        if name in names:
            self.fail((*path, "name"), f'duplicate route name "{name}" (also routes[{names[name]}])')
        return name

    def bins(self, value: object, path: KeyPath) -> tuple[BinEntry, ...]:
        if not isinstance(value, list):
            self.fail(path, f"expected an array of BIN strings, got {_kind(value)}")
        if not value:
            self.fail(path, "must not be empty (leave the key out to match any card)")
        entries = tuple(self.bin_entry(item, (*path, i)) for i, item in enumerate(value))
        self.no_duplicates([entry.text for entry in entries], path)
        return entries

    def bin_entry(self, value: object, path: KeyPath) -> BinEntry:
        text = self.string(value, path, 'a BIN string such as "476173" or "400000-400999"')
        found = _BIN.fullmatch(text)
        if not found:
            self.fail(path, 'must be digits ("476173") or a range of two equal-length bounds '
                            '("400000-400999")')
        low, high = found[1], found[2] or found[1]
        if len(low) != len(high):
            self.fail(path, f"range bounds must have the same length (here {len(low)} and {len(high)})")
        if len(low) > MAX_BIN_DIGITS:
            self.fail(path, f"is {len(low)} digits long; BIN prefixes and ranges have at most "
                            f"{MAX_BIN_DIGITS} (a longer value could be a card number)")
        if low > high:
            self.fail(path, "range low bound is above its high bound")
        return BinEntry(low, high)

    def processing_codes(self, value: object, path: KeyPath) -> tuple[str, ...]:
        # Prefixes of field 3, usually its two-digit transaction type ("01" cash, "30" balance inquiry).
        return self.digit_codes(value, path, "processing code", range(1, MAX_PROCESSING_CODE_DIGITS + 1))

    def currencies(self, value: object, path: KeyPath) -> tuple[str, ...]:
        return self.digit_codes(value, path, "currency (ISO 4217 numeric)", range(3, 4))

    def amount(self, value: object, path: KeyPath) -> int:
        return self.integer(value, path, 0)  # minor units of field 49's currency, as field 4 carries them

    def mti_classes(self, value: object, path: KeyPath) -> tuple[str, ...]:
        items = self.strings(value, path, "MTI class strings")
        for i, item in enumerate(items):
            if item not in MTI_CLASSES:
                self.fail((*path, i), f"MTI class must be one digit from 1 to 8 (the second MTI digit, "
                                      f'e.g. "2" for 0200), not {item!r}')
        return tuple(items)

    def outcome(
        self, raw: Mapping[str, object], path: KeyPath, destinations: Mapping[str, Destination]
    ) -> tuple[Action, str | None]:
        action: Action = "forward"
        if "action" in raw:
            text = self.string(raw["action"], (*path, "action"))
            if text not in ACTIONS:
                self.fail((*path, "action"), f'unknown action "{text}"{_suggest(text, ACTIONS)}')
            action = "reject" if text == "reject" else "forward"
        if action == "reject":
            if "destination" in raw:
                self.fail((*path, "destination"), 'a route with action = "reject" takes no destination')
            return action, None
        if "destination" not in raw:
            self.fail(path, 'route needs a destination, or action = "reject"')
        return action, self.destination_ref(raw["destination"], (*path, "destination"), destinations)

    def check_ambiguous(self, routes: Sequence[Route]) -> None:
        """Refuse two routes with the same criteria that both claim the same cards: the later one could never
        be chosen there, which is always a mistake in the file."""
        groups: dict[tuple[object, ...], list[tuple[BinEntry, int, int]]] = defaultdict(list)
        binless: dict[tuple[object, ...], Route] = {}
        for route in routes:
            key = route.criteria_key()
            if route.bins is None:
                if key in binless:
                    self.fail(("routes", route.position), f'no bins and the same criteria as routes'
                              f'[{binless[key].position}] "{binless[key].name}": it could never be chosen')
                binless[key] = route
                continue
            groups[key].extend((entry, route.position, i) for i, entry in enumerate(route.bins))
        found = [overlap for group in groups.values() if (overlap := first_overlap(group))]
        if found:
            later, index, earlier, other = min(found)
            self.fail(("routes", later, "bins", index),
                      f'overlaps routes[{earlier}].bins[{other}] of route "{routes[earlier].name}" with '
                      "identical criteria: this route would never be chosen for those cards")
