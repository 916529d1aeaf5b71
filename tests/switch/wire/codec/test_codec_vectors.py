"""Hand vectors: bytes worked out from the ISO 8583:1987 layout (MTI, bitmaps with bit 1 announcing the next
bitmap, fields in number order) and pyiso8583's spec rules, checked against the compiled codec and against
pyiso8583 itself."""

from __future__ import annotations

from typing import Any

import pytest

from schemes.generic import SPEC, SPEC_ASCII
from schemes.iso87 import Iso87Network
from switch.model.errors import DecodeError, EncodeError
from switch.wire import compiled
from switch.wire.codec import PyIsoCodec
from switch.wire.compiled import SpecError, compile_codec, samples

from .cases import HEADER_NO_SECONDARY, NEVER, f

SAMPLES = [samples.REQUEST_0200, samples.RESPONSE_0210, samples.ECHO_0800, samples.REVERSAL_0420]
SAMPLE_IDS = ["0200", "0210", "0800", "0420"]


def _both(spec: Any) -> list[Any]:
    """The compiled codec (plain, and with generated code from the first use) and the reference."""
    return [compile_codec("t", spec, hot_after=NEVER), compile_codec("t", spec, hot_after=1), PyIsoCodec("t", spec)]


def _decode_error(codec: Any, data: bytes) -> tuple[str, int]:
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    return info.value.field, info.value.position


# -- realistic messages -------------------------------------------------------------------------------------
ECHO_BINARY = (
    b"0800"
    + bytes.fromhex("8220000000000000")  # bits 1 (secondary follows), 7, 11
    + bytes.fromhex("0400000000000000")  # bit 70 = secondary bit 6
    + b"0115123045" + b"000124" + b"301"
)
ECHO_ASCII = b"0800" + b"8220000000000000" + b"0400000000000000" + b"0115123045000124301"


@pytest.mark.parametrize(("spec", "wire"), [(SPEC, ECHO_BINARY), (SPEC_ASCII, ECHO_ASCII)], ids=["bin", "ascii"])
def test_echo_0800_bytes(spec: Any, wire: bytes) -> None:
    for codec in _both(spec):
        assert codec.encode(*samples.ECHO_0800) == wire
        for _ in range(2):
            assert codec.decode(wire) == samples.ECHO_0800


def test_request_0200_layout() -> None:
    wire = compile_codec("generic", SPEC).encode(*samples.REQUEST_0200)
    assert len(wire) == 322
    # Fields 2 3 4 7 | 11 12 13 | 18 22 23 | 25 32 | 35 37 | 41 42 43 | 49 52 55
    assert wire[:12] == b"0200" + bytes.fromhex("72384681 28E09200")
    assert wire[12:30] == b"164761739001010119"  # LLVAR PAN
    assert wire[-101:-98] == b"098"  # LLLVAR length of the 98 bytes of field 55
    assert wire[-98:] == bytes.fromhex(samples.REQUEST_ICC)


@pytest.mark.parametrize("spec", [SPEC, SPEC_ASCII], ids=["generic", "generic-ascii"])
@pytest.mark.parametrize("sample", SAMPLES, ids=SAMPLE_IDS)
def test_samples_match_pyiso8583(spec: Any, sample: tuple[str, dict[int, str]]) -> None:
    mti, fields = sample
    reference = PyIsoCodec("ref", spec)
    wire = reference.encode(mti, fields)
    for codec in _both(spec)[:2]:
        assert codec.encode(mti, fields) == wire
        # Lower-case hex in, upper-case hex out, as pyiso8583 does.
        lower = {n: v.lower() if n in (52, 55, 128) else v for n, v in fields.items()}
        assert codec.encode(mti, lower) == (wire if spec is SPEC else reference.encode(mti, lower))
        for _ in range(2):
            assert codec.decode(wire) == reference.decode(wire) == sample
            assert codec.decode(bytearray(wire)) == sample
            assert codec.decode(memoryview(wire)) == sample


