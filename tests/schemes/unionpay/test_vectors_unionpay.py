"""The public UnionPay samples (tests/schemes/unionpay/vectors.py) decoded field by field and encoded back byte for
byte, by the network on the compiled codec, with pyiso8583 on the same spec agreeing."""

from __future__ import annotations

import iso8583
import pytest

from schemes.unionpay import SCHEME, SPEC
from schemes.unionpay.fields import OriginalData, SecurityControl, parse_additional_data, parse_balances
from schemes.unionpay.header import CupsHeader
from switch.contracts.network import FrameKind
from switch.model.message import FieldValue
from switch.wire.codec import PyIsoCodec
from switch.wire.compiled import compile_codec
from switch.wire.framing import Frame

from . import vectors as v

SIMULATOR = "CHN29000CHINA UNIONPAY SIMULATOR        "
DE121 = "511S00000002503050001   00000000000000AA000"

BODIES = {
    "0200-inquiry": v.ALATKA_0200_INQUIRY, "0210-inquiry": v.ALATKA_0210_INQUIRY, "0200-icc": v.ALATKA_0200_ICC,
    "0210-balances": v.ALATKA_0210_BALANCES, "0200-icc-2": v.ALATKA_0200_ICC_2,
    "0210-balances-2": v.ALATKA_0210_BALANCES_2, "0200-fallback": v.ALATKA_0200_FALLBACK, "0110-gbk": v.ALATKA_0110_GBK,
    "0200-gbk": v.ALATKA_0200_GBK,
}
FRAMES = {
    "echo-0820": v.EASY_ECHO_0820, "echo-0830": v.EASY_ECHO_0830, "mac-reset": v.EASY_MAC_RESET_0800,
    "pin-reset": v.EASY_PIN_RESET_0800, "0200": v.EASY_0200,
}
ALL_BODIES = {**BODIES, **{name: frame[46:] for name, frame in FRAMES.items()}}

