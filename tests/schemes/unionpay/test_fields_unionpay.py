"""UnionPay private fields: DE 48 and DE 63 between wire bytes and canonical text (exact both ways), DE 53, DE 54
and DE 90 parsed into structures and rebuilt, GBK byte for byte, and what of them is masked."""

from __future__ import annotations

import pytest

from schemes.unionpay import SCHEME
from schemes.unionpay.fields import (
    AdditionalData,
    Balance,
    OriginalData,
    SecurityControl,
    build_additional_data,
    build_balances,
    de48_from_wire,
    de48_to_wire,
    de63_from_wire,
    de63_to_wire,
    mask_de48,
    mask_de61,
    mask_de63,
    parse_additional_data,
    parse_balances,
)
from switch.model.errors import FieldError

from . import vectors as v

KEY = bytes.fromhex("4393590FF157B782DDBE18332531120C")


def test_every_gbk_character_goes_back_to_its_bytes() -> None:
    """The claim the spec rests on: decoding GBK and encoding back is exact for every two-byte sequence GBK
    defines, and for ASCII."""
    checked = 0
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            raw = bytes((lead, trail))
            try:
                text = raw.decode("gbk")
            except UnicodeDecodeError:
                continue
            assert text.encode("gbk") == raw
            checked += 1
    assert checked > 21_000
    ascii_bytes = bytes(range(128))
    assert ascii_bytes.decode("gbk").encode("gbk") == ascii_bytes


# -- DE 48 -------------------------------------------------------------------------------------------------
def test_de48_new_key_is_hex_in_the_message_and_bytes_on_the_wire() -> None:
    assert de48_from_wire(b"NK" + KEY) == "NK4393590FF157B782DDBE18332531120C"
    assert de48_to_wire("NK4393590FF157B782DDBE18332531120C") == b"NK" + KEY
    assert parse_additional_data("NK4393590FF157B782DDBE18332531120C").key_bytes == KEY


def test_de48_text_usages_are_gbk() -> None:
    raw = b"AA" + "受理方附加信息 shop 7".encode("gbk")
    text = de48_from_wire(raw)
    assert text == "AA受理方附加信息 shop 7"
    assert de48_to_wire(text) == raw
    with pytest.raises(ValueError):
        de48_from_wire(b"AA\xc1 ")  # a GBK lead byte then a space
    with pytest.raises(ValueError):
        de48_to_wire("NK12 34")  # hex with a space is not exact
    with pytest.raises(ValueError):
        de48_to_wire("AA\u0e01")  # Thai: not in GBK


def test_de48_service_usage_sub_elements_count_bytes() -> None:
    built = build_additional_data("AS", elements=(("ON", "订单12"), ("XX", "")))
    assert built == "ASON006订单12XX000"
    parsed = parse_additional_data(built)
    assert parsed == AdditionalData("AS", "ON006订单12XX000", (("ON", "订单12"), ("XX", "")))
    assert build_additional_data(parsed.usage, elements=parsed.elements) == built
    assert parse_additional_data("AA free text").elements == ()