def test_field_65_is_dropped_and_bitmap_numbers_refused() -> None:
    for codec in _both(SPEC):
        assert codec.encode("0800", {7: "0115123045", 65: "00" * 8}) == codec.encode("0800", {7: "0115123045"})
        for bad in (0, 1):
            with pytest.raises(EncodeError) as info:
                codec.encode("0800", {7: "0115123045", bad: "X"})
            assert info.value.field == str(bad)


# -- errors: field and position -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wire", "field", "position"),
    [
        (ECHO_BINARY + b"Z", "70", 39),  # one byte too many
        (ECHO_BINARY[:-1], "70", 36),  # field 70 cut short: reported at its start
        (ECHO_BINARY[:10], "p", 4),  # primary bitmap cut short
        (ECHO_BINARY[:15], "1", 12),  # secondary bitmap cut short
        (b"02", "t", 0),
        (b"0800" + bytes.fromhex("8000000000000000") + bytes(8) + b"Z", "1", 20),  # no field after the bitmaps
        (b"0\xff00" + ECHO_BINARY[4:], "t", 0),  # MTI is not ASCII
    ],
)
def test_error_field_and_position(wire: bytes, field: str, position: int) -> None:
    for codec in _both(SPEC):
        assert _decode_error(codec, wire) == (field, position)


def test_tertiary_bitmap_cut_short() -> None:
    spec = {**SPEC, "130": f("ascii", 0, 2)}
    wire = PyIsoCodec("t", spec).encode("0200", {130: "AB"})
    assert wire[4:28] == bytes.fromhex("8000000000000000" "8000000000000000" "4000000000000000")
    for codec in _both(spec):
        assert codec.decode(wire) == ("0200", {130: "AB"})
        assert _decode_error(codec, wire[:25]) == ("1", 20)


def test_truncated_run_of_binary_fields() -> None:
    """52 and 53 are fixed binary fields side by side; cut the message inside 53."""
    spec = {**SPEC, "53": f("b", 0, 8)}
    wire = PyIsoCodec("t", spec).encode("0200", {52: "11" * 8, 53: "22" * 8})
    for codec in _both(spec):
        for _ in range(2):
            codec.decode(wire)
        assert _decode_error(codec, wire[:-1]) == ("53", 20)


# -- lengths and pads: pyiso8583's exact rules --------------------------------------------------------------
ODD_SPEC = {
    "h": f("ascii", 0, 0),
    "t": f("ascii", 0, 4),
    "p": f("b", 0, 8),
    "2": f("ascii", 2, 20),
    "3": f("ascii", 2, 20, len_count="nibbles"),
    "4": f("b", 1, 19, "b", len_count="nibbles", left_pad="0"),
    "5": f("b", 1, 19, "b", len_count="nibbles", right_pad="F"),
    "6": f("b", 1, 19, "b", len_count="nibbles", left_pad="F", right_pad="0"),
    "7": f("b", 0, 3, len_count="nibbles", right_pad="0"),
    "8": f("b", 0, 3, len_count="nibbles"),
    "9": f("no-such-codec", 2, 20),
}
# MTI and a primary bitmap with just the field's bit: the field starts at offset 12.
_HEAD = {n: b"0200" + (1 << (64 - n)).to_bytes(8, "big") for n in range(2, 10)}


