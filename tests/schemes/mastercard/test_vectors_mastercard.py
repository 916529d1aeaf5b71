"""Public Mastercard samples (tests/schemes/mastercard/vectors.py) decoded field by field as their source decodes
them, and encoded back byte for byte, by the compiled codec and by pyiso8583 (the reference) alike."""

from __future__ import annotations

import iso8583
import pytest

from processors.emvtlv import parse as parse_tlv
from schemes.mastercard import NETWORK
from schemes.mastercard.fields import banknet_reference, parse_de48, parse_de61, parse_de63
from schemes.mastercard.link import codec_for
from schemes.mastercard.spec import SPEC
from switch.model.message import Message

from . import vectors as v


@pytest.mark.parametrize(("wire", "expected"), [(v.AUTH_0100, v.AUTH_0100_FIELDS),
                                                  (v.AUTH_0100_DE56, v.AUTH_0100_DE56_FIELDS)])
def test_public_0100_decodes_field_by_field_and_encodes_back(wire: bytes, expected: dict[int, str]) -> None:
    msg = NETWORK.decode(wire)
    assert msg.mti == "0100" and msg.meta.scheme == "mastercard"
    for number, value in expected.items():
        assert msg[number] == value, number
    assert NETWORK.encode(msg) == wire
    # The reference decoder reads the same fields; the compiled codec's output is pyiso8583's.
    doc, _ = iso8583.decode(bytearray(wire), SPEC)
    assert codec_for("cp500").decode(wire)[1] == {int(k): val for k, val in doc.items() if k.isdigit() and k != "1"}
    assert codec_for("cp500").encode("0100", codec_for("cp500").decode(wire)[1]) == iso8583.encode(doc, SPEC)[0]


def test_icc_data_is_bytes_and_its_tags_read() -> None:
    msg = NETWORK.decode(v.AUTH_0100)
    icc = msg[55]
    assert isinstance(icc, bytes)
    assert tuple(parse_tlv(icc)) == v.AUTH_0100_ICC_TAGS


def test_structured_fields_of_the_public_0100() -> None:
    msg = NETWORK.decode(v.AUTH_0100)
    de48 = parse_de48(str(msg[48]))
    assert de48.tcc == "R" and de48.subelements == (("23", "00"), ("61", "00001"))
    pos = parse_de61(str(msg[61]))
    assert (pos.sub(11), pos.sub(12), pos.country, pos.sub(14)) == ("3", "00", "643", "644047")
    network_data = parse_de63(str(msg[63]))
    assert (network_data.network_code, network_data.banknet_reference) == ("TNW", "QBPE00")
    assert banknet_reference(msg) == "QBPE00"


def test_a_long_de48_with_binary_bytes_in_a_subelement_parses_and_comes_back_unchanged() -> None:
    msg = NETWORK.decode(v.AUTH_0100_DE56)
    text = str(msg[48])
    data = parse_de48(text)
    assert data.tcc == "X"
    assert [tag for tag, _ in data.subelements] == ["26", "30", "33", "34", "61", "64", "71", "72"]
    assert str(data) == text  # built back character for character, sub-element 72's bytes included
    assert NETWORK.encode(msg) == v.AUTH_0100_DE56


def test_json_pair_goes_to_the_wire_and_back() -> None:
    request = Message("0100", {**v.JSON_PAIR_0100, 48: "R"})
    response = Message("0110", dict(v.JSON_PAIR_0110))
    for msg in (request, response):
        back = NETWORK.decode(NETWORK.encode(msg))
        assert back.mti == msg.mti and back.fields == msg.fields
    assert parse_de48(v.JSON_ECOM_DE48).subelements == (("42", "0103210"), ("61", "00000"))


def test_cp037_reads_the_same_samples_where_the_code_pages_agree() -> None:
    # The samples use letters, digits, space, '+' and '=' only: cp037 and cp500 agree on all of them.
    assert codec_for("cp037").decode(v.AUTH_0100) == codec_for("cp500").decode(v.AUTH_0100)
