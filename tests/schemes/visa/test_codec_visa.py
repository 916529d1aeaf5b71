"""BASE I bodies: the public samples decoded field by field and encoded back byte for byte.

Public samples (reference sections 5.2-5.3 and the threads they cite):

- rtgparser ``tests/visa_ecomm``, the reference's worked example: its VMLH, header, MTI, both bitmaps and the start
  of DE 2 are published byte for byte, and the values of DE 3-32 and 49 as decoded. The bytes of the EBCDIC text
  fields (37, 41-43) and of DE 60, 62, 63 and 126 are not, so they are filled in here with values of the
  published lengths' total (the frame's 193 bytes after the VMLH): those bytes check our layout, not VISA's;
- pyiso8583 issue 29: DE 2 of 16 digits is ``10`` + 8 BCD bytes; DE 62 holding only 62.1 starts ``09 80 00 ...``;
- jPOS ``IFB_AMOUNTTest``: ``D123`` in an amount of 6 is ``44 00 01 23`` (a sign byte in ASCII, then BCD).
"""

from __future__ import annotations

import iso8583
import pytest

from schemes.visa import NETWORK
from schemes.visa.fields import build_de62, build_de63, build_de126, parse_de62, parse_de63
from schemes.visa.framing import VisaFraming
from switch.model.errors import DecodeError, EncodeError, RemoteProtocolError
from switch.model.message import Message

PUBLIC_START = bytes.fromhex(
    "00C10000"  # VMLH: 193 bytes follow
    "16010200C1000000123456" "0000000000000000000000"  # BASE I header
    "0100"  # MTI
    "F224648108E08016" "0000000000000004"  # bitmaps: 2 3 4 7 11 14 18 19 22 25 32 37 41 42 43 49 60 62 63 | 126
    "10" "45678912345678"  # DE 2: 16 digits, the first 14 published
)
EXAMPLE = Message("0100", {
    2: "4567891234567890",
    3: "003000",
    4: "000000002500",
    7: "0527192031",
    11: "002013",
    14: "1607",
    18: "5999",
    19: "780",  # published as 0780: n3 in two BCD bytes, padded on the left
    22: "012",  # published as 0120: n3 in two BCD bytes, padded on the right
    25: "59",
    32: "432109",
    37: "714719002013",
    41: "TERM0001",
    42: "MERCHANT0000001",
    43: "ONLINE SHOP              SAN FRANCISCOUS",
    49: "840",
    60: "050000000700",
    62: build_de62({1: "Y"}),
    63: build_de63({1: "0002"}),
    126: build_de126({12: "000000", 13: "1", 14: "0"}),
})


def _frame(msg: Message) -> bytes:
    return VisaFraming(source_station="123456").framer().encode(NETWORK.encode(msg))


def test_worked_example_bytes() -> None:
    wire = _frame(EXAMPLE)
    assert len(wire) == 197
    assert wire[:len(PUBLIC_START)] == PUBLIC_START
    body = wire[26:]
    # Each published value where the layout puts it.
    assert body[27:30] == bytes.fromhex("003000")
    assert body[30:36] == bytes.fromhex("000000002500")
    assert body[36:41] == bytes.fromhex("0527192031")
    assert body[41:44] == bytes.fromhex("002013")
    assert body[44:46] == bytes.fromhex("1607")
    assert body[46:48] == bytes.fromhex("5999")
    assert body[48:50] == bytes.fromhex("0780")
    assert body[50:52] == bytes.fromhex("0120")
    assert body[52:53] == bytes.fromhex("59")
    assert body[53:57] == bytes.fromhex("06" "432109")  # LLHNUM: the length counts digits
    assert body[57:69] == "714719002013".encode("cp500")
    assert body[132:134] == bytes.fromhex("0840")


def test_worked_example_decodes_field_by_field_and_back() -> None:
    wire = _frame(EXAMPLE)
    framer = VisaFraming().framer()
    framer.receive_data(wire)
    frame = framer.next_frame()
    assert frame is not None
    msg = NETWORK.classify(frame).message
    assert msg is not None
    assert msg.mti == "0100"
    assert msg.fields == EXAMPLE.fields
    assert (msg[19], msg[22], msg[49]) == ("780", "012", "840")
    assert parse_de62(msg[62]).get(1) == "Y"
    assert parse_de63(msg[63]).get(1) == "0002"
    assert msg.meta.header == PUBLIC_START[4:26]
    # Encoded back byte for byte, header and all (we are source 123456 of a request we originate).
    assert _frame(msg) == wire
    # And pyiso8583, the reference codec, reads the same body the same way.
    decoded, _ = iso8583.decode(frame.body, NETWORK.codec.spec)
    assert decoded["2"] == "4567891234567890" and decoded["22"] == "012" and decoded["126"] == EXAMPLE[126]


