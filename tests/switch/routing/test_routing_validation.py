"""Every validation error names the file, the line and the dotted key, and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.model.errors import ConfigError, ConfigErrors
from switch.routing import load_routes, parse_routes

HEAD = """\
[destinations.issuer-sim]
links = ["issuer-sim"]
[destinations.schemes]
links = ["visa-a", "visa-b"]
strategy = "primary_secondary"
"""  # 5 lines: the first [[routes]] of a case below starts on line 6

KNOWN_LINKS = {"issuer-sim", "visa-a", "visa-b", "atm"}

CASES: list[tuple[str, str, int, str, str]] = [
    # (id, text after HEAD, line, key, text the reason contains)
    ("unknown route key", """\
[[routes]]
name = "r"
bnis = ["476173"]
destination = "issuer-sim"
""", 8, "routes[0].bnis", 'unknown key "bnis" (did you mean "bins"?)'),
    ("unknown key without a close match lists the allowed ones", """\
[[routes]]
name = "r"
colour = "red"
destination = "issuer-sim"
""", 8, "routes[0].colour", "expected one of: name, bins, processing_codes"),
    ("bins not an array", """\
[[routes]]
name = "r"
bins = "476173"
destination = "issuer-sim"
""", 8, "routes[0].bins", "expected an array of BIN strings, got string"),
    ("BIN not a string", """\
[[routes]]
name = "r"
bins = ["476173", 400000]
destination = "issuer-sim"
""", 8, "routes[0].bins[1]", "got integer"),
    ("non-digit BIN", """\
[[routes]]
name = "r"
bins = ["476173", "47617A"]
destination = "issuer-sim"
""", 8, "routes[0].bins[1]", 'must be digits ("476173") or a range'),
    ("range with spaces", """\
[[routes]]
name = "r"
bins = ["400000 - 400999"]
destination = "issuer-sim"
""", 8, "routes[0].bins[0]", "must be digits"),
    ("range low above high", """\
[[routes]]
name = "r"
bins = ["400999-400000"]
destination = "issuer-sim"
""", 8, "routes[0].bins[0]", "range low bound is above its high bound"),
    ("range bounds of unequal length", """\
[[routes]]
name = "r"
bins = ["400000-4009999"]
destination = "issuer-sim"
""", 8, "routes[0].bins[0]", "range bounds must have the same length (here 6 and 7)"),
    ("BIN long enough to be a card number", """\
[[routes]]
name = "r"
bins = ["476173123456"]
destination = "issuer-sim"
""", 8, "routes[0].bins[0]", "is 12 digits long; BIN prefixes and ranges have at most 11"),
    ("empty bins", """\
[[routes]]
name = "r"
bins = []
destination = "issuer-sim"
""", 8, "routes[0].bins", "must not be empty"),
    ("duplicate BIN in one route", """\
[[routes]]
name = "r"
bins = ["476173", "400000", "476173-476173"]
destination = "issuer-sim"
""", 8, "routes[0].bins[2]", "duplicate of routes[0].bins[0]"),
    ("same BIN, identical criteria in another order", """\
[[routes]]
name = "a"
bins = ["476173"]
processing_codes = ["01", "30"]
destination = "issuer-sim"
[[routes]]
name = "b"
bins = ["400000", "476173"]
processing_codes = ["30", "01"]
destination = "schemes"
""", 13, "routes[1].bins[1]", 'overlaps routes[0].bins[0] of route "a" with identical criteria'),
    ("overlapping ranges, identical criteria", """\
[[routes]]
name = "a"
bins = ["400000-400500"]
destination = "issuer-sim"
[[routes]]
name = "b"
bins = ["400400-400999"]
action = "reject"
""", 12, "routes[1].bins[0]", "this route would never be chosen for those cards"),
    ("routes without bins, identical criteria", """\
[[routes]]
name = "a"
mti_classes = ["8"]
destination = "issuer-sim"
[[routes]]
name = "b"
mti_classes = ["8"]
destination = "schemes"
""", 10, "routes[1]", 'no bins and the same criteria as routes[0] "a"'),
    ("processing code not digits", """\
[[routes]]
name = "r"
processing_codes = ["0A"]
destination = "issuer-sim"
""", 8, "routes[0].processing_codes[0]", "processing code must be 1 to 6 digits"),
    ("processing code too long", """\
[[routes]]
name = "r"
processing_codes = ["0100000"]
destination = "issuer-sim"
""", 8, "routes[0].processing_codes[0]", "processing code must be 1 to 6 digits"),
    ("duplicate processing code", """\
