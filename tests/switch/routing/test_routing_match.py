"""Matching: prefixes, ranges, longest match, each criterion, default, reject and tie order."""

from __future__ import annotations

import dataclasses

import pytest

from switch.routing import DEFAULT_ROUTE, UNROUTED, RouteQuery, parse_routes

TABLE = """
default = "fallback"

[destinations.fallback]
links = ["fb"]
[destinations.cells]
links = ["cell-1", "cell-2"]
strategy = "round_robin"
[destinations.visa]
links = ["visa-a"]
[destinations.mc]
links = ["mc-a"]

[[routes]]
name = "prefix-6"
bins = ["476173"]
destination = "cells"

[[routes]]
name = "range-6"
bins = ["400000-400999"]
destination = "cells"

[[routes]]
name = "prefix-8-inside-range"     # listed after range-6, wins on its 8 digits
bins = ["40050012"]
destination = "visa"

[[routes]]
name = "visa-1"
bins = ["4"]
destination = "visa"

[[routes]]
name = "range-2"
bins = ["51-55"]
destination = "mc"

[[routes]]
name = "cash-only"
bins = ["510000"]
processing_codes = ["01"]
destination = "cells"

[[routes]]
name = "balance-full-code"
bins = ["510000"]
processing_codes = ["310000"]
destination = "visa"

[[routes]]
name = "reversals"
bins = ["520000"]
mti_classes = ["4"]
destination = "cells"

[[routes]]
name = "from-atm"
bins = ["530000"]
source_links = ["atm"]
destination = "cells"

[[routes]]
name = "eur"
bins = ["540000"]
currencies = ["978"]
destination = "cells"

[[routes]]
name = "small"
bins = ["550000"]
amount_max = 9999
destination = "cells"

[[routes]]
name = "medium"
bins = ["550000"]
amount_min = 10000
amount_max = 50000
destination = "visa"

[[routes]]
name = "blocked"
bins = ["999999"]
action = "reject"

[[routes]]
name = "tie-first"
bins = ["601100"]
destination = "cells"

[[routes]]
name = "tie-second"
bins = ["601100-601199"]
processing_codes = ["00"]
destination = "visa"

[[routes]]
name = "network"
mti_classes = ["8"]
destination = "cells"
"""

table = parse_routes(TABLE, "match.toml")


def q(
    pan: str | None,
    code: str | None = "000000",
    mti: str = "0200",
    source: str = "pos",
    currency: str | None = "840",
    amount: int | None = 1000,
) -> RouteQuery:
    return RouteQuery(pan, code, mti, source, currency, amount)


CASES = [
    # (why, query, expected route)
    ("prefix", q("4761731234567890"), "prefix-6"),
    ("PAN exactly as long as the prefix", q("476173"), "prefix-6"),
    ("PAN shorter than the prefix", q("47617"), "visa-1"),
    ("range low bound", q("4000000000000000"), "range-6"),
    ("range high bound", q("4009991234567890"), "range-6"),
    ("just above the range", q("4010000000000000"), "visa-1"),
    ("just below the prefix", q("4761721234567890"), "visa-1"),
    ("8-digit prefix inside a 6-digit range wins though listed later", q("4005001299999999"), "prefix-8-inside-range"),
    ("next 8 digits fall back to the range", q("4005001300000000"), "range-6"),
    ("2-digit range", q("5212345678901234"), "range-2"),
    ("2-digit range high bound", q("5512345678901234"), "range-2"),
    ("outside the 2-digit range", q("5612345678901234"), DEFAULT_ROUTE),
    ("processing code prefix", q("5100001234567890", code="011000"), "cash-only"),
    ("full 6-digit processing code", q("5100001234567890", code="310000"), "balance-full-code"),
    ("6-digit code differs in the last digit", q("5100001234567890", code="310001"), "range-2"),
    ("processing code absent", q("5100001234567890", code=None), "range-2"),
    ("MTI class 4 (0400)", q("5200001234567890", mti="0400"), "reversals"),
    ("MTI class 4 (0421 repeat advice)", q("5200001234567890", mti="0421"), "reversals"),
    ("MTI class 2 does not match class 4", q("5200001234567890", mti="0200"), "range-2"),
    ("source link", q("5300001234567890", source="atm"), "from-atm"),
    ("other source link", q("5300001234567890", source="pos"), "range-2"),
    ("currency", q("5400001234567890", currency="978"), "eur"),
    ("other currency", q("5400001234567890", currency="840"), "range-2"),
    ("currency absent", q("5400001234567890", currency=None), "range-2"),
    ("amount 0 in the lower band", q("5500001234567890", amount=0), "small"),
    ("amount_max is inclusive", q("5500001234567890", amount=9999), "small"),
    ("amount_min is inclusive", q("5500001234567890", amount=10000), "medium"),
    ("upper bound of the middle band", q("5500001234567890", amount=50000), "medium"),
    ("above every band", q("5500001234567890", amount=50001), "range-2"),
    ("amount absent", q("5500001234567890", amount=None), "range-2"),
    ("tie on length 6: the route listed first", q("6011001234567890"), "tie-first"),
    ("only the second covers 601150", q("6011501234567890"), "tie-second"),
    ("second's criteria fail: default", q("6011501234567890", code="010000"), DEFAULT_ROUTE),
    ("BIN route fails its criteria, route without bins next", q("6011501234567890", code="01", mti="0800"), "network"),
    ("no PAN: only routes without bins", q(None, mti="0800"), "network"),
    ("no PAN and nothing else matches: default", q(None), DEFAULT_ROUTE),
    ("empty PAN behaves as none", q("", mti="0200"), DEFAULT_ROUTE),
    ("non-digit PAN matches no BIN", q("4761 7312 3456 7890"), DEFAULT_ROUTE),
    ("unknown BIN: default", q("3528000000000000"), DEFAULT_ROUTE),
]


