"""Reading a routing table from TOML, with errors that name the file, the line and the dotted key.

The file format is documented option by option in ``conf/examples/routes.toml``. Validation goes on past a
problem and reports every one it finds (:class:`switch.model.errors.ConfigErrors`, one
:class:`~switch.model.errors.ConfigError` each), so an operator fixes a file in one pass; a problem that only
follows from another (a route naming a destination that is itself broken) is not reported twice. A TOML syntax
error stops the parse: :mod:`tomllib` reports the first only. Nothing is built from a bad file, so a reload that
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

from switch.model.errors import ConfigError, ConfigErrors
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


class _Reported(Exception):
    """A part of the file is broken and its problem is already in the checker's list: skip the part."""


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
        self.errors: list[ConfigError] = []
        self.marks = 0  # problems met so far: reported ones and parts skipped for an already reported one
        self.declared: frozenset[str] = frozenset()  # destination names in the file, valid or not

    def fail(self, path: KeyPath, reason: str) -> NoReturn:
        raise ConfigError(self.source, dotted(path), reason, self.where.line(path))

    def report(self, path: KeyPath, reason: str) -> None:
        """A problem that does not stop the part being checked."""
        self.errors.append(ConfigError(self.source, dotted(path), reason, self.where.line(path)))
        self.marks += 1

    def attempt(self, read: Callable[[], T]) -> T | None:
        """``read()``, or None once its problem is in :attr:`errors`: the check goes on with the next part."""
        try:
            return read()
        except ConfigError as exc:
            self.errors.append(exc)
        except _Reported:
            pass
        self.marks += 1
        return None

    def whole(self, start: int) -> None:
        """Raise :class:`_Reported` if problems were met since :attr:`marks` was ``start``: a part with a broken
        piece is not built."""
        if self.marks > start:
            raise _Reported

    # -- the document -----------------------------------------------------------------------------
    def table(self, data: Mapping[str, object]) -> RoutingTable:
        self.keys(data, (), TOP_KEYS)
        raw_destinations = data.get("destinations", {})
        if not isinstance(raw_destinations, dict):
            got = _kind(raw_destinations)
            self.report(("destinations",), f"expected tables [destinations.NAME], got {got}")
            raw_destinations = {}
        self.declared = frozenset(raw_destinations)
        destinations: dict[str, Destination] = {}
        for name, raw in raw_destinations.items():
            destination = self.attempt(lambda: self.destination(name, raw))  # noqa: B023 (called at once)
            if destination is not None:
                destinations[name] = destination
        default = None
        if "default" in data:
            ref = self.attempt(lambda: self.destination_ref(data["default"], ("default",), destinations))
            default = None if ref is None else destinations[ref]
        raw_routes = data.get("routes", [])
        if not isinstance(raw_routes, list):
            got = _kind(raw_routes)
            self.report(("routes",), f"expected an array of tables ([[routes]]), got {got}")
            raw_routes = []
        routes: list[Route] = []
        names: dict[str, int] = {}
        for position, raw in enumerate(raw_routes):
            route = self.attempt(lambda: self.route(position, raw, destinations, names))  # noqa: B023
            if route is not None:
                routes.append(route)
        self.check_ambiguous(routes)
        if self.errors:
            raise ConfigErrors(self.errors)
        return RoutingTable(self.source, default, destinations, tuple(routes))

    def keys(self, table: Mapping[str, object], path: KeyPath, allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                self.report((*path, key), f'unknown key "{key}"{_suggest(key, allowed)}')

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
        start = self.marks
        items = [self.attempt(lambda: self.string(item, (*path, i), what)) for i, item in enumerate(value)]  # noqa: B023
        self.no_duplicates(items, path)
        self.whole(start)
        return [item for item in items if item is not None]

    def no_duplicates(self, items: Sequence[object], path: KeyPath) -> None:
        """Each duplicate is a problem of its own (``None``: an item already reported, skipped)."""
        first: dict[object, int] = {}
        for i, item in enumerate(items):
            if item is None:
                continue
            if item in first:
                self.report((*path, i), f"duplicate of {dotted((*path, first[item]))}")
            else:
                first[item] = i

    def each(self, items: Sequence[str], check: Callable[[int, str], None]) -> None:
        """``check(i, item)`` for every item, each problem reported; then :class:`_Reported` if any."""
        start = self.marks
        for i, item in enumerate(items):
            self.attempt(lambda: check(i, item))  # noqa: B023
        self.whole(start)

    def digit_codes(self, value: object, path: KeyPath, what: str, sizes: range) -> tuple[str, ...]:
        items = self.strings(value, path, f"{what} strings")

        def check(i: int, item: str) -> None:
            if not (item.isascii() and item.isdigit() and len(item) in sizes):
                size = f"{sizes.start}" if len(sizes) == 1 else f"{sizes.start} to {sizes.stop - 1}"
                self.fail((*path, i), f"{what} must be {size} digits, not {item!r}")

        self.each(items, check)
        return tuple(items)

    def link_names(self, value: object, path: KeyPath) -> tuple[str, ...]:
        items = self.strings(value, path, "link names")

        def check(i: int, item: str) -> None:
            if not _LINK_NAME.fullmatch(item):
                self.fail((*path, i), f"link name {item!r} must be 1 to 64 characters without spaces")
            if self.known_links is not None and item not in self.known_links:
                self.fail((*path, i), f'unknown link "{item}"{_suggest(item, sorted(self.known_links))}')

        self.each(items, check)
        return tuple(items)

    # -- destinations -----------------------------------------------------------------------------
    def destination(self, name: str, raw: object) -> Destination:
        path: KeyPath = ("destinations", name)
        if not _DESTINATION_NAME.fullmatch(name):
            self.fail(path, "destination names are 1 to 64 letters, digits, '_' or '-'")
        if not isinstance(raw, dict):
            self.fail(path, f"expected a table, got {_kind(raw)}")
        start = self.marks
        self.keys(raw, path, DESTINATION_KEYS)
        if "links" not in raw:
            self.fail(path, 'missing key "links"')
        links = self.attempt(lambda: self.link_names(raw["links"], (*path, "links")))
        # The strategy is checked against the links' count only when the links are sound.
        strategy = self.attempt(lambda: self.strategy(raw.get("strategy"), (*path, "strategy"),
                                                      len(links) if links is not None else 1))
        timeout = None
        if "timeout_ms" in raw:
            timeout = self.attempt(lambda: self.integer(raw["timeout_ms"], (*path, "timeout_ms"), 1, MAX_TIMEOUT_MS))
        stand_in = self.attempt(lambda: self.stand_in(raw["stand_in"], (*path, "stand_in"))) if "stand_in" in raw \
            else None
        self.whole(start)
        assert links is not None and strategy is not None
        return Destination(name, links, strategy, timeout, stand_in)

    def stand_in(self, raw: object, path: KeyPath) -> StandIn:
        """Every key is required: a policy that approves money on the issuer's behalf is spelled out."""
        if not isinstance(raw, dict):
            self.fail(path, f"expected a table (stand_in = {{ max_amount = ..., ... }}), got {_kind(raw)}")
        start = self.marks
        self.keys(raw, path, STAND_IN_KEYS)
        for key in STAND_IN_KEYS:
            if key not in raw:
                self.report(path, f'missing key "{key}"')
        self.whole(start)

        def mti_check(i: int, mti: str) -> None:
            if mti not in STAND_IN_MTIS:
                self.fail((*path, "mti", i), f"stand-in applies to {' and '.join(STAND_IN_MTIS)} (the requests an "
                                             f"advice can report), not {mti!r}")

        def mti_list() -> list[str]:
            mtis = self.strings(raw["mti"], (*path, "mti"), "MTI strings")
            self.each(mtis, mti_check)
            return mtis

        def currency_code() -> str:
            currency = self.string(raw["currency"], (*path, "currency"), 'an ISO 4217 numeric code such as "840"')
            if not (len(currency) == 3 and currency.isascii() and currency.isdigit()):
                self.fail((*path, "currency"), f"currency (ISO 4217 numeric) must be 3 digits, not {currency!r}")
            return currency

        mtis = self.attempt(mti_list)
        codes = self.attempt(lambda: self.digit_codes(raw["processing_codes"], (*path, "processing_codes"),
                                                      "transaction type (field 3, first two digits)", range(2, 3)))
        currency = self.attempt(currency_code)
        # Minor units of ``currency``, as field 4 carries them; 0 would approve nothing but free requests.
        amount = self.attempt(lambda: self.integer(raw["max_amount"], (*path, "max_amount"), 1, MAX_AMOUNT))
        self.whole(start)
        assert mtis is not None and codes is not None and currency is not None and amount is not None
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
        if name not in destinations and name in self.declared:
            raise _Reported  # the destination is in the file and broken: its own problem is reported
        if name not in destinations:
            self.fail(path, f'unknown destination "{name}"{_suggest(name, sorted(destinations))}')
        return name

    # -- routes -----------------------------------------------------------------------------------
    def route(
        self, position: int, raw: object, destinations: Mapping[str, Destination], names: dict[str, int]
    ) -> Route:
        path: KeyPath = ("routes", position)
        if not isinstance(raw, dict):
            self.fail(path, f"expected a table ([[routes]]), got {_kind(raw)}")
        start = self.marks
        self.keys(raw, path, ROUTE_KEYS)
        name = self.attempt(lambda: self.route_name(raw, path, names))
        if name is not None:
            names[name] = position  # even if the route is broken: a second route of that name is a problem too

        def read(key: str, reader: Callable[[object, KeyPath], T]) -> T | None:
            return self.attempt(lambda: reader(raw[key], (*path, key))) if key in raw else None

        bins = read("bins", self.bins)
        codes = read("processing_codes", self.processing_codes)
        classes = read("mti_classes", self.mti_classes)
        sources = read("source_links", self.link_names)
        currencies = read("currencies", self.currencies)
        low = read("amount_min", self.amount)
        high = read("amount_max", self.amount)
        if low is not None and high is not None and low > high:
            self.report((*path, "amount_min"), f"amount_min {low} is above amount_max {high}")
        outcome = self.attempt(lambda: self.outcome(raw, path, destinations))
        self.whole(start)
        assert name is not None and outcome is not None
        action, destination = outcome
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
        start = self.marks
        entries = [self.attempt(lambda: self.bin_entry(item, (*path, i))) for i, item in enumerate(value)]  # noqa: B023
        self.no_duplicates([None if entry is None else entry.text for entry in entries], path)
        self.whole(start)
        return tuple(entry for entry in entries if entry is not None)

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

        def check(i: int, item: str) -> None:
            if item not in MTI_CLASSES:
                self.fail((*path, i), f"MTI class must be one digit from 1 to 8 (the second MTI digit, "
                                      f'e.g. "2" for 0200), not {item!r}')

        self.each(items, check)
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
        by_position = {route.position: route for route in routes}  # broken routes are not in ``routes``
        for route in routes:
            key = route.criteria_key()
            if route.bins is None:
                if key in binless:
                    first = binless[key]
                    self.report(("routes", route.position), f'no bins and the same criteria as routes'
                                f'[{first.position}] "{first.name}": it could never be chosen')
                else:
                    binless[key] = route
                continue
            groups[key].extend((entry, route.position, i) for i, entry in enumerate(route.bins))
        # One overlap per group of identical criteria: the first, in file order.
        for later, index, earlier, other in sorted(o for group in groups.values() if (o := first_overlap(group))):
            self.report(("routes", later, "bins", index),
                        f'overlaps routes[{earlier}].bins[{other}] of route "{by_position[earlier].name}" with '
                        "identical criteria: this route would never be chosen for those cards")