[[routes]]
name = "r"
processing_codes = ["01", "30", "01"]
destination = "issuer-sim"
""", 8, "routes[0].processing_codes[2]", "duplicate of routes[0].processing_codes[0]"),
    ("MTI class 0 is reserved", """\
[[routes]]
name = "r"
mti_classes = ["1", "0"]
destination = "issuer-sim"
""", 8, "routes[0].mti_classes[1]", "MTI class must be one digit from 1 to 8"),
    ("MTI class 9 is reserved", """\
[[routes]]
name = "r"
mti_classes = ["9"]
destination = "issuer-sim"
""", 8, "routes[0].mti_classes[0]", "MTI class must be one digit from 1 to 8"),
    ("MTI class given as a full MTI", """\
[[routes]]
name = "r"
mti_classes = ["0200"]
destination = "issuer-sim"
""", 8, "routes[0].mti_classes[0]", "not '0200'"),
    ("MTI class as an integer", """\
[[routes]]
name = "r"
mti_classes = [2]
destination = "issuer-sim"
""", 8, "routes[0].mti_classes[0]", "expected MTI class strings, got integer"),
    ("currency of two digits", """\
[[routes]]
name = "r"
currencies = ["840", "97"]
destination = "issuer-sim"
""", 8, "routes[0].currencies[1]", "currency (ISO 4217 numeric) must be 3 digits, not '97'"),
    ("alphabetic currency", """\
[[routes]]
name = "r"
currencies = ["USD"]
destination = "issuer-sim"
""", 8, "routes[0].currencies[0]", "must be 3 digits"),
    ("amount as a float", """\
[[routes]]
name = "r"
amount_min = 10.5
destination = "issuer-sim"
""", 8, "routes[0].amount_min", "expected an integer, got float"),
    ("amount as a boolean", """\
[[routes]]
name = "r"
amount_max = true
destination = "issuer-sim"
""", 8, "routes[0].amount_max", "expected an integer, got boolean"),
    ("negative amount", """\
[[routes]]
name = "r"
amount_min = -1
destination = "issuer-sim"
""", 8, "routes[0].amount_min", "must be 0 or more, not -1"),
    ("amount_min above amount_max", """\
[[routes]]
name = "r"
amount_max = 100
amount_min = 500
destination = "issuer-sim"
""", 9, "routes[0].amount_min", "amount_min 500 is above amount_max 100"),
    ("unknown destination", """\
[[routes]]
name = "r"
destination = "isuer-sim"
""", 8, "routes[0].destination", 'unknown destination "isuer-sim" (did you mean "issuer-sim"?)'),
    ("destination not a string", """\
[[routes]]
name = "r"
destination = ["issuer-sim"]
""", 8, "routes[0].destination", "expected a destination name, got array"),
    ("neither destination nor reject", """\
[[routes]]
name = "r"
bins = ["476173"]
""", 6, "routes[0]", 'route needs a destination, or action = "reject"'),
    ("reject with a destination", """\
[[routes]]
name = "r"
action = "reject"
destination = "issuer-sim"
""", 9, "routes[0].destination", 'a route with action = "reject" takes no destination'),
    ("unknown action", """\
[[routes]]
name = "r"
action = "rejct"
""", 8, "routes[0].action", 'unknown action "rejct" (did you mean "reject"?)'),
    ("duplicate route name", """\
[[routes]]
name = "r"
bins = ["4"]
destination = "issuer-sim"
[[routes]]
name = "r"
bins = ["5"]
destination = "issuer-sim"
""", 11, "routes[1].name", 'duplicate route name "r" (also routes[0])'),
    ("missing route name", """\
[[routes]]
destination = "issuer-sim"
""", 6, "routes[0]", 'missing key "name"'),
    ("route name with a space", """\
[[routes]]
name = "my route"
destination = "issuer-sim"
""", 7, "routes[0].name", "route names are 1 to 64 letters"),
    ("unknown source link", """\
[[routes]]
name = "r"
source_links = ["atm", "atn"]
destination = "issuer-sim"
""", 8, "routes[0].source_links[1]", 'unknown link "atn" (did you mean "atm"?)'),
    ("routes as a plain table", """\
