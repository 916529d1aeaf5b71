"""Inside VISA's private fields: DE 62, 63 and 126 (bitmap-structured), DE 44 and 60 (positional), and what logs
and the journal show of them (126.10, the CVV2, never)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemes.visa import NETWORK
from schemes.visa.fields import (
    DE62,
    DE63,
    DE126,
    build_bitmapped,
    build_de62,
    build_de63,
    build_de126,
    parse_bitmapped,
    parse_de44,
    parse_de60,
    parse_de62,
    parse_de63,
    parse_de126,
    transaction_id,
)
from switch.model.errors import DecodeError, RemoteProtocolError
from switch.model.message import Message

TID = "381234567890123"


def test_de62_by_hand() -> None:
    value = build_de62({1: "Y", 2: TID, 3: "AB12"})
    # 8-byte bitmap (bits 1-3), the ACI in EBCDIC, 15 digits packed in 8 bytes with a 0 nibble first, 4 EBCDIC.
    assert value == ("E000000000000000" + "E8" + "0" + TID + "C1C2F1F2").upper()
    cps = parse_de62(value)
    assert (cps.get(1), cps.get(2), cps.get(3)) == ("Y", TID, "AB12")
    assert cps.unparsed == 0 and cps.stopped_at is None


def test_transaction_id_for_settlement() -> None:
    msg = Message("0110", {11: "000001", 39: "00", 62: build_de62({1: "E", 2: TID})})
    assert transaction_id(msg) == TID
    assert transaction_id(Message("0110", {11: "000001"})) is None
    # Through the wire and back: the identifier is still there, and the journal shows it.
    back = NETWORK.decode(NETWORK.encode(msg))
    assert transaction_id(back) == TID
    assert back.masked()["62"] == f"62.1=E 62.2={TID}"


def test_de63_network_id_reason_and_stip() -> None:
    value = build_de63({1: "0002", 3: "2501", 4: "9020"})
    assert value == "B00000" + "0002" + "2501" + "9020"
    vip = parse_de63(value)
    assert (vip.get(1), vip.get(3), vip.get(4)) == ("0002", "2501", "9020")


def test_a_subfield_of_no_public_layout_stops_the_reading() -> None:
    # 62.7 has no public layout: 62.1 is read, the rest reported as unparsed bytes, not guessed at.
    raw = bytes.fromhex("8200000000000000") + "Y".encode("cp500") + b"\x01\x02\x03"
    cps = parse_de62(raw.hex())
    assert cps.values == {1: "Y"} and cps.stopped_at == 7 and cps.unparsed == 3
    assert NETWORK.masking.field(62, raw.hex().upper()) == "62.1=Y 62.7+<3 bytes not parsed>"


@pytest.mark.parametrize(("value", "where"), [
    ("E0000000000000", "62"),  # shorter than the bitmap
    ("C000000000000000E8", "62.2"),  # 62.2 announced, missing
    ("4000000000000000" + "0" + TID[:-1] + "A", "62.2"),  # a BCD nibble that is not a digit
    ("4000000000000000" + "1" + TID, "62.2"),  # the pad nibble is not 0
    ("8000000000000000E8FF", "62"),  # a byte after the last subfield
    ("not hex", "62"),
])
def test_malformed_de62_is_a_typed_error(value: str, where: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_de62(value)
    assert info.value.field == where
    with pytest.raises(RemoteProtocolError):
        transaction_id(Message("0110", {62: value}))


def test_cvv2_is_never_shown() -> None:
    value = build_de126({8: "AA" * 20, 10: "11 123", 13: "1"})
    assert parse_de126(value).get(10) == "11 123"
    shown = NETWORK.masking.field(126, value)
    assert shown == f"126.8={'AA' * 20} 126.10=<6 hidden> 126.13=1"
    assert "123" not in shown.replace("AA", "")
    msg = NETWORK.decode(NETWORK.encode(Message("0100", {3: "000000", 4: "000000000100", 11: "000001",
                                                          126: value})))
    assert "11 123" not in repr(msg) and msg.masked()["126"] == shown


@pytest.mark.parametrize("disputed", [6, 7])
def test_cvv2_beside_a_subfield_of_disputed_layout_hides_the_field(disputed: int) -> None:
    value = build_de126({disputed: "00" * 17, 10: "11 123"})
    assert NETWORK.masking.field(126, value) == f"<{len(value)} chars hidden>"


def test_unreadable_de126_is_hidden_whole() -> None:
    assert NETWORK.masking.field(126, "0040" + "F1F1") == "<8 chars hidden>"


def test_de44_and_de60_positional() -> None:
    de44 = parse_de44("5Y 2M  D  M")
    assert de44["1 response source/reason code"] == "5" and de44["2 address verification result"] == "Y"
    assert de44["5 CVV/iCVV result"] == "M" and de44["10 CVV2 result"] == "M"
    assert parse_de44("5") == {"1 response source/reason code": "5"}
    de60 = parse_de60("050000000700")
    assert de60["1 terminal type"] == "0" and de60["2 terminal entry capability"] == "5"
    assert de60["8 mail/phone/electronic commerce indicator"] == "07"
    assert de60["10 partial authorization indicator"] == "0"


def _subfield(layout: tuple[str, int]) -> st.SearchStrategy[str]:
    kind, size = layout
    if kind == "n":
        return st.text("0123456789", min_size=size, max_size=size)
    if kind == "b":
        return st.binary(min_size=size, max_size=size).map(lambda b: b.hex().upper())
    letters = st.sampled_from("ABCXYZ0189 ")
    if kind == "llhe":
        return st.lists(letters, max_size=size).map("".join)
    return st.lists(letters, min_size=size, max_size=size).map("".join)


@pytest.mark.parametrize(("number", "bitmap", "layouts"), [(62, 8, DE62), (63, 3, DE63), (126, 8, DE126)])
@given(data=st.data())
def test_bitmapped_round_trip(number: int, bitmap: int, layouts: dict[int, tuple[str, int]],
                              data: st.DataObject) -> None:
    chosen = data.draw(st.sets(st.sampled_from(sorted(layouts)), max_size=6))
    values = {sub: data.draw(_subfield(layouts[sub])) for sub in chosen}
    value = build_bitmapped(number, values, bitmap, layouts)
    assert parse_bitmapped(number, value, bitmap, layouts).values == values


@given(st.binary(max_size=80))
def test_any_bytes_parse_or_fail_typed(raw: bytes) -> None:
    for parse in (parse_de62, parse_de63, parse_de126):
        with contextlib.suppress(DecodeError):
            parse(raw.hex())
    shown = NETWORK.masking.field(126, raw.hex())
    assert isinstance(shown, str)