def test_pan_from_pyiso8583_issue_29() -> None:
    body = NETWORK.encode(Message("0100", {2: "1234567890123456", 3: "000000", 4: "000000000100", 11: "000001"}))
    assert body[10:19] == bytes.fromhex("10" "1234567890123456")  # after the MTI and the primary bitmap


def test_de62_with_the_aci_only_from_pyiso8583_issue_29() -> None:
    body = NETWORK.encode(Message("0110", {11: "000001", 39: "00", 62: build_de62({1: "Y"})}))
    assert body.endswith(bytes.fromhex("09" "8000000000000000") + "Y".encode("cp500"))


def test_fee_amount_as_jpos_packs_it() -> None:
    # jPOS IFB_AMOUNTTest: D123 in 6 -> 44 00 01 23. DE 28 is x+n8: a sign byte and 8 digits in 4 bytes.
    body = NETWORK.encode(Message("0200", {3: "010000", 4: "000000010000", 11: "000001", 28: "D00000123"}))
    assert body.endswith(bytes.fromhex("44" "00000123"))
    assert NETWORK.decode(body)[28] == "D00000123"
    credit = NETWORK.encode(Message("0200", {3: "010000", 4: "000000010000", 11: "000001", 28: "C00000050"}))
    assert credit.endswith(bytes.fromhex("43" "00000050"))
    with pytest.raises(EncodeError):
        NETWORK.encode(Message("0200", {3: "010000", 4: "000000010000", 11: "000001", 28: "X00000050"}))
    with pytest.raises(DecodeError):  # a sign byte that is neither C nor D
        NETWORK.decode(body[:-5] + bytes.fromhex("45" "00000123"))


def test_track2_separator() -> None:
    # Track 2 is packed BCD whose separator is the nibble D; a track with '=' (from an ASCII network) goes out so.
    msg = Message("0100", {3: "000000", 4: "000000000100", 11: "000001", 35: "4761739001010010=25121010000"})
    body = NETWORK.encode(msg)
    assert bytes.fromhex("1C" "4761739001010010D25121010000") in body  # the length counts the 28 digits
    back = NETWORK.decode(body)
    assert back[35] == "4761739001010010D25121010000" and back.pan == "4761739001010010"


def test_binary_fields_are_bytes_and_private_ones_hex_text() -> None:
    msg = Message("0100", {3: "000000", 4: "000000000100", 11: "000001", 52: bytes.fromhex("0123456789ABCDEF"),
                           55: bytes.fromhex("9F2608AABBCCDDEEFF0011"), 48: "C1C2", 127: "0102"})
    back = NETWORK.decode(NETWORK.encode(msg))
    assert back[52] == bytes.fromhex("0123456789ABCDEF") and back[55] == bytes.fromhex("9F2608AABBCCDDEEFF0011")
    assert (back[48], back[127]) == ("C1C2", "0102")
    with pytest.raises(EncodeError):  # text that is not the hex of bytes cannot go into a binary field
        NETWORK.encode(Message("0100", {11: "000001", 48: "plain text"}))


def test_third_bitmap() -> None:
    msg = Message("0100", {3: "000000", 4: "000000000100", 11: "000001", 130: "E0F8C8", 136: "1122334455667788",
                           145: "840", 147: "000000000100"})
    body = NETWORK.encode(msg)
    # bit 1 of the primary, bit 65 (the first of the secondary) and the tertiary bitmap.
    assert body[2] & 0x80 and body[10] == 0x80 and len(body) > 26
    assert NETWORK.decode(body).fields == msg.fields


def test_field_the_spec_does_not_define_is_a_typed_error() -> None:
    body = NETWORK.encode(Message("0100", {3: "000000", 4: "000000000100", 11: "000001", 130: "E0F8C8"}))
    # Turn bit 129 (undefined) on in the tertiary bitmap.
    tertiary = 2 + 8 + 8
    bad = body[:tertiary] + bytes((body[tertiary] | 0x80,)) + body[tertiary + 1:]
    with pytest.raises(RemoteProtocolError):
        NETWORK.decode(bad)


@pytest.mark.parametrize("cut", [1, 2, 9, 17, 20, 30, 60, 100])
def test_truncated_bodies_are_decode_errors(cut: int) -> None:
    body = NETWORK.encode(EXAMPLE)
    with pytest.raises(RemoteProtocolError):
        NETWORK.decode(body[:cut])