@pytest.mark.parametrize("text", ["A", "ASON00", "ASON010short", "ASO", "NKXYZ"])
def test_malformed_de48_is_a_field_error(text: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_additional_data(text)
    assert info.value.field == 48


# -- DE 63 -------------------------------------------------------------------------------------------------
def test_de63_entries_binary_and_text() -> None:
    raw = b"SM016" + KEY + b"TK005" + "令牌X".encode("gbk")
    text = de63_from_wire(raw)
    assert text == "SM0164393590FF157B782DDBE18332531120CTK005令牌X"
    assert de63_to_wire(text) == raw
    assert de63_from_wire(b"") == "" and de63_to_wire("") == b""


@pytest.mark.parametrize("raw", [b"S", b"SM01", b"SM016" + KEY[:5], b"SMx16" + KEY, b"TK002\xc1 "],
                         ids=["tag-only", "short-length", "short-value", "length-not-digits", "not-gbk"])
def test_malformed_de63_wire_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        de63_from_wire(raw)


@pytest.mark.parametrize("text", ["SM002ABC", "SM00241", "TK003令", "TK", "TK00xabc", "SM001ZZ"])
def test_canonical_de63_that_cannot_be_carried_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        de63_to_wire(text)


# -- DE 53, 54, 90 -----------------------------------------------------------------------------------------
def test_de53() -> None:
    control = SecurityControl.parse("1600000000000000")
    assert (control.key_type, control.method, control.reserved) == ("1", "6", "0" * 14)
    assert str(control) == "1600000000000000"
    for bad in ("160000000000000", "16000000000000000", "16000000000000x0"):
        with pytest.raises(FieldError):
            SecurityControl.parse(bad)


def test_de54_balances_parsed_and_rebuilt() -> None:
    text = "3001156C0000017971003002156D000004810938"
    balances = parse_balances(text)
    assert balances == (Balance("30", "01", "156", "C", 1797100), Balance("30", "02", "156", "D", 4810938))
    assert [b.signed for b in balances] == [1797100, -4810938]
    assert build_balances(balances) == text
    assert build_balances([Balance("10", "02", "840", "C", 0)]) == "1002840C000000000000"


@pytest.mark.parametrize("text", ["", "3001156C00000179710", "3001156X000001797100", "3001156C00000179710A",
                                  "3001156C000001797100" + "30"])
def test_malformed_de54_is_a_field_error(text: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_balances(text)
    assert info.value.field == 54


@pytest.mark.parametrize("balance", [Balance("30", "01", "156", "+", 1), Balance("30", "01", "156", "C", 10**12),
                                     Balance("3", "01", "156", "C", 1), Balance("30", "01", "CNY", "C", 1)])
def test_a_balance_that_cannot_be_carried_is_refused(balance: Balance) -> None:
    with pytest.raises(ValueError):
        build_balances([balance])


def test_de90() -> None:
    original = OriginalData.of("0200", "863743", "0825112400", "92250000", "92250000")
    assert str(original) == "0200" "863743" "0825112400" "00092250000" "00092250000"
    assert OriginalData.parse(str(original)) == original
    with pytest.raises(FieldError):
        OriginalData.parse("0200863743")
    with pytest.raises(ValueError):
        str(OriginalData.of("0200", "1", "0825112400", "1", "1"))


# -- masking -----------------------------------------------------------------------------------------------
def test_masking_of_private_fields() -> None:
    assert mask_de48("NK4393590FF157B782DDBE18332531120C") == "NK <16 bytes hidden>"
    assert mask_de48("ASON0401222112221122211222112221122211222112221") == (
        "AS ON=1222112221122211222112221122211222112221")
    assert mask_de48("AAplain") == "AAplain"
    de61 = "00" + "110101199003077777" + "XX" + "0" + "0" + "CUP" + "123" + "  CUPAM001"
    masked = mask_de61(de61)
    assert "110101199003077777" not in masked and "123" not in masked[27:30]
    assert masked == "00" + "*" * 20 + "00CUP" + "***" + "  CUPAM001"
    assert mask_de63("SM0164393590FF157B782DDBE18332531120CTK002ab") == "SM=<16 bytes hidden> TK=ab"


def test_a_decoded_message_shows_no_secret_in_its_masked_form() -> None:
    reset = SCHEME.decode(v.EASY_PIN_RESET_0800[46:])
    shown = " ".join(reset.masked().values())
    assert "4393590F" not in shown and "NK <16 bytes hidden>" in shown
    assert reset.masked()["53"] == "1600000000000000"  # flags, not a secret
    inquiry = SCHEME.decode(v.ALATKA_0200_INQUIRY)
    shown = repr(inquiry)
    assert "E069374A" not in shown and "SM=<16 bytes hidden>" in shown
    assert "6251880000051688" not in shown and "625188******1688" in shown
    cardholder = SCHEME.decode(v.ALATKA_0110_GBK).masked()["61"]
    assert cardholder.startswith("00" + "*" * 20) and "钱文安" in cardholder
    # A value the masker cannot read is hidden whole rather than shown.
    assert SCHEME.masking.field(63, "garbage") == "<7 chars hidden>"