[routes]
name = "r"
""", 6, "routes", "expected an array of tables ([[routes]]), got table"),
]


@pytest.mark.parametrize(("text", "line", "key", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_route_errors(text: str, line: int, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_routes(HEAD + text, "routes.toml", KNOWN_LINKS)
    error = caught.value
    assert (error.file, error.line, error.key) == ("routes.toml", line, key)
    assert reason in error.reason
    assert str(error).startswith(f"routes.toml:{line}: {key}: ")


TOP_CASES: list[tuple[str, str, int | None, str, str]] = [
    ("unknown top-level key", 'defualt = "a"\n', 1, "defualt", 'did you mean "default"?'),
    ("unknown default destination", 'default = "nowhere"\n', 1, "default", 'unknown destination "nowhere"'),
    ("default not a string", "default = 1\n", 1, "default", "expected a destination name, got integer"),
    ("destinations not a table", 'destinations = ["a"]\n', 1, "destinations", "expected tables"),
    ("unknown destination key", '[destinations.a]\nlink = ["x"]\n', 2, "destinations.a.link",
     'unknown key "link" (did you mean "links"?)'),
    ("destination without links", "[destinations.a]\nstrategy = \"single\"\n", 1, "destinations.a",
     'missing key "links"'),
    ("empty links", "[destinations.a]\nlinks = []\n", 2, "destinations.a.links", "must not be empty"),
    ("duplicate link", '[destinations.a]\nlinks = ["x", "y", "x"]\nstrategy = "round_robin"\n', 2,
     "destinations.a.links[2]", "duplicate of destinations.a.links[0]"),
    ("links not strings", "[destinations.a]\nlinks = [1]\n", 2, "destinations.a.links[0]", "got integer"),
    ("link name with a space", '[destinations.a]\nlinks = ["visa a"]\n', 2, "destinations.a.links[0]",
     "without spaces"),
    ("unknown link", '[destinations.a]\nlinks = ["visa-c"]\n', 2, "destinations.a.links[0]",
     'unknown link "visa-c" (did you mean "visa-'),
    ("several links and no strategy", '[destinations.a]\nlinks = ["visa-a", "visa-b"]\n', 1, "destinations.a",
     "needs strategy"),
    ("single with two links", '[destinations.a]\nlinks = ["visa-a", "visa-b"]\nstrategy = "single"\n', 3,
     "destinations.a.strategy", '"single" takes one link, this destination has 2'),
    ("unknown strategy", '[destinations.a]\nlinks = ["visa-a", "visa-b"]\nstrategy = "roundrobin"\n', 3,
     "destinations.a.strategy", 'unknown strategy "roundrobin" (did you mean "round_robin"?)'),
    ("timeout of zero", '[destinations.a]\nlinks = ["atm"]\ntimeout_ms = 0\n', 3, "destinations.a.timeout_ms",
     "must be from 1 to 600000, not 0"),
    ("timeout as a string", '[destinations.a]\nlinks = ["atm"]\ntimeout_ms = "5s"\n', 3,
     "destinations.a.timeout_ms", "expected an integer, got string"),
    ("bad destination name", '[destinations."a b"]\nlinks = ["atm"]\n', 1, 'destinations."a b"',
     "destination names are"),
    ("TOML error at the end of the document", '[destinations.a]\nlinks = ["atm"\n', 2, "",
     "invalid TOML: Unclosed array (at end of document)"),
    ("TOML syntax error in a value", 'default = \n', 1, "", "invalid TOML: Invalid value (at line 1, column 11)"),
]


@pytest.mark.parametrize(("text", "line", "key", "reason"), [c[1:] for c in TOP_CASES],
                         ids=[c[0] for c in TOP_CASES])
def test_top_level_and_destination_errors(text: str, line: int | None, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_routes(text, "routes.toml", KNOWN_LINKS)
    error = caught.value
    assert (error.line, error.key) == (line, key)
    assert reason in error.reason


def test_example_from_the_brief_line_14() -> None:
    text = HEAD + """\
[[routes]]
name = "one"
bins = ["4"]
destination = "issuer-sim"
[[routes]]
name = "two"
bins = ["5"]
destination = "issuer-sim"
[[routes]]
name = "three"
bins = [
  "600000",
  "400000-4009999",
]
destination = "issuer-sim"
"""
    with pytest.raises(ConfigError) as caught:
        parse_routes(text, "routes.toml")
    assert str(caught.value) == (
        "routes.toml:18: routes[2].bins[1]: range bounds must have the same length (here 6 and 7)"
    )


def test_bin_errors_never_repeat_the_value() -> None:
    for value in ("4761731234567890", "4761-7312-3456-7890", "4761 7312 3456 7890"):
        text = HEAD + f'[[routes]]\nname = "r"\nbins = ["{value}"]\naction = "reject"\n'
        with pytest.raises(ConfigError) as caught:
            parse_routes(text, "routes.toml")
        assert "7890" not in str(caught.value)
        assert caught.value.key == "routes[0].bins[0]"


def test_same_bins_with_different_criteria_or_lengths_are_allowed() -> None:
    text = HEAD + """\
