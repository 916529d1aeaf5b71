"""The canonical message and the generic/ATM adapters: wire bytes, masking, response building."""

from __future__ import annotations

import pytest

from schemes.atm import SCHEME as ATM
from schemes.generic import SCHEME as GENERIC
from schemes.generic import SCHEME_ASCII
from switch.model.codes import ResponseCode
from switch.model.errors import DecodeError, FieldError, UnknownMtiError
from switch.model.message import Message, match_mti, response_mti

PAN = "4761739001010119"


def purchase() -> Message:
    return Message("0200", {
        2: PAN, 3: "000000", 4: "000000012345", 7: "1122033015", 11: "000123", 12: "033015", 13: "1122",
        22: "051", 35: PAN + "=25122011000012345678", 37: "532603000123", 41: "TERM0001",
        42: "MERCHANT0000001", 49: "840", 52: bytes.fromhex("0123456789ABCDEF"),
        55: bytes.fromhex("9F2608A1B2C3D4E5F60718"),
    })


def test_generic_wire_layout_is_ascii_fields_with_binary_bitmap() -> None:
    msg = Message("0800", {7: "1122033015", 11: "000001", 70: "301"})
    wire = GENERIC.encode(msg)
    # MTI as ASCII, then the primary bitmap (bit 1 set: secondary present, bits 7 and 11), then the
    # secondary bitmap with bit 70, then the fields in order.
    assert wire[:4] == b"0800"
    assert wire[4:12] == bytes.fromhex("8220000000000000")
    assert wire[12:20] == bytes.fromhex("0400000000000000")
    assert wire[20:] == b"1122033015" + b"000001" + b"301"


def test_generic_ascii_variant_carries_hex_bitmap_and_hex_binary_fields() -> None:
    msg = Message("0100", {2: PAN, 3: "000000", 4: "000000000100", 11: "000009",
                           52: bytes.fromhex("0011223344556677")})
    wire = SCHEME_ASCII.encode(msg)
    assert wire[:20] == b"0100" + b"7020000000001000"  # fields 2, 3, 4 | 11 | 52
    assert wire.endswith(b"0011223344556677")
    back = SCHEME_ASCII.decode(wire)
    assert back.fields[52] == bytes.fromhex("0011223344556677")
    assert back == msg


def test_round_trip_keeps_every_field() -> None:
    msg = purchase()
    assert GENERIC.decode(GENERIC.encode(msg)) == msg


def test_repr_masks_card_data() -> None:
    text = repr(purchase())
    assert PAN not in text
    assert "476173******0119" in text
    assert "0123456789" not in text.upper()
    assert "<8 bytes hidden>" in text
    assert "25122011" not in text  # track 2 discretionary data


def test_pan_from_track2_when_field_2_is_absent() -> None:
    msg = purchase()
    del msg[2]
    assert msg.pan == PAN
    assert msg.masked_pan == "476173******0119"


@pytest.mark.parametrize(("mti", "expected"), [
    ("0100", "0110"), ("0200", "0210"), ("0401", "0410"), ("0420", "0430"), ("0421", "0430"), ("0800", "0810"),
])
def test_response_mti(mti: str, expected: str) -> None:
    assert response_mti(mti) == expected
    assert match_mti(mti) == match_mti(expected)


def test_make_response_echoes_request_fields_not_secrets() -> None:
    resp = GENERIC.make_response(purchase(), ResponseCode.APPROVED)
    assert resp.mti == "0210"
    assert resp[39] == "00"
    for n in (2, 3, 4, 7, 11, 37, 41, 49):
        assert resp[n] == purchase()[n]
    for n in (35, 52, 55):
        assert n not in resp


def test_match_key_pairs_request_and_response() -> None:
    req = purchase()
    assert GENERIC.match_key(req) == GENERIC.match_key(GENERIC.make_response(req, "05"))
    assert GENERIC.match_key(req) == ("020", "000123", "TERM0001")


def test_decode_error_is_typed_and_carries_field_and_position() -> None:
    wire = GENERIC.encode(purchase())
    with pytest.raises(DecodeError) as info:
        GENERIC.decode(wire[:40])
    assert info.value.field.isdigit()
    assert info.value.position > 0
    assert PAN not in str(info.value)


def test_unknown_mti_is_rejected() -> None:
    wire = GENERIC.encode(Message("0800", {11: "000001", 70: "301"}))
    with pytest.raises(UnknownMtiError):
        GENERIC.decode(b"0900" + wire[4:])


def test_salvage_reads_fields_before_the_bad_one() -> None:
    wire = bytearray(GENERIC.encode(purchase()))
    # Corrupt field 4 (non-digits where n12 belongs is still decodable as ASCII), so cut the message inside
    # field 37 instead: 2, 3, 4, 7, 11 ... are readable, 37 is truncated.
    cut = wire.index(b"532603000123")
    salvaged = GENERIC.salvage(bytes(wire[: cut + 3]))
    assert salvaged is not None
    assert salvaged.mti == "0200"
    assert salvaged.stan == "000123"
    assert 37 not in salvaged


def test_validate_requires_iso_mandatory_fields() -> None:
    msg = purchase()
    del msg[11]
    with pytest.raises(FieldError) as info:
        GENERIC.validate(msg)
    assert info.value.field == 11
    bad = purchase()
    bad[4] = "12AB"
    with pytest.raises(FieldError):
        GENERIC.validate(bad)


def test_atm_adapter_requires_pin_block_when_pin_entered() -> None:
    msg = purchase()
    msg[3] = "011000"
    ATM.validate(msg)  # complete withdrawal is fine
    del msg[52]
    with pytest.raises(FieldError) as info:
        ATM.validate(msg)
    assert info.value.field == 52
    msg[3] = "000000"  # a purchase is not an ATM transaction
    msg[52] = b"\x00" * 8
    with pytest.raises(FieldError):
        ATM.validate(msg)


def test_a_reserved_message_function_is_an_unknown_mti_and_is_not_salvaged() -> None:
    """ISO 8583:1987 message functions are 0-5; a request for function 6 has no response MTI to be answered
    with (the fuzz test saw the switch answer 0260 with 0270)."""
    from schemes.generic import SCHEME
    from switch.model.errors import UnknownMtiError

    body = SCHEME.encode(Message("0200", {3: "000000", 4: "000000001000", 11: "000001"}))
    with pytest.raises(UnknownMtiError):
        SCHEME.decode(b"0260" + body[4:])
    assert SCHEME.salvage(b"0260" + body[4:]) is None
    assert SCHEME.decode(b"0220" + body[4:]).mti == "0220"  # an advice is fine