@pytest.mark.parametrize(
    ("field", "body", "expected"),
    [
        # int() reads a length with a sign, blanks or an underscore; pyiso8583 follows it.
        (2, b"+3abc", "abc"),
        (2, b" 3abc", "abc"),
        (2, b"-0", ""),
        (2, b"-1", ("2", 14)),  # "Field data is 0 bytes, expecting -1", at the data
        (2, b"1_", ("2", 12)),
        (2, b"03ab", ("2", 14)),
        (2, b"21" + b"x" * 21, ("2", 12)),  # larger than max_len, at the length
        # A text field counted in nibbles: -1 nibbles is 0 bytes, so the value is empty.
        (3, b"-1", ""),
        (3, b"03ab", "ab"),
        (4, b"\x03\x01\x23", "123"),
        (4, b"\x03\x11\x23", ("4", 13)),  # the pad nibble is not there
        (5, b"\x03\x12\x3f", "123"),
        (5, b"\x03\x12\x30", ("5", 13)),
        (6, b"\x03\xf1\x23", "123"),  # left pad checked first...
        (6, b"\x03\x12\x30", "123"),  # ...then the right one
        (6, b"\x03\x12\x3f", ("6", 13)),
        (7, b"\x12\x30", "123"),
        (8, b"\x12\x30", ("8", 12)),  # odd length and no pad: never decodes
        (9, b"00", ""),  # an unknown codec is never used for an empty value
        (9, b"01a", ("9", 14)),
    ],
)
def test_length_and_pad_rules(field: int, body: bytes, expected: str | tuple[str, int]) -> None:
    wire = _HEAD[field] + body
    for codec in _both(ODD_SPEC):
        for _ in range(2):
            if isinstance(expected, str):
                assert codec.decode(wire) == ("0200", {field: expected})
            else:
                assert _decode_error(codec, wire) == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (4, "123", b"\x03\x01\x23"),
        (5, "123", b"\x03\x12\x3f"),
        (6, "123", b"\x03\xf1\x23"),  # left pad wins
        (6, "1234", b"\x04\x12\x34"),
        (7, "123", b"\x12\x30"),
        (8, "123", None),
        (8, "1234", None),
        (3, "ab", b"04ab"),  # 2 bytes are 4 nibbles
        (2, "x" * 21, None),
        (9, "", None),
    ],
)
def test_encode_pad_and_length_rules(field: int, value: str, expected: bytes | None) -> None:
    for codec in _both(ODD_SPEC):
        if expected is None:
            with pytest.raises(EncodeError) as info:
                codec.encode("0200", {field: value})
            assert info.value.field == str(field)
        else:
            assert codec.encode("0200", {field: value}) == _HEAD[field] + expected


def test_length_prefixes_beyond_the_tables() -> None:
    """Lengths past the shared tables (10,000 entries) take the exact path: a 2-byte binary length here."""
    spec = {**SPEC, "48": f("ascii", 2, 20_000, "b")}
    value = "A" * 12_345
    for codec in _both(spec):
        wire = codec.encode("0100", {48: value})
        assert wire[12:14] == (12_345).to_bytes(2, "big")
        assert codec.decode(wire) == ("0100", {48: value})
        with pytest.raises(EncodeError):
            codec.encode("0100", {48: "A" * 20_001})


# -- multi-byte text ------------------------------------------------------------------------------------------
GBK_SPEC = {**SPEC, "43": f("gbk", 0, 40), "61": f("gbk", 3, 200), "12": f("ascii", 0, 6)}
MERCHANT = "中国银联CHINA UNIONPAY SIMULATOR        "  # 36 characters, 40 bytes in GBK


def test_gbk_text_fields_count_bytes_and_round_trip() -> None:
    """UnionPay's GBK text: a fixed field of 40 bytes holds 36 characters here, a variable field's length counts
    bytes; neither joins a run of one-byte fields (their neighbours still decode right)."""
    wire = (b"0100" + bytes.fromhex("0010000000200008") + b"123456" + MERCHANT.encode("gbk")
            + b"009" + "钱文安".encode("gbk") + b"abc")
    assert MERCHANT.encode("gbk")[:8].hex().upper() == "D6D0B9FAD2F8C1AA"
    for codec in _both(GBK_SPEC):
        for _ in range(3):
            assert codec.decode(wire) == ("0100", {12: "123456", 43: MERCHANT, 61: "钱文安abc"})
        assert codec.encode("0100", {12: "123456", 43: MERCHANT, 61: "钱文安abc"}) == wire
        with pytest.raises(EncodeError):  # 40 characters of which 4 take two bytes: 44 bytes
            codec.encode("0100", {43: "中国银联" + "X" * 36})
        with pytest.raises(EncodeError):  # not a GBK character
            codec.encode("0100", {61: "\u0e01"})


