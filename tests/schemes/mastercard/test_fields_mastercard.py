"""Mastercard's structured fields: DE 48 (TCC and sub-elements, unknown ones kept, secret ones hidden and never
echoed), DE 61, DE 63 (the Banknet reference), DE 95 and DE 112; malformed values end in a FieldError naming the
field, never the value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemes.mastercard.fields import (
    AdditionalData,
    build_de48,
    de95_from_canonical,
    echo_de48,
    mask_de48,
    parse_de48,
    parse_de61,
    parse_de63,
    parse_de95,
    parse_de112,
    pos_data,
)
from switch.model.errors import FieldError


def test_de48_reads_tcc_and_subelements_and_builds_them_back() -> None:
    text = "P420701032107703C07"  # the reference's decoded sample
    data = parse_de48(text)
    assert data.tcc == "P"
    assert data.subelements == (("42", "0103210"), ("77", "C07"))
    assert build_de48(data) == text
    assert data.get("77") == "C07" and data.get("92") is None


def test_unknown_subelements_keep_their_place_when_one_is_set() -> None:
    data = parse_de48("R99031234501X")
    changed = data.with_subelement("11", "U" + "A" * 32 + "123456")
    assert [tag for tag, _ in changed.subelements] == ["99", "45", "11"]
    assert str(changed).startswith("R99031234501X1139U")
    replaced = changed.with_subelement("99", "ABC")
    assert [tag for tag, _ in replaced.subelements] == ["99", "45", "11"] and replaced.get("99") == "ABC"


def test_network_management_de48_has_no_tcc() -> None:
    assert parse_de48("1106ABCDEF", tcc=False).subelements == (("11", "ABCDEF"),)


@pytest.mark.parametrize("text", ["", "R1", "R12", "R9905ABC", "R4X0712", "\x00230200"])
def test_malformed_de48_is_a_field_error_naming_no_value(text: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_de48(text)
    assert info.value.field == 48
    assert "ABC" not in str(info.value)


def test_secret_subelements_are_hidden_in_logs_and_not_echoed() -> None:
    text = "T920312342070103210" + "1106" + "SECRET"
    shown = mask_de48(text)
    assert shown == "tcc=T 92=<3 hidden> 42=0103210 11=<6 hidden>"
    assert "123" not in shown and "SECRET" not in shown
    assert echo_de48(text, "0100") == "T42070103210"
    assert echo_de48("T9", "0100") is None  # does not parse: nothing echoed


def test_de61_positions() -> None:
    pos = parse_de61("0000010000300643644047")
    assert pos.sub(6) == "1" and pos.sub(11) == "3" and pos.country == "643" and pos.sub(14) == "644047"
    built = pos_data(attended=False, cat_level="1", input_capability="2", country="840")
    assert built == "10000000012" + "00" + "840"
    assert str(parse_de61(built)) == built
    with pytest.raises(FieldError):
        parse_de61("0000")


def test_de63_banknet_reference() -> None:
    data = parse_de63("MCCABC1230107")
    assert (data.network_code, data.banknet_reference, data.rest) == ("MCC", "ABC123", "0107")
    assert str(data) == "MCCABC1230107"
    with pytest.raises(FieldError):
        parse_de63("MCC12")


def test_de95_layouts() -> None:
    amounts = parse_de95("000000001500" + "000000001500" + "000000000000" + "000000")
    assert amounts.transaction == "000000001500"
    assert str(amounts) == "000000001500" * 2 + "0" * 18
    # ISO 8583:1987 hosts put fees (sign and 8 digits) after the two actual amounts: Mastercard carries zeros there.
    assert de95_from_canonical("000000001500000000001500C00000000D00000025") == "000000001500" * 2 + "0" * 18
    with pytest.raises(ValueError):
        de95_from_canonical("00000000150X" + "0" * 30)
    with pytest.raises(FieldError):
        parse_de95("12")


def test_de112_subelements() -> None:
    assert parse_de112("001003ABC010000") == (("001", "ABC"), ("010", ""))
    with pytest.raises(FieldError):
        parse_de112("0010")


tags = st.text("0123456789", min_size=2, max_size=2)
values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=99)


@given(st.sampled_from("RTZXPCU"), st.lists(st.tuples(tags, values), max_size=8))
def test_de48_round_trip(tcc: str, items: list[tuple[str, str]]) -> None:
    data = AdditionalData(tcc, tuple(items))
    assert parse_de48(build_de48(data)) == data