@pytest.mark.parametrize(("why", "query", "expected"), CASES, ids=[c[0] for c in CASES])
def test_route_matches(why: str, query: RouteQuery, expected: str) -> None:
    assert table.route(query).route == expected


def test_decision_carries_the_destination() -> None:
    decision = table.route(q("4761731234567890"))
    assert decision.response_code is None
    assert decision.destination is not None
    assert decision.destination.name == "cells"
    assert decision.destination.links == ("cell-1", "cell-2")
    assert decision.destination.strategy == "round_robin"


def test_default_decision() -> None:
    decision = table.route(q("3528000000000000"))
    assert decision.destination is not None and decision.destination.name == "fallback"
    assert decision.response_code is None


def test_reject_route_answers_92() -> None:
    decision = table.route(q("9999991234567890"))
    assert (decision.route, decision.destination, decision.response_code) == ("blocked", None, "92")


def test_no_default_answers_92() -> None:
    no_default = parse_routes(TABLE.replace('default = "fallback"', ""), "match.toml")
    decision = no_default.route(q("3528000000000000"))
    assert (decision.route, decision.destination, decision.response_code) == (UNROUTED, None, "92")
    # Routes still win without a default.
    assert no_default.route(q("4761731234567890")).route == "prefix-6"


def test_overlapping_ranges_of_one_route_and_of_several() -> None:
    text = """
[destinations.a]
links = ["a"]
[[routes]]
name = "wide"
bins = ["400000-499999", "450000-459999"]
processing_codes = ["01"]
destination = "a"
[[routes]]
name = "narrow"
bins = ["455000-455999"]
destination = "a"
"""
    t = parse_routes(text)
    assert t.route(q("4550001234567890", code="011000")).route == "wide"  # same length: first listed
    assert t.route(q("4550001234567890", code="001000")).route == "narrow"
    assert t.route(q("4560001234567890", code="011000")).route == "wide"
    assert t.route(q("4560001234567890", code="001000")).route == UNROUTED


def test_route_without_criteria_matches_everything() -> None:
    text = """
[destinations.a]
links = ["a"]
[[routes]]
name = "all"
destination = "a"
"""
    t = parse_routes(text)
    for query in (q(None, code=None, currency=None, amount=None, mti="0800"), q("4761731234567890")):
        assert t.route(query).route == "all"


def test_many_bins_route_like_a_scan() -> None:
    # Thousands of disjoint 6-digit BINs plus overlapping 8-digit ones: spot-check against a direct scan.
    lines = ['[destinations.a]\nlinks = ["a"]']
    for i in range(3000):
        lines.append(f'[[routes]]\nname = "r{i}"\nbins = ["{400000 + i * 3:06d}", "{700000 + i:06d}-{700000 + i:06d}"]'
                     f'\ndestination = "a"')
    for i in range(0, 3000, 7):
        lines.append(f'[[routes]]\nname = "long{i}"\nbins = ["{400000 + i * 3:06d}55"]\ndestination = "a"')
    t = parse_routes("\n".join(lines))
    assert t.route(q("4000001234567890")).route == "r0"
    assert t.route(q("4000031234567890")).route == "r1"
    assert t.route(q("4000011234567890")).route == UNROUTED
    assert t.route(q(f"{400000 + 2999 * 3:06d}1234567890")).route == "r2999"
    assert t.route(q(f"{400000 + 21 * 3:06d}5512345678")).route == "long21"
    assert t.route(q(f"{400000 + 22 * 3:06d}5512345678")).route == "r22"
    assert t.route(q("7029991234567890")).route == "r2999"


def test_table_is_immutable() -> None:
    with pytest.raises(AttributeError):
        table.source = "other"
    with pytest.raises(TypeError):
        table.destinations["x"] = table.destinations["cells"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.routes[0].name = "x"  # type: ignore[misc]


def test_query_repr_masks_the_pan() -> None:
    text = repr(q("4761731234567890"))
    assert "4761731234567890" not in text
    assert "476173******7890" in text