EXPECTED: dict[str, tuple[str, dict[int, FieldValue]]] = {
    "0200-inquiry": ("0200", {
        2: "6251880000051688", 3: "300000", 7: "0825112400", 11: "863743", 12: "112400", 13: "0825", 15: "0825",
        18: "6011", 22: "021", 25: "02", 26: "06", 32: "92250000", 33: "92250000",
        35: "6251880000051688=28055010000000091", 37: "000000021680", 41: "12345678", 42: "123456789012345",
        43: SIMULATOR, 49: "156", 52: bytes(8), 53: "2400000000000000", 60: "000005000100000000004021002",
        63: "SM016E069374A9BC6AB9A659912BE707F8243", 100: "03050001", 121: DE121, 128: b"0D612014",
    }),
    "0210-balances": ("0210", {
        2: "6226010562885479", 3: "300000", 7: "0825123011", 11: "863787", 12: "123011", 13: "0825", 14: "0000",
        15: "0825", 18: "6011", 23: "001", 25: "02", 32: "92250000", 33: "92250000", 37: "000000021681", 39: "00",
        41: "12345678", 42: "123456789012345", 43: SIMULATOR, 49: "156",
        54: "3001156C0000017971003002156C000004810938",
        55: bytes.fromhex("9F36023788910AE9D1DC942D1F3D673030"), 60: "000006000100000000004022102100",
        63: "SM016749942921C07D1AA46462560C4B80B4F", 100: "00980001", 121: DE121,
        123: "N  0000048109380000100000  0000    051 +00017971004811000000000000" + " " * 27 + "10" + " " * 120
             + "00802003000",
        128: b"23B01FCE",
    }),
    "0110-gbk": ("0110", {
        2: "4218690064003583", 3: "890000", 7: "0825175254", 11: "810525", 12: "175254", 13: "0825", 14: "0000",
        15: "0825", 18: "6400", 25: "00", 32: "00049999", 33: "00049993", 37: "752548105258", 39: "00",
        41: "01080209", 42: "999999999999999", 43: "身份验证默认商户" + " " * 24, 60: "000000000700091000004027002100",
        61: "0000000000000000000000  CUP000  CUPAM0010000110000000006钱文安01118703130967", 100: "00980001",
        121: "511S55000821503050001   00000000000000BB000",
        123: "N  0000000000000000000000  0000    012 -00000000009999000000000000" + " " * 27 + "10" + " " * 120
             + "00802003010",
        128: b"18CD6DA3",
    }),
    "0200-gbk": ("0200", {
        2: "6224242000000021", 3: "000000", 4: "000000010000", 7: "0511234203", 11: "000012", 12: "234203",
        13: "0511", 15: "0511", 18: "5411", 22: "051", 23: "000", 25: "00", 26: "06", 32: "92010000",
        33: "92010000", 35: "6224242000000021D29022015699031007", 37: "000000000012", 41: "12345678",
        42: "123456789012345", 43: "中国银联CHINA UNIONPAY SIMULATOR        ",
        48: "ASON0401222112221122211222112221122211222112221", 49: "156", 52: bytes.fromhex("EC2804D2AC42710A"),
        53: "2600000000000000",
        55: bytes.fromhex(
            "5F2A02015682027D00950500001800009A032405119C01019F02060000000100009F03060000000000009F09009F1008070001"
            "03A02000019F1A0201569F1E0832303033313233309F26085576AF9865559F3E9F2701809F3303E098C09F34036003029F3501"
            "229F360200139F37040B7FBD48"),
        60: "000006000300000000000012000", 100: "14538200", 121: "51CS22000004503100000   0000000000000000000",
    }),
    "pin-reset": ("0800", {
        7: "0517094653", 11: "000522", 48: "NK4393590FF157B782DDBE18332531120C", 53: "1600000000000000", 70: "101",
        96: bytes(8), 100: "44190440", 128: bytes.fromhex("ED5F4AE970AF4B76"),
    }),
    "0200": ("0200", {
        2: "6210947000000021", 3: "300000", 7: "0518130857", 11: "106879", 12: "130857", 13: "0518", 14: "3010",
        15: "0902", 18: "6011", 19: "156", 22: "021", 25: "02", 26: "06", 32: "00000000", 33: "00000000",
        35: "111111", 37: "000000005273", 41: "00010001", 42: "001584053110001",
        43: "Testing merchant 2       ShenZhen    CHN", 49: "446", 52: bytes.fromhex("3C77B8E654636C38"),
        53: "2600000000000000", 60: "000002000100000000000021102", 100: "44190440", 121: "511" + " " * 27,
    }),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_samples_field_by_field(name: str) -> None:
    mti, fields = EXPECTED[name]
    msg = SCHEME.decode(ALL_BODIES[name])
    assert msg.mti == mti
    assert msg.fields == fields
    assert msg.meta.scheme == "unionpay"


@pytest.mark.parametrize("name", sorted(ALL_BODIES))
def test_every_sample_encodes_back_byte_for_byte(name: str) -> None:
    body = ALL_BODIES[name]
    assert SCHEME.encode(SCHEME.decode(body)) == body


@pytest.mark.parametrize("hot_after", [1, 10**9], ids=["generated", "loop"])
@pytest.mark.parametrize("name", sorted(ALL_BODIES))
def test_compiled_codec_agrees_with_pyiso8583(name: str, hot_after: int) -> None:
    body = ALL_BODIES[name]
    codec, reference = compile_codec("unionpay", SPEC, hot_after=hot_after), PyIsoCodec("unionpay", SPEC)
    for _ in range(3):  # the loop, then (hot_after=1) the generated code
        decoded = codec.decode(body)
        assert decoded == reference.decode(body)
        assert codec.encode(*decoded) == body == reference.encode(*decoded)
    doc, _ = iso8583.decode(body, SPEC)
    assert doc["t"] == decoded[0]


def test_gbk_fields_count_bytes_not_characters() -> None:
    # The 40-byte DE 43 of the purchase holds 36 characters: four Chinese ones of two bytes each.
    msg = SCHEME.decode(v.ALATKA_0200_GBK)
    name = msg.text(43)
    assert name is not None and len(name) == 36 and len(name.encode("gbk")) == 40
    assert "D6D0B9FAD2F8C1AA" in v.ALATKA_0200_GBK.hex().upper()  # 中国银联 in GBK, as on the wire
    cardholder = SCHEME.decode(v.ALATKA_0110_GBK).text(61)
    assert cardholder is not None and "钱文安" in cardholder


def test_structured_fields_of_the_samples() -> None:
    balances = parse_balances(str(SCHEME.decode(v.ALATKA_0210_BALANCES)[54]))
    assert [(b.account_type, b.amount_type, b.currency, b.sign, b.amount) for b in balances] == [
        ("30", "01", "156", "C", 1797100), ("30", "02", "156", "C", 4810938)]
    assert SecurityControl.parse(str(SCHEME.decode(v.ALATKA_0200_INQUIRY)[53])) == SecurityControl("2", "4")
    service = parse_additional_data(str(SCHEME.decode(v.ALATKA_0200_GBK)[48]))
    assert (service.usage, service.elements) == ("AS", (("ON", "1222112221122211222112221122211222112221"),))
    assert OriginalData.parse("0200" "863743" "0825112400" "00092250000" "00092250000").acquirer == "00092250000"


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_public_frames_classify_with_their_headers(name: str) -> None:
    frame = FRAMES[name]
    header = CupsHeader.parse(frame)
    # Every public frame goes from UnionPay's foreign-member id to the member 44190440, test bit set, version 2.
    assert (header.destination_id, header.source_id, header.test, header.version) == ("44190440", "00010344", True, 2)
    assert (header.total_length, header.batch, header.transaction_info, header.reject_code) == (
        len(frame), 1, b"10000000", "00000")
    inbound = SCHEME.classify(Frame(frame[46:], frame[:46]))
    assert inbound.kind is (FrameKind.RESPONSE if name == "echo-0830" else FrameKind.REQUEST)
    assert inbound.message is not None and inbound.message.meta.header == frame[:46]
