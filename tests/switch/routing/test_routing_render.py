"""describe(), diff(), digest and link_names(): what operators and the reload audit see."""

from __future__ import annotations

from pathlib import Path

from switch.routing import load_routes, parse_routes

BASE = """\
default = "issuer-sim"

[destinations.issuer-sim]
links = ["issuer-sim"]
[destinations.schemes]
links = ["visa-a", "visa-b"]
strategy = "primary_secondary"
timeout_ms = 5000

[[routes]]
name = "own-debit"
bins = ["476173", "400000-400999"]
processing_codes = ["01", "30"]
mti_classes = ["1", "2"]
source_links = ["atm"]
currencies = ["840", "978"]
amount_min = 0
amount_max = 100000
destination = "issuer-sim"

[[routes]]
name = "blocked-range"
bins = ["999999"]
action = "reject"

[[routes]]
name = "network"
destination = "schemes"
"""


def test_describe() -> None:
    table = parse_routes(BASE, "routes.toml")
    assert table.describe() == f"""\
routing table routes.toml
  sha256   {table.digest}
  default  issuer-sim
destinations (2):
  issuer-sim  single: issuer-sim
  schemes     primary_secondary: visa-a, visa-b, timeout 5000 ms
routes (3; the longest BIN match wins, then the first listed):
  routes[0] own-debit -> issuer-sim, line 10
      bins              476173, 400000-400999
      processing codes  01, 30
      MTI classes       1, 2
      source links      atm
      currencies        840, 978
      amount            0 to 100000 (minor units, inclusive)
  routes[1] blocked-range reject (92), line 21
      bins              999999
  routes[2] network -> schemes, line 26
      matches every request
"""


def test_describe_without_default_and_one_sided_amounts() -> None:
    text = BASE.replace('default = "issuer-sim"\n', "").replace("amount_min = 0\n", "")
    out = parse_routes(text, "routes.toml").describe()
    assert "  default  none: requests no route matches are answered 92\n" in out
    assert "      amount            up to 100000 (minor units)\n" in out
    out = parse_routes(text.replace("amount_max = 100000", "amount_min = 5"), "routes.toml").describe()
    assert "      amount            5 or more (minor units)\n" in out


def test_the_example_file_parses_and_describes() -> None:
    path = Path(__file__).parents[3] / "conf" / "examples" / "routes.toml"
    links = {"issuer-sim", "debit-cell-1", "debit-cell-2", "visa-a", "visa-b", "mc-a", "atm"}
    table = load_routes(path, known_links=links)
    assert table.link_names() == links
    assert table.destination_links() == links - {"atm"}
    assert [route.name for route in table.routes] == [
        "own-debit-cash", "own-debit-large", "own-debit-corporate", "visa", "mastercard", "blocked-range",
        "atm-network-management",
    ]
    assert "routes[5] blocked-range reject (92)" in table.describe()


def test_diff_of_equal_tables_is_empty() -> None:
    assert parse_routes(BASE).diff(parse_routes(BASE)) == []


def test_diff_lists_each_change() -> None:
    old = parse_routes(BASE, "old.toml")
    new_text = (
        BASE.replace('default = "issuer-sim"', 'default = "schemes"')
        .replace('strategy = "primary_secondary"\ntimeout_ms = 5000', 'strategy = "round_robin"')
        .replace('bins = ["476173", "400000-400999"]', 'bins = ["400000-400999", "476174"]')
        .replace('currencies = ["840", "978"]\n', "")
        .replace("amount_max = 100000", "amount_max = 50000")
        .replace('[[routes]]\nname = "blocked-range"\nbins = ["999999"]\naction = "reject"\n', "")
        + '\n[destinations.cells]\nlinks = ["cell-1"]\n'
        + '\n[[routes]]\nname = "cells"\nbins = ["5"]\nprocessing_codes = ["00"]\ndestination = "cells"\n'
    )
    # The appended [[routes]] follows the [destinations.cells] table, so it is still an array element.
    new = parse_routes(new_text, "new.toml")
    assert old.diff(new) == [
        "default: issuer-sim -> schemes",
        "destination added: cells (single: cell-1)",
        "destination changed: schemes: primary_secondary: visa-a, visa-b, timeout 5000 ms -> "
        "round_robin: visa-a, visa-b",
        "route removed: blocked-range",
        "route changed: own-debit: bins +476174 -476173",
        "route changed: own-debit: currencies 840, 978 -> any",
        "route changed: own-debit: amount_max 100000 -> 50000",
        "route added: cells at routes[2] (bins 5; processing_codes 00; -> cells)",
    ]
    assert new.diff(old)[0] == "default: schemes -> issuer-sim"
    assert "route removed: cells" in new.diff(old)
    assert "destination removed: cells" in new.diff(old)


def test_diff_reports_action_destination_and_moves() -> None:
    text = BASE + '\n[[routes]]\nname = "last"\nbins = ["5"]\ndestination = "schemes"\n'
    old = parse_routes(text)
    moved = text.replace(
        '[[routes]]\nname = "blocked-range"\nbins = ["999999"]\naction = "reject"\n', ""
    ) + '\n[[routes]]\nname = "blocked-range"\nbins = ["999999"]\ndestination = "schemes"\n'
    assert old.diff(parse_routes(moved)) == [
        "route changed: blocked-range: action reject -> forward",
        "route changed: blocked-range: destination none -> schemes",
        "route moved: blocked-range now after last",
    ]


def test_digest_ignores_layout_comments_and_value_order() -> None:
    reordered = """
# same table, written differently
[[routes]]
destination = "issuer-sim"
amount_max = 100000
amount_min = 0
currencies = ["978", "840"]
source_links = ["atm"]
mti_classes = ["2", "1"]
processing_codes = ["30", "01"]
bins = ["400000-400999", "476173-476173"]
name = "own-debit"

[[routes]]
action = "reject"
bins = ["999999"]
name = "blocked-range"

[[routes]]
name = "network"
destination = "schemes"

[destinations.schemes]
timeout_ms = 5000
strategy = "primary_secondary"
links = ["visa-a", "visa-b"]
[destinations.issuer-sim]
links = ["issuer-sim"]
"""
    base = parse_routes(BASE, "a.toml")
    same = parse_routes('default = "issuer-sim"\n' + reordered, "b.toml")
    assert same.digest == base.digest
    assert len(base.digest) == 64 and int(base.digest, 16) >= 0
    assert same.diff(base) == []


def test_digest_changes_with_what_routes_differently() -> None:
    base = parse_routes(BASE).digest
    changes = [
        BASE.replace('links = ["visa-a", "visa-b"]', 'links = ["visa-b", "visa-a"]'),  # failover order
        BASE.replace("amount_max = 100000", "amount_max = 100001"),
        BASE.replace('default = "issuer-sim"\n', ""),
        BASE.replace('"476173"', '"476174"'),
        BASE.replace("timeout_ms = 5000", "timeout_ms = 5001"),
        # Route order breaks ties, so swapping two routes is a different table.
        BASE.replace(
            '[[routes]]\nname = "blocked-range"\nbins = ["999999"]\naction = "reject"\n', ""
        ) + '\n[[routes]]\nname = "blocked-range"\nbins = ["999999"]\naction = "reject"\n',
    ]
    digests = {parse_routes(text).digest for text in changes}
    assert base not in digests
    assert len(digests) == len(changes)


def test_link_names() -> None:
    table = parse_routes(BASE)
    assert table.link_names() == {"issuer-sim", "visa-a", "visa-b", "atm"}
    assert table.destination_links() == {"issuer-sim", "visa-a", "visa-b"}