def test_bytes_that_are_not_gbk_are_a_decode_error_at_the_field() -> None:
    half = (b"0100" + bytes.fromhex("0000000000200000") + "中国银联".encode("gbk")[:7] + b" "
            + b"A" * 32)  # a character cut in half: its lead byte, then a space
    decisions = {(_decode_error(codec, half)) for codec in _both(GBK_SPEC)}
    assert decisions == {("43", 12)}


# -- headers and missing bitmaps ----------------------------------------------------------------------------
def test_header_spec_decodes_but_cannot_encode() -> None:
    """The Codec interface carries no header, so pyiso8583 refuses to encode for a spec that has one."""
    body = b"05HELLO" + b"0800" + b"0220000000000000" + b"0115123045" + b"000124"
    for codec in _both(HEADER_NO_SECONDARY):
        assert codec.decode(body) == ("0800", {7: "0115123045", 11: "000124"})
        with pytest.raises(EncodeError) as info:
            codec.encode("0800", {7: "0115123045"})
        assert info.value.field == "h"


def test_bit_one_without_a_secondary_bitmap_in_the_spec() -> None:
    body = b"05HELLO" + b"0800" + b"8220000000000000" + b"0400000000000000" + b"0115123045000124301"
    for codec in _both(HEADER_NO_SECONDARY)[:2]:
        assert _decode_error(codec, body)[0] == "1"
    with pytest.raises(DecodeError):
        PyIsoCodec("ref", HEADER_NO_SECONDARY).decode(body)


def test_undefined_field_is_refused() -> None:
    spec = {k: v for k, v in SPEC.items() if k != "48"}
    wire = PyIsoCodec("ref", SPEC).encode("0100", {11: "000001", 48: "XYZ"})
    for codec in _both(spec)[:2]:
        assert _decode_error(codec, wire) == ("48", 18)
        with pytest.raises(EncodeError) as info:
            codec.encode("0100", {11: "000001", 48: "XYZ"})
        assert info.value.field == "48"
        with pytest.raises(EncodeError) as info:
            codec.encode("0100", {11: "000001", 193: "X"})
        assert info.value.field == "p"


# -- the spec itself ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"t": None}, "t"),
        ({"2": {"data_enc": "ascii", "len_type": "2", "max_len": 19}}, "2"),
        ({"2": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 2, "max_len": -1}}, "2"),
        ({"3": {"data_enc": "b", "len_type": 0, "max_len": 3, "len_count": "digits"}}, "3"),
        ({"4": {"data_enc": 1, "len_type": 0, "max_len": 12}}, "4"),
        ({"35": {"data_enc": "ascii", "len_type": 2, "max_len": 37}}, "35"),  # no len_enc
    ],
)
def test_malformed_spec_is_refused_at_load(change: dict[str, Any], key: str) -> None:
    spec = {k: v for k, v in {**SPEC, **change}.items() if v is not None}
    with pytest.raises(SpecError) as info:
        compile_codec("broken", spec)
    assert info.value.key == key
    assert "broken" in str(info.value)


# -- in use -------------------------------------------------------------------------------------------------
def test_scheme_adapter_over_the_compiled_codec() -> None:
    fast = Iso87Network(name="generic", codec=compile_codec("generic", SPEC))
    slow = Iso87Network(name="generic", codec=PyIsoCodec("generic", SPEC))
    wire = slow.codec.encode(*samples.REQUEST_0200)
    message = fast.decode(wire)
    assert message.mti == "0200"
    assert message[55] == bytes.fromhex(samples.REQUEST_ICC)
    assert message[52] == bytes.fromhex("0123456789ABCDEF")
    fast.validate(message)
    response = fast.make_response(message, "00")
    assert fast.encode(response) == slow.encode(slow.make_response(slow.decode(wire), "00"))


