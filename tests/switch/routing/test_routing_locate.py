"""The line locator follows TOML constructs that could confuse a line-by-line scan."""

from __future__ import annotations

import tomllib

from switch.model.tomlkeys import dotted, locate_keys

TRICKY = '''\
# [[routes]] in a comment is not a header
title = """
[[routes]]
name = "inside a multi-line string"
"""
literal = \'\'\'
[destinations.fake]
\'\'\'
"quoted.key" = 1
[destinations."issuer sim"]
links = [ "a", # comment with ] and [
  'b',
  [1, [2, 3]],
  { x = 1 },
]
[[routes]]
name = "first"
[[routes]]
name = "second"   # routes[1]
bins = ["1",
        "2"]
[routes.extra]
deep = { a.b = 1, c = [1,
  2] }
when = 1979-05-27 07:32:00
[[routes]]
escaped = "say \\"[[routes]]\\""
after = 3.5e1
[[routes.sub]]
k = true
[[routes.sub]]
k = false
'''


def test_tricky_text_is_valid_toml() -> None:
    data = tomllib.loads(TRICKY)
    assert len(data["routes"]) == 3
    assert data["routes"][2]["sub"][1]["k"] is False


def test_lines_of_keys_headers_and_elements() -> None:
    where = locate_keys(TRICKY)
    expected = {
        ("title",): 2,
        ("literal",): 6,
        ("quoted.key",): 9,
        ("destinations", "issuer sim"): 10,
        ("destinations", "issuer sim", "links"): 11,
        ("destinations", "issuer sim", "links", 0): 11,
        ("destinations", "issuer sim", "links", 1): 12,
        ("destinations", "issuer sim", "links", 2): 13,
        ("destinations", "issuer sim", "links", 2, 1, 0): 13,
        ("destinations", "issuer sim", "links", 3, "x"): 14,
        ("routes", 0): 16,
        ("routes", 0, "name"): 17,
        ("routes", 1): 18,
        ("routes", 1, "name"): 19,
        ("routes", 1, "bins", 0): 20,
        ("routes", 1, "bins", 1): 21,
        ("routes", 1, "extra"): 22,
        ("routes", 1, "extra", "deep", "a", "b"): 23,
        ("routes", 1, "extra", "deep", "c", 1): 24,
        ("routes", 1, "extra", "when"): 25,
        ("routes", 2): 26,
        ("routes", 2, "escaped"): 27,
        ("routes", 2, "after"): 28,
        ("routes", 2, "sub", 0): 29,
        ("routes", 2, "sub", 0, "k"): 30,
        ("routes", 2, "sub", 1): 31,
        ("routes", 2, "sub", 1, "k"): 32,
    }
    assert {path: where.line(path) for path in expected} == expected


def test_missing_path_falls_back_to_the_enclosing_one() -> None:
    where = locate_keys(TRICKY)
    assert where.line(("routes", 1, "destination")) == 18
    assert where.line(("routes", 1, "bins", 7)) == 20  # no such element: the key's line
    assert where.line(("nothing",)) is None


def test_multi_line_basic_string_ending_in_quotes() -> None:
    text = 'a = """x""""\n[[routes]]\nname = "r"\n'
    assert tomllib.loads(text)["a"] == 'x"'
    assert locate_keys(text).line(("routes", 0, "name")) == 3


def test_dotted() -> None:
    assert dotted(("routes", 2, "bins", 1)) == "routes[2].bins[1]"
    assert dotted(("destinations", "issuer-sim", "links")) == "destinations.issuer-sim.links"
    assert dotted(("destinations", "a b")) == 'destinations."a b"'
    assert dotted(()) == ""
