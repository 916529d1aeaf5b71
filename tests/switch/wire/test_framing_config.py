"""Reading a link's framing table: typed values, unknown keys and misplaced settings refused, and framing that
does not belong to the link's network named as such (file, key, reason)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from schemes.unionpay.framing import UnionPayFramer, UnionPayFraming, unionpay_framing
from schemes.visa.framing import VisaFramer, VisaFraming, visa_framing
from switch.model.errors import ConfigError
from switch.model.toml import TomlTable
from switch.wire.framing import Ascii4Framer, Bcd2Framer, Binary2Framer, LengthFraming, length_framing

FILE = "links.toml"
PREFIX = "links.acq1.framing"


def table(text: str) -> TomlTable:
    return TomlTable(tomllib.loads(text), FILE, PREFIX)


def load(text: str) -> Any:
    """The reader for the table's kind, as the network owning that framing would call it."""
    kind = tomllib.loads(text).get("kind")
    reader: Callable[[TomlTable], Any] = (visa_framing if kind == "visa" else unionpay_framing if kind == "unionpay"
                                          else length_framing)
    return reader(table(text))


def test_full_binary2_table() -> None:
    config = load(
        'kind = "binary2"\ntpdu = true\ntpdu_default = "6000120000"\nlength_includes_prefix = true\n'
        "max_frame = 4096\nkeepalive_echo = false\n"
    )
    assert config == LengthFraming(
        "binary2", tpdu=True, tpdu_default=bytes.fromhex("6000120000"), length_includes_prefix=True,
        max_frame=4096, keepalive_echo=False,
    )


def test_visa_and_unionpay_tables() -> None:
    visa = load('kind = "visa"\nsource_station = "123456"\ndestination_station = "400050"\n')
    assert visa == VisaFraming(source_station="123456", destination_station="400050")
    cups = load('kind = "unionpay"\nlength_prefix = true\nsource_id = "48020000"\n'
                'destination_id = "00010000"\ntest = true\n')
    assert cups == UnionPayFraming(length_prefix=True, source_id="48020000", destination_id="00010000", test=True)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("binary2", Binary2Framer), ("bcd2", Bcd2Framer), ("ascii4", Ascii4Framer), ("visa", VisaFramer),
     ("unionpay", UnionPayFramer)],
)
def test_framer_kinds(kind: str, cls: type) -> None:
    assert isinstance(load(f'kind = "{kind}"').framer(), cls)


def test_framers_have_independent_buffers() -> None:
    config = LengthFraming("binary2")
    first, second = config.framer(), config.framer()
    first.receive_data(b"\x00")
    assert (first.buffered, second.buffered) == (1, 0)


BAD: list[tuple[str, str, str, str]] = [
    ("unknown-key", 'kind = "binary2"\ntpud = true', "tpud", "did you mean 'tpdu'"),
    ("missing-kind", "tpdu = true", "kind", "is required"),
    ("bad-kind", 'kind = "binary4"', "kind", "does not belong to network"),
    ("kind-not-string", "kind = 2", "kind", "expected a string"),
    ("bool-as-string", 'kind = "binary2"\ntpdu = "yes"', "tpdu", "expected a boolean"),
    ("max-frame-bool", 'kind = "binary2"\nmax_frame = true', "max_frame", "integer"),
    ("max-frame-zero", 'kind = "binary2"\nmax_frame = 0', "max_frame", "at least 1"),
    ("max-frame-huge", 'kind = "binary2"\nmax_frame = 70000', "max_frame", "at most 65535"),
    ("max-frame-float", 'kind = "binary2"\nmax_frame = 8192.0', "max_frame", "integer"),
    ("tpdu-ascii4", 'kind = "ascii4"\ntpdu = true', "tpdu", "does not apply"),
    ("tpdu-visa", 'kind = "visa"\ntpdu = false', "tpdu", "unknown key"),
    ("tpdu-default-short", 'kind = "binary2"\ntpdu_default = "600000"', "tpdu_default", "10 hex digits"),
    ("tpdu-default-not-hex", 'kind = "binary2"\ntpdu_default = "60000000zz"', "tpdu_default",
     "10 hex digits"),
    ("visa-station-short", 'kind = "visa"\nsource_station = "12345"', "source_station", "6 digits"),
    ("visa-station-letters", 'kind = "visa"\ndestination_station = "12345A"', "destination_station",
     "6 digits"),
    ("visa-station-on-binary", 'kind = "binary2"\nsource_station = "123456"', "source_station", "unknown key"),
    ("visa-incl-prefix", 'kind = "visa"\nlength_includes_prefix = true', "length_includes_prefix",
     "unknown key"),
    ("cups-id-long", 'kind = "unionpay"\nsource_id = "123456789012"', "source_id", "11"),
    ("cups-id-non-ascii", 'kind = "unionpay"\ndestination_id = "银联"', "destination_id", "ASCII"),
    ("cups-incl-without-prefix", 'kind = "unionpay"\nlength_prefix = false\nlength_includes_prefix = true',
     "length_includes_prefix", "length_prefix"),
    ("cups-prefix-on-ascii4", 'kind = "ascii4"\nlength_prefix = true', "length_prefix", "unknown key"),
]


@pytest.mark.parametrize(("text", "key", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_tables(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.file == FILE
    assert info.value.key == f"{PREFIX}.{key}"
    assert reason in info.value.reason


def test_a_network_refuses_framing_that_is_not_its_own() -> None:
    with pytest.raises(ConfigError) as info:
        length_framing(table('kind = "visa"'), network="generic")
    assert info.value.key == f"{PREFIX}.kind"
    assert info.value.reason == ("framing 'visa' does not belong to network 'generic' "
                                 "(its framings: binary2, bcd2, ascii4)")


def test_framing_is_sans_io() -> None:
    # STYLE 1 / DESIGN 4: framing imports neither trio nor sqlalchemy (checked in a clean interpreter).
    import subprocess
    import sys

    code = ("import sys, switch.wire.framing, schemes.visa.framing, schemes.unionpay.framing; "
            "print(sorted({'trio', 'sqlalchemy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