def test_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer sending ever new bitmaps (and MTIs) cannot grow the plan caches past their limit."""
    monkeypatch.setattr(compiled.codec, "CACHE_LIMIT", 8)
    codec = compile_codec("generic", SPEC, hot_after=2)
    reference = PyIsoCodec("ref", SPEC)
    for n in range(2, 60):
        fmt = SPEC[str(n)]
        size = fmt["max_len"] if fmt["len_type"] == 0 else 1
        value = "11" * size if fmt["data_enc"] == "b" else "1" * size
        wire = reference.encode(f"0{n % 10}00", {n: value, 11: f"{n:06d}", 41: "T0000001"})
        for _ in range(3):
            assert codec.decode(wire) == reference.decode(wire)
    caches = [codec._heads, *codec._plans, codec._compiled, codec._encode_plans]
    assert max(len(cache) for cache in caches) <= 8


def test_run_of_fixed_fields_checks_each_length() -> None:
    """Fields 3 and 4 side by side: one character too many in 3 and one too few in 4 is an error in 3,
    although the two together have the right length."""
    for codec in _both(SPEC):
        with pytest.raises(EncodeError) as info:
            codec.encode("0200", {3: "0100001", 4: "00000001000", 11: "000001"})
        assert info.value.field == "3"
        # The same with binary fields 52 and 64 (nothing between them: one run).
        with pytest.raises(EncodeError) as info:
            codec.encode("0200", {52: "11" * 9, 64: "22" * 7})
        assert info.value.field == "52"


def test_multibyte_text_is_not_cut_across_fields() -> None:
    """UTF-8 is not one byte per character: a character split between two fixed fields fails in the first."""
    spec = {**SPEC, "60": f("utf-8", 0, 2), "61": f("utf-8", 0, 2)}
    head = b"0100" + bytes.fromhex("0000000000000018")  # fields 60 and 61
    for codec in _both(spec):
        for _ in range(2):
            assert codec.decode(head + b"ab" + b"cd") == ("0100", {60: "ab", 61: "cd"})
            assert codec.decode(head + "é".encode() + b"cd") == ("0100", {60: "é", 61: "cd"})
        assert _decode_error(codec, head + b"a\xc3" + b"\xa9b") == ("60", 12)


# Packed BCD as VISA writes it (jPOS base1.xml): a fixed n3 left-padded (49), a fixed n3 right-padded (22), and
# variable digits after a binary length counting digits (2 even, 32 odd and left-padded).
BCD_SPEC: dict[str, dict[str, Any]] = {
    "h": f("b", 0, 0), "t": f("b", 0, 2), "p": f("b", 0, 8),
    "2": f("b", 1, 19, "b", len_count="nibbles", left_pad="0"),
    "22": f("b", 0, 3, len_count="nibbles", right_pad="0"),
    "32": f("b", 1, 11, "b", len_count="nibbles", left_pad="0"),
    "49": f("b", 0, 3, len_count="nibbles", left_pad="0"),
}
BCD_WIRE = (bytes.fromhex("0100") + bytes.fromhex("4000040100008000")
            + bytes.fromhex("10" "4761739001010010") + bytes.fromhex("0510") + bytes.fromhex("05" "012345")
            + bytes.fromhex("0840"))
BCD_FIELDS = {2: "4761739001010010", 22: "051", 32: "12345", 49: "840"}


def test_packed_bcd_decodes_on_the_generated_path(monkeypatch: pytest.MonkeyPatch) -> None:
    for codec in _both(BCD_SPEC):
        assert codec.encode("0100", BCD_FIELDS) == BCD_WIRE
        assert codec.decode(BCD_WIRE) == ("0100", BCD_FIELDS)
    hot = compile_codec("t", BCD_SPEC, hot_after=1)
    hot.decode(BCD_WIRE)

    def exact_step_used(*args: object) -> str:
        raise AssertionError("the exact step ran")

    # Once hot, odd digit counts are unpadded by the generated code, not by the fields' exact steps.
    monkeypatch.setattr(compiled._fields, "_unpad", exact_step_used)
    assert hot.decode(BCD_WIRE) == ("0100", BCD_FIELDS)
    # A pad nibble that is not the spec's still ends in the exact step's error, at the field's data.
    bad = BCD_WIRE[:-2] + bytes.fromhex("1840")
    monkeypatch.undo()
    assert _decode_error(hot, bad) == _decode_error(PyIsoCodec("t", BCD_SPEC), bad)
