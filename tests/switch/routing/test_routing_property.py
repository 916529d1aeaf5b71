"""Property: for random tables and requests, route() agrees with a brute-force reading of the rules.

The reference below is written from the rules in DESIGN.md section 5 alone: try every route, keep those whose
criteria all hold, take the longest BIN match (0 without bins), first listed on ties; default or 92 otherwise.
It shares no code with the index it checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from switch.model.errors import ConfigError
from switch.routing import RouteQuery, parse_routes

DIGITS = "4590"  # few digits, so BINs of different routes collide and nest often


@dataclass(frozen=True)
class Spec:
    bins: tuple[tuple[str, str], ...] | None
    codes: tuple[str, ...] | None
    classes: tuple[str, ...] | None
    sources: tuple[str, ...] | None
    currencies: tuple[str, ...] | None
    low: int | None
    high: int | None
    destination: str | None  # None: action = "reject"

    def criteria(self) -> tuple[object, ...]:
        def norm(values: tuple[str, ...] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return (norm(self.codes), norm(self.classes), norm(self.sources), norm(self.currencies), self.low, self.high)


def optional_subset(values: list[str]) -> st.SearchStrategy[tuple[str, ...] | None]:
    return st.none() | st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True).map(tuple)


@st.composite
def bin_entry(draw: st.DrawFn) -> tuple[str, str]:
    size = draw(st.integers(1, 4))
    a = draw(st.text(DIGITS, min_size=size, max_size=size))
    if draw(st.booleans()):
        return (a, a)
    b = draw(st.text(DIGITS, min_size=size, max_size=size))
    return (min(a, b), max(a, b))


@st.composite
def route_spec(draw: st.DrawFn) -> Spec:
    bins = draw(st.none() | st.lists(bin_entry(), min_size=1, max_size=3, unique=True).map(tuple))
    low = draw(st.none() | st.integers(0, 150))
    high = draw(st.none() | st.integers(low or 0, 200))
    return Spec(
        bins,
        draw(optional_subset(["0", "00", "01", "30", "011000"])),
        draw(optional_subset(["1", "2", "4"])),
        draw(optional_subset(["atm", "pos"])),
        draw(optional_subset(["840", "978"])),
        low,
        high,
        draw(st.sampled_from(["a", "b", None])),
    )


def overlaps(x: Spec, y: Spec) -> bool:
    """Would the later of two routes be ambiguous with the earlier one?"""
    if x.criteria() != y.criteria():
        return False
    if x.bins is None or y.bins is None:
        return x.bins is None and y.bins is None
    return any(
        len(a) == len(c) and int(a) <= int(d) and int(c) <= int(b) for a, b in x.bins for c, d in y.bins
    )


def is_ambiguous(specs: list[Spec]) -> bool:
    return any(overlaps(specs[i], specs[j]) for j in range(len(specs)) for i in range(j))


def unambiguous(specs: list[Spec]) -> list[Spec]:
    kept: list[Spec] = []
    for spec in specs:
        if not any(overlaps(earlier, spec) for earlier in kept):
            kept.append(spec)
    return kept


def to_toml(specs: list[Spec], default: str | None) -> str:
    out = [f'default = "{default}"'] if default else []
    out += ['[destinations.a]\nlinks = ["link-a"]', '[destinations.b]\nlinks = ["b1", "b2"]\nstrategy = "round_robin"']
    for i, spec in enumerate(specs):
        out.append(f'[[routes]]\nname = "r{i}"')
        for key, value in (
            ("bins", None if spec.bins is None else [lo if lo == hi else f"{lo}-{hi}" for lo, hi in spec.bins]),
            ("processing_codes", spec.codes), ("mti_classes", spec.classes), ("source_links", spec.sources),
            ("currencies", spec.currencies), ("amount_min", spec.low), ("amount_max", spec.high),
        ):
            if value is not None:
                out.append(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
        out.append(f'destination = "{spec.destination}"' if spec.destination else 'action = "reject"')
    return "\n".join(out) + "\n"


def criteria_hold(spec: Spec, q: RouteQuery) -> bool:
    if spec.codes is not None and not any((q.processing_code or "").startswith(c) for c in spec.codes):
        return False
    if spec.classes is not None and q.mti[1] not in spec.classes:
        return False
    if spec.sources is not None and q.source_link not in spec.sources:
        return False
    if spec.currencies is not None and q.currency not in spec.currencies:
        return False
    if (spec.low is not None or spec.high is not None) and q.amount is None:
        return False
    if spec.low is not None and q.amount is not None and q.amount < spec.low:
        return False
    return not (spec.high is not None and q.amount is not None and q.amount > spec.high)


def reference(specs: list[Spec], default: str | None, q: RouteQuery) -> tuple[str, str | None, str | None]:
    best: tuple[int, int] | None = None  # (match length, position)
    for position, spec in enumerate(specs):
        if not criteria_hold(spec, q):
            continue
        if spec.bins is None:
            length = 0
        else:
            pan = q.pan or ""
            lengths = [
                len(lo) for lo, hi in spec.bins
                if len(pan) >= len(lo) and int(lo) <= int(pan[: len(lo)]) <= int(hi)
            ]
            if not lengths:
                continue
            length = max(lengths)
        if best is None or length > best[0]:
            best = (length, position)
    if best is None:
        return ("(default)", default, None) if default else ("(no route)", None, "92")
    spec = specs[best[1]]
    return (f"r{best[1]}", spec.destination, None if spec.destination else "92")


@st.composite
def pans(draw: st.DrawFn, specs: list[Spec]) -> str | None:
    """Mostly PANs inside, at the edges of, or just outside the table's BINs; sometimes anything."""
    entries = [entry for spec in specs for entry in spec.bins or ()]
    if not entries or draw(st.integers(0, 4)) == 0:
        return draw(st.none() | st.text(DIGITS + "1", max_size=6))
    low, high = draw(st.sampled_from(entries))
    size = len(low)
    value = draw(st.sampled_from([int(low), int(high), int(low) - 1, int(high) + 1, (int(low) + int(high)) // 2]))
    head = f"{value:0{size}d}"[-size:] if value >= 0 else low
    return head + draw(st.text(DIGITS + "1", max_size=3))


def queries(specs: list[Spec]) -> st.SearchStrategy[RouteQuery]:
    return st.builds(
        RouteQuery,
        pan=pans(specs),
        processing_code=st.none() | st.sampled_from(["000000", "011000", "300000", "01", "3", ""]),
        mti=st.sampled_from(["0100", "0200", "0420", "0800"]),
        source_link=st.sampled_from(["atm", "pos", "other"]),
        currency=st.none() | st.sampled_from(["840", "978", "124"]),
        amount=st.none() | st.integers(0, 220),
    )


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(route_spec(), max_size=8).map(unambiguous),
    default=st.sampled_from(["a", None]),
    data=st.data(),
)
def test_route_equals_brute_force(specs: list[Spec], default: str | None, data: st.DataObject) -> None:
    table = parse_routes(to_toml(specs, default))
    for q in data.draw(st.lists(queries(specs), min_size=1, max_size=20)):
        decision = table.route(q)
        got = (decision.route, decision.destination.name if decision.destination else None, decision.response_code)
        assert got == reference(specs, default, q)


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(route_spec(), max_size=6))
def test_ambiguity_is_refused_exactly_when_a_route_could_never_win(specs: list[Spec]) -> None:
    text = to_toml(specs, None)
    if is_ambiguous(specs):
        try:
            parse_routes(text)
        except ConfigError as error:
            assert "never be chosen" in error.reason
        else:
            raise AssertionError("an ambiguous table was accepted")
    else:
        parse_routes(text)