[[routes]]
name = "a"
bins = ["476173", "4"]
processing_codes = ["01"]
destination = "issuer-sim"
[[routes]]
name = "b"
bins = ["476173", "47"]
processing_codes = ["01", "30"]
destination = "schemes"
[[routes]]
name = "c"
bins = ["476173-476174", "40"]
processing_codes = ["30"]
destination = "schemes"
"""
    table = parse_routes(text, "routes.toml")
    assert [route.name for route in table.routes] == ["a", "b", "c"]


def test_links_are_free_without_known_links() -> None:
    table = parse_routes('[destinations.a]\nlinks = ["anything"]\n', "routes.toml")
    assert table.link_names() == {"anything"}
    with pytest.raises(ConfigError):
        parse_routes('[destinations.a]\nlinks = ["anything"]\n', "routes.toml", known_links=())


def test_inline_tables_report_their_lines() -> None:
    text = 'default = "a"\ndestinations.a = { links = ["atm"] }\ndestinations.b = { links = ["atm"], strategy = "x" }\n'
    with pytest.raises(ConfigError) as caught:
        parse_routes(text, "routes.toml")
    assert (caught.value.line, caught.value.key) == (3, "destinations.b.strategy")


def test_load_routes_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(HEAD + '[[routes]]\nname = "r"\ndestination = "nope"\n')
    with pytest.raises(ConfigError) as caught:
        load_routes(path)
    assert str(caught.value).startswith(f"{path}:8: routes[0].destination: unknown destination")
    path.write_text('default = "schemes"\n' + HEAD)
    table = load_routes(path, KNOWN_LINKS)
    assert table.source == str(path)
    assert table.default is not None and table.default.name == "schemes"


def test_load_routes_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_routes(tmp_path / "missing.toml")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'default = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_routes(path)


def test_every_problem_is_reported_once_in_the_order_found() -> None:
    text = """\
colour = 1
[destinations.broken]
links = []
[destinations.ok]
links = ["atm"]
stand_in = { max_amount = 0, mti = ["0100", "0900"], processing_codes = ["01"], currency = "USD" }
[[routes]]
name = "a"
bins = ["47617A", "476173123456", "476173", "476173"]
destination = "broken"
[[routes]]
name = "a"
mti_classes = ["2", "0"]
destination = "ok"
[[routes]]
name = "c"
amount_min = 5
amount_max = 1
destination = "nowhere"
"""
    with pytest.raises(ConfigErrors) as caught:
        parse_routes(text, "routes.toml", KNOWN_LINKS)
    found = [(e.line, e.key) for e in caught.value.errors]
    assert found == [
        (1, "colour"),
        (3, "destinations.broken.links"),
        (6, "destinations.ok.stand_in.mti[1]"),
        (6, "destinations.ok.stand_in.currency"),
        (6, "destinations.ok.stand_in.max_amount"),
        (9, "routes[0].bins[0]"),
        (9, "routes[0].bins[1]"),
        (9, "routes[0].bins[3]"),  # the duplicate of bins[2]
        # routes[0].destination names a destination that is in the file and broken: not reported again
        (12, "routes[1].name"),
        (13, "routes[1].mti_classes[1]"),
        (17, "routes[2].amount_min"),
        (19, "routes[2].destination"),
    ]
    error = caught.value
    assert (error.line, error.key) == (1, "colour")  # a ConfigError: the first problem's place
    assert str(error).splitlines() == [str(e) for e in error.errors]
    assert "476173123456" not in str(error)


def test_overlaps_are_reported_for_every_group_of_identical_criteria() -> None:
    text = HEAD + """\
[[routes]]
name = "a"
bins = ["476173"]
destination = "issuer-sim"
[[routes]]
name = "b"
bins = ["4761"]
processing_codes = ["01"]
destination = "issuer-sim"
[[routes]]
name = "c"
bins = ["476173-476179"]
destination = "schemes"
[[routes]]
name = "d"
bins = ["4761"]
processing_codes = ["01"]
destination = "schemes"
"""
    with pytest.raises(ConfigErrors) as caught:
        parse_routes(text, "routes.toml")
    assert [e.key for e in caught.value.errors] == ["routes[2].bins[0]", "routes[3].bins[0]"]


def test_a_sound_route_to_a_broken_destination_reports_the_destination_only() -> None:
    text = '[destinations.b]\nlinks = []\n[[routes]]\nname = "r"\nbins = ["4"]\ndestination = "b"\n'
    with pytest.raises(ConfigErrors) as caught:
        parse_routes(text, "routes.toml")
    assert [(e.line, e.key) for e in caught.value.errors] == [(2, "destinations.b.links")]
