"""Loading framing settings from a TOML table: typed values, unknown keys and misplaced settings refused."""

from __future__ import annotations

import tomllib

import pytest

from switch.model.errors import ConfigError
from switch.wire.framing import (
    Ascii4Framer,
    Bcd2Framer,
    Binary2Framer,
    FramingConfig,
    UnionPayFramer,
    VisaFramer,
    framing_config_from_dict,
    make_framer,
)

FILE = "links.toml"
PREFIX = "links.acq1.framing"


def load(text: str) -> FramingConfig:
    return framing_config_from_dict(tomllib.loads(text), FILE, PREFIX)


def test_full_binary2_table() -> None:
    config = load(
        'kind = "binary2"\ntpdu = true\ntpdu_default = "6000120000"\nlength_includes_prefix = true\n'
        "max_frame = 4096\nkeepalive_echo = false\n"
    )
    assert config == FramingConfig(
        "binary2", tpdu=True, tpdu_default=bytes.fromhex("6000120000"), length_includes_prefix=True,
        max_frame=4096, keepalive_echo=False,
    )


def test_visa_and_unionpay_tables() -> None:
    visa = load('kind = "visa"\nvisa_source_station = "123456"\nvisa_destination_station = "400050"\n')
    assert (visa.visa_source_station, visa.visa_destination_station) == ("123456", "400050")
    cups = load(
        'kind = "unionpay"\nunionpay_length_prefix = true\nunionpay_source_id = "48020000"\n'
        'unionpay_destination_id = "00010000"\nunionpay_test_flag = true\n'
    )
    assert cups.unionpay_length_prefix and cups.unionpay_test_flag
    assert cups.unionpay_source_id == "48020000"


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("binary2", Binary2Framer), ("bcd2", Bcd2Framer), ("ascii4", Ascii4Framer), ("visa", VisaFramer),
     ("unionpay", UnionPayFramer)],
)
def test_make_framer_kinds(kind: str, cls: type) -> None:
    assert isinstance(make_framer(load(f'kind = "{kind}"')), cls)


def test_make_framer_gives_independent_buffers() -> None:
    config = FramingConfig("binary2")
    first, second = make_framer(config), make_framer(config)
    first.receive_data(b"\x00")
    assert (first.buffered, second.buffered) == (1, 0)


BAD: list[tuple[str, str, str, str]] = [
    ("unknown-key", 'kind = "binary2"\ntpud = true', "tpud", "did you mean 'tpdu'"),
    ("missing-kind", "tpdu = true", "kind", "missing"),
    ("bad-kind", 'kind = "binary4"', "kind", "unknown framing"),
    ("kind-not-string", "kind = 2", "kind", "expected a string"),
    ("bool-as-string", 'kind = "binary2"\ntpdu = "yes"', "tpdu", "true or false"),
    ("max-frame-bool", 'kind = "binary2"\nmax_frame = true', "max_frame", "integer"),
    ("max-frame-zero", 'kind = "binary2"\nmax_frame = 0', "max_frame", "integer"),
    ("max-frame-huge", 'kind = "binary2"\nmax_frame = 70000', "max_frame", "integer"),
    ("max-frame-float", 'kind = "binary2"\nmax_frame = 8192.0', "max_frame", "integer"),
    ("tpdu-ascii4", 'kind = "ascii4"\ntpdu = true', "tpdu", "does not apply"),
    ("tpdu-visa", 'kind = "visa"\ntpdu = false', "tpdu", "does not apply"),
    ("tpdu-default-short", 'kind = "binary2"\ntpdu_default = "600000"', "tpdu_default", "10 hex digits"),
    ("tpdu-default-not-hex", 'kind = "binary2"\ntpdu_default = "60000000zz"', "tpdu_default",
     "10 hex digits"),
    ("visa-station-short", 'kind = "visa"\nvisa_source_station = "12345"', "visa_source_station", "6 digits"),
    ("visa-station-letters", 'kind = "visa"\nvisa_destination_station = "12345A"', "visa_destination_station",
     "6 digits"),
    ("visa-station-on-binary", 'kind = "binary2"\nvisa_source_station = "123456"', "visa_source_station",
     "does not apply"),
    ("visa-incl-prefix", 'kind = "visa"\nlength_includes_prefix = true', "length_includes_prefix",
     "does not apply"),
    ("cups-id-long", 'kind = "unionpay"\nunionpay_source_id = "123456789012"', "unionpay_source_id", "11"),
    ("cups-id-non-ascii", 'kind = "unionpay"\nunionpay_destination_id = "银联"', "unionpay_destination_id",
     "ASCII"),
    ("cups-incl-without-prefix", 'kind = "unionpay"\nlength_includes_prefix = true', "length_includes_prefix",
     "unionpay_length_prefix"),
    ("cups-prefix-on-ascii4", 'kind = "ascii4"\nunionpay_length_prefix = true', "unionpay_length_prefix",
     "does not apply"),
]


@pytest.mark.parametrize(("text", "key", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_tables(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.file == FILE
    assert info.value.key == f"{PREFIX}.{key}"
    assert reason in info.value.reason


def test_empty_prefix_names_bare_keys() -> None:
    with pytest.raises(ConfigError) as info:
        framing_config_from_dict({"kind": "nope"}, FILE, "")
    assert info.value.key == "kind"


def test_framing_is_sans_io() -> None:
    # STYLE 1 / DESIGN 4: framing imports neither trio nor sqlalchemy (checked in a clean interpreter).
    import subprocess
    import sys

    code = "import sys, switch.wire.framing; print(sorted({'trio', 'sqlalchemy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
