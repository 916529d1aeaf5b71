"""payShield host command codec: one hand-built vector per command, both directions, plus error handling.

Every request and response below is written out field by field from the layouts in the payShield host command
reference as publicly quoted (header ``0001``; see the docstrings of ``hsm/thales/cmd_*.py``), not produced by
the encoder. Each vector is checked four ways: the client encodes the request to exactly these bytes, the
server decodes them back to the same command, the server encodes the response to exactly these bytes, and the
client decodes them to the same response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm.thales import cmd_card as card
from hsm.thales import cmd_emv as emv
from hsm.thales import cmd_keys as keys
from hsm.thales import cmd_pin as pin
from hsm.thales import cmd_pinlmk as pinlmk
from hsm.thales.base import Command, NoFields, Response
from hsm.thales.commands import (
    COMMANDS,
    Inbound,
    Rejected,
    decode_request,
    decode_response,
    encode_rejection,
    encode_request,
    encode_response,
)
from hsm.thales.errors import (
    HeaderError,
    LocalThalesError,
    MalformedCommandError,
    UnexpectedResponseError,
    UnsupportedCommandError,
)
from hsm.thales.framing import FrameBuffer, frame
from hsm.thales.profile import PAYSHIELD_9000_LEGACY, PAYSHIELD_9000_V3, Profile, profile_by_name

V3 = PAYSHIELD_9000_V3
LEGACY = PAYSHIELD_9000_LEGACY
H = b"0001"

# Key cryptograms (shape only matters to the codec). ZMK is the reference worked example under the Thales
# test LMK (clear 0808..08, KCV D6A875).
ZMK = "U0A26760BD07871026B6702C5F9BA25B3"
KEY_A = "U" + "0123456789ABCDEF" * 2
KEY_B = "X" + "FEDCBA9876543210" * 2
KEY_T = "T" + "00112233445566778899AABB" * 2
PAIR = "0123456789ABCDEFFEDCBA9876543210"  # a PVK/CVK pair written without scheme letter (32H)
SINGLE = "0123456789ABCDEF"
# TR-31 Annex A example B block (80 characters) behind the R prefix: a self-delimiting key block.
TR31_B = "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E"
AES_KEY = "R" + "D0032P0AE00E0000" + "0123456789ABCDEF"
BLOCK = "0412AC89ABCDEF67"
ACCOUNT = "987654321098"
MAC_TEXT = b"Now is the time for all "


@dataclass(frozen=True)
class Vector:
    name: str
    command: Command[Any]
    request: bytes
    error_code: str
    response: Response | None
    reply: bytes
    profile: Profile = V3


def b(text: str) -> bytes:
    return text.encode("ascii")


VECTORS = [
    # ------------------------------------------------------------------ key management
    Vector("A0 mode 0", keys.GenerateKey(0, "001", "U"), b"0001A00001U",
           "00", keys.KeyGenerated(KEY_A, None, "D6A875"), b("0001A100" + KEY_A + "D6A875")),
    Vector("A0 mode 1 under ZMK", keys.GenerateKey(1, "001", "U", 0, ZMK, "X"), b("0001A01001U;0" + ZMK + "X"),
           "00", keys.KeyGenerated(KEY_A, KEY_B, "ABCDEF"), b("0001A100" + KEY_A + KEY_B + "ABCDEF")),
    Vector("A0 mode 1 under TMK", keys.GenerateKey(1, "002", "U", 1, KEY_A, "U"), b("0001A01002U;1" + KEY_A + "U"),
           "00", keys.KeyGenerated(KEY_B, ZMK, "123456"), b("0001A100" + KEY_B + ZMK + "123456")),
    Vector("BU plain", keys.KeyCheckValue("00", 1, ZMK), b("0001BU001" + ZMK),
           "00", keys.CheckValue("D6A8750000000000"), b"0001BV00D6A8750000000000"),
    Vector("BU FF + KCV type", keys.KeyCheckValue("FF", 2, KEY_T, "402", "00", 1), b("0001BUFF2" + KEY_T + ";402;001"),
           "00", keys.CheckValue("08D7B4"), b"0001BV0008D7B4"),
    Vector("BU single bare", keys.KeyCheckValue("02", 0, SINGLE), b("0001BU020" + SINGLE),
           "00", keys.CheckValue("0123456789ABCDEF"), b"0001BV000123456789ABCDEF"),
    Vector("A6 import, parity forced", keys.ImportKey("001", ZMK, KEY_B, "U"), b("0001A6001" + ZMK + KEY_B + "U"),
           "01", keys.KeyImported(KEY_A, "5475A4"), b("0001A701" + KEY_A + "5475A4")),
    Vector("A6 import TR-31", keys.ImportKey("001", ZMK, "R" + TR31_B, "U"), b("0001A6001" + ZMK + "R" + TR31_B + "U"),
           "00", keys.KeyImported(KEY_A, "5475A4"), b("0001A700" + KEY_A + "5475A4")),
    Vector("A6 import failed", keys.ImportKey("001", ZMK, KEY_B, "U"), b("0001A6001" + ZMK + KEY_B + "U"),
           "10", None, b"0001A710"),
    Vector("A8 export", keys.ExportKey("001", ZMK, KEY_A, "X"), b("0001A8001" + ZMK + KEY_A + "X"),
           "00", keys.KeyExported(KEY_B, "5475A4"), b("0001A900" + KEY_B + "5475A4")),
    Vector("A8 export TR-31", keys.ExportKey("001", ZMK, KEY_A, "R", "B", "P0", "B", "00", "E"),
           b("0001A8001" + ZMK + KEY_A + "R#BP0B00E"),
           "00", keys.KeyExported("R" + TR31_B, "5475A4"), b("0001A900R" + TR31_B + "5475A4")),
    Vector("NC", keys.Diagnostics(), b"0001NC",
           "00", keys.DiagnosticsResult("7D22274C5745C5A1", "0007-E000"), b"0001ND007D22274C5745C5A10007-E000"),
    Vector("B2", keys.Echo(b"PING"), b"0001B20004PING", "00", keys.Echoed(b"PING"), b"0001B300PING"),
    Vector("B2 binary", keys.Echo(bytes(range(20))), b"0001B20014" + bytes(range(20)),
           "00", keys.Echoed(bytes(range(20))), b"0001B300" + bytes(range(20))),
    # ------------------------------------------------------------------ PIN translation
    Vector("CA", pin.TranslatePinTpkToZpk(KEY_A, KEY_B, 12, BLOCK, "01", "47", ACCOUNT),
           b("0001CA" + KEY_A + KEY_B + "12" + BLOCK + "01" + "47" + ACCOUNT),
           "00", pin.PinTranslated(4, "361216759CFA8889", "47"), b"0001CB0004361216759CFA888947"),
    Vector("CC", pin.TranslatePinZpkToZpk(KEY_A, ZMK, 12, BLOCK, "01", "01", ACCOUNT),
           b("0001CC" + KEY_A + ZMK + "12" + BLOCK + "01" + "01" + ACCOUNT),
           "00", pin.PinTranslated(6, "0412AC89ABCDEF67", "01"), b"0001CD00060412AC89ABCDEF6701"),
    Vector("CC error 20", pin.TranslatePinZpkToZpk(KEY_A, ZMK, 12, BLOCK, "01", "01", ACCOUNT),
           b("0001CC" + KEY_A + ZMK + "12" + BLOCK + "01" + "01" + ACCOUNT), "20", None, b"0001CD20"),
    Vector("CC format 4 (Bulkhead extension)",
           pin.TranslatePinZpkToZpk(AES_KEY, AES_KEY, 12, "00112233445566778899AABBCCDDEEFF", "48", "48",
                                    ACCOUNT, "4111111111111111"),
           b("0001CC" + AES_KEY + AES_KEY + "12" + "00112233445566778899AABBCCDDEEFF" + "4848" + ACCOUNT
             + "16" + "4111111111111111"),
           "00", pin.PinTranslated(4, "FFEEDDCCBBAA99887766554433221100", "48"),
           b"0001CD0004FFEEDDCCBBAA9988776655443322110048"),
    Vector("CI", pin.TranslatePinDukpt(KEY_A, KEY_B, "A05", "FFFF9876543210E00001", "1B9C1845EB993A7A", "01",
                                       "401234567890"),
           b("0001CI" + KEY_A + KEY_B + "A05" + "FFFF9876543210E00001" + "1B9C1845EB993A7A" + "01" + "401234567890"),
           "00", pin.PinTranslated(4, BLOCK, "01"), b("0001CJ0004" + BLOCK + "01")),
    Vector("CI short KSN", pin.TranslatePinDukpt(KEY_A, KEY_B, "605", "9876543210E00001", "1B9C1845EB993A7A", "34",
                                                 "401234567890"),
           b("0001CI" + KEY_A + KEY_B + "605" + "9876543210E00001" + "1B9C1845EB993A7A" + "34" + "401234567890"),
           "00", pin.PinTranslated(4, "241234FFFFFFFFFF", "34"), b"0001CJ0004241234FFFFFFFFFF34"),
    Vector("G0", pin.TranslatePinDukptFormat(KEY_A, KEY_B, "A05", "FFFF9876543210E00002", "10A01C8D02C69107",
                                             "01", "05", "401234567890"),
           b("0001G0" + KEY_A + KEY_B + "A05FFFF9876543210E00002" + "10A01C8D02C69107" + "0105401234567890"),
           "00", pin.PinTranslated(4, "141234ABCDEF0123", "05"), b"0001G10004141234ABCDEF012305"),
    # ------------------------------------------------------------------ PIN verification / generation
    Vector("DA", pin.VerifyPinIbmTpk(KEY_A, SINGLE, 12, BLOCK, "01", 4, ACCOUNT, "0123456789012345",
                                     "4321987654N1", "1234FFFFFFFF"),
           b("0001DA" + KEY_A + SINGLE + "12" + BLOCK + "01" + "04" + ACCOUNT + "0123456789012345" + "4321987654N1"
             + "1234FFFFFFFF"), "00", NoFields(), b"0001DB00"),
    Vector("EA mismatch", pin.VerifyPinIbmZpk(KEY_A, KEY_B, 12, BLOCK, "01", 4, ACCOUNT, "0123456789012345",
                                              "4321987654N1", "1234FFFFFFFF"),
           b("0001EA" + KEY_A + KEY_B + "12" + BLOCK + "0104" + ACCOUNT + "01234567890123454321987654N1"
             + "1234FFFFFFFF"), "01", None, b"0001EB01"),
    Vector("DC", pin.VerifyPinPvvTpk(KEY_A, PAIR, BLOCK, "01", ACCOUNT, 1, "4567"),
           b("0001DC" + KEY_A + PAIR + BLOCK + "01" + ACCOUNT + "1" + "4567"), "00", NoFields(), b"0001DD00"),
    Vector("EC mismatch", pin.VerifyPinPvvZpk(KEY_B, KEY_A, BLOCK, "01", ACCOUNT, 2, "0000"),
           b("0001EC" + KEY_B + KEY_A + BLOCK + "01" + ACCOUNT + "20000"), "01", None, b"0001ED01"),
    Vector("DG", pin.GeneratePvvFromLmkPin(KEY_A, "01234", ACCOUNT, 1), b("0001DG" + KEY_A + "01234" + ACCOUNT + "1"),
           "00", pin.PvvGenerated("4567"), b"0001DH004567"),
    Vector("FW", pin.GeneratePvv("001", KEY_B, PAIR, BLOCK, "01", ACCOUNT, 1),
           b("0001FW001" + KEY_B + PAIR + BLOCK + "01" + ACCOUNT + "1"), "00", pin.PvvGenerated("0987"),
           b"0001FX000987"),
    Vector("BK", pin.GenerateIbmOffset("002", KEY_A, SINGLE, BLOCK, "01", 4, ACCOUNT, "0123456789012345",
                                       "4321987654N1"),
           b("0001BK002" + KEY_A + SINGLE + BLOCK + "01" + "04" + ACCOUNT + "0123456789012345" + "4321987654N1"),
           "00", pin.OffsetGenerated("1234FFFFFFFF"), b"0001BL001234FFFFFFFF"),
    # ------------------------------------------------------------------ PINs under the LMK, key forming
    Vector("BA", pinlmk.EncryptPin("1234F", ACCOUNT), b("0001BA1234F" + ACCOUNT),
           "00", pinlmk.PinUnderLmk("18274"), b"0001BB0018274"),
    Vector("NG", pinlmk.DecryptPin(ACCOUNT, "18274"), b("0001NG" + ACCOUNT + "18274"),
           "00", pinlmk.ClearPin("1234F", "012345678901"), b"0001NH001234F012345678901"),
    Vector("JC", pinlmk.TranslatePinTpkToLmk(KEY_A, BLOCK, "01", ACCOUNT), b("0001JC" + KEY_A + BLOCK + "01" + ACCOUNT),
           "00", pinlmk.PinUnderLmk("1123456789012"), b"0001JD001123456789012"),
    Vector("JE format 04", pinlmk.TranslatePinZpkToLmk(KEY_B, BLOCK, "04", "2283400000123456"),
           b("0001JE" + KEY_B + BLOCK + "04" + "FF2283400000123456"), "15", None, b"0001JF15"),
    Vector("CA format 04", pin.TranslatePinTpkToZpk(KEY_A, KEY_B, 12, BLOCK, "04", "01", "2283400000123456"),
           b("0001CA" + KEY_A + KEY_B + "12" + BLOCK + "0401" + "FF2283400000123456"),
           "00", pin.PinTranslated(5, BLOCK, "01"), b("0001CB0005" + BLOCK + "01")),
    Vector("CI padded KSN", pin.TranslatePinDukpt(KEY_A, KEY_B, "605", "FFFF9876543210E00001", "1B9C1845EB993A7A",
                                                  "01", "401234567890"),
           b("0001CI" + KEY_A + KEY_B + "605" + "FFFF9876543210E00001" + "1B9C1845EB993A7A" + "01" + "401234567890"),
           "00", pin.PinTranslated(4, BLOCK, "01"), b("0001CJ0004" + BLOCK + "01")),
    Vector("A4", keys.FormKeyFromComponents(2, "002", "U", (KEY_A, "U" + "1" * 32)),
           b("0001A42002U" + KEY_A + "U" + "1" * 32), "00", keys.KeyFormed(KEY_A, "5475A4"),
           b("0001A500" + KEY_A + "5475A4")),
    Vector("A4 three, error 03", keys.FormKeyFromComponents(3, "000", "X", (KEY_B, KEY_B, KEY_B)),
           b("0001A43000X" + KEY_B * 3), "03", None, b"0001A503"),
    # ------------------------------------------------------------------ CVV
    Vector("CW", card.GenerateCvv(PAIR, "4123456789012345", "8701", "101"),
           b("0001CW" + PAIR + "4123456789012345;8701101"), "00", card.CvvGenerated("561"), b"0001CX00561"),
    Vector("CY", card.VerifyCvv("U" + PAIR, "561", "4123456789012345", "8701", "101"),
           b("0001CYU" + PAIR + "5614123456789012345;8701101"), "00", NoFields(), b"0001CZ00"),
    Vector("CY mismatch", card.VerifyCvv(PAIR, "562", "4123456789012", "8701", "000"),
           b("0001CY" + PAIR + "5624123456789012;8701000"), "01", None, b"0001CZ01"),
    # ------------------------------------------------------------------ MAC
    Vector("M6 v3", card.GenerateMac(0, 0, 0, 3, 1, "003", KEY_A, MAC_TEXT),
           b("0001M6" + "0" + "0" + "0" + "3" + "1" + "003" + KEY_A + "0018") + MAC_TEXT,
           "00", card.MacGenerated("A1C72E74", None), b"0001M700A1C72E74"),
    Vector("M6 v3, 16H MAC", card.GenerateMac(0, 2, 1, 3, 2, "008", KEY_A, MAC_TEXT),
           b("0001M6" + "0" + "2" + "1" + "3" + "2" + "008" + KEY_A + "0018") + MAC_TEXT,
           "00", card.MacGenerated("E9086230CA3BE796", None), b"0001M700E9086230CA3BE796"),
    Vector("M6 legacy", card.GenerateMac(0, 0, None, 1, 1, "003", KEY_A, MAC_TEXT),
           b("0001M6" + "0" + "0" + "01" + "1" + "003" + KEY_A + "0018") + MAC_TEXT,
           "00", card.MacGenerated("70A30640", None), b"0001M70070A30640", LEGACY),
    Vector("M6 first block", card.GenerateMac(1, 1, 0, 3, 1, "003", KEY_A, b"0011223344556677"),
           b("0001M6" + "1" + "1" + "0" + "3" + "1" + "003" + KEY_A + "0010" + "0011223344556677"),
           "00", card.MacGenerated(None, "0123456789ABCDEF"), b"0001M7000123456789ABCDEF"),
    Vector("M6 final block with IV", card.GenerateMac(3, 1, 0, 3, 1, "003", KEY_A, b"8899", "0123456789ABCDEF"),
           b("0001M6" + "3" + "1" + "0" + "3" + "1" + "003" + KEY_A + "0123456789ABCDEF" + "0004" + "8899"),
           "00", card.MacGenerated("CAFEBABE", None), b"0001M700CAFEBABE"),
    Vector("M6 CMAC, AES key, 32H MAC", card.GenerateMac(0, 0, 2, 5, 0, "003", AES_KEY, b""),
           b("0001M6" + "0" + "0" + "2" + "5" + "0" + "003" + AES_KEY + "0000"),
           "00", card.MacGenerated("BB1D6929E95937287FA37D129B756746", None),
           b"0001M700BB1D6929E95937287FA37D129B756746"),
    Vector("M8 v3", card.VerifyMac(0, 1, 0, 3, 1, "008", KEY_A, b"0011", "12345678"),
           b("0001M8" + "01031" + "008" + KEY_A + "0004" + "0011" + "12345678"), "01", None, b"0001M901"),
    Vector("M8 legacy", card.VerifyMac(0, 0, None, 3, 1, "003", KEY_A, MAC_TEXT, "A1C72E74"),
           b("0001M8" + "0" + "0" + "03" + "1" + "003" + KEY_A + "0018") + MAC_TEXT + b"A1C72E74",
           "00", NoFields(), b"0001M900", LEGACY),
    Vector("MA", card.GenerateMacLegacy(KEY_A, b"DATA TO MAC"), b("0001MA" + KEY_A + "DATA TO MAC"),
           "00", card.LegacyMacGenerated("0A1B2C3D"), b"0001MB000A1B2C3D"),
    Vector("MC", card.VerifyMacLegacy(SINGLE, "0A1B2C3D", b"DATA"), b("0001MC" + SINGLE + "0A1B2C3D" + "DATA"),
           "00", NoFields(), b"0001MD00"),
    # ------------------------------------------------------------------ EMV
    Vector("KQ verify + ARPC",
           emv.VerifyArqcKq(1, 0, KEY_A, bytes.fromhex("4761739001010119"), b"\x00\x01", b"\xde\xad\xbe\xef",
                            bytes(8), bytes.fromhex("1122334455667788"), b"00"),
           b("0001KQ10" + KEY_A) + bytes.fromhex("4761739001010119") + b"\x00\x01\xde\xad\xbe\xef" + b"08"
           + bytes(8) + b";" + bytes.fromhex("1122334455667788") + b"00",
           "00", emv.ArpcKq(bytes.fromhex("8877665544332211")), b"0001KR00" + bytes.fromhex("8877665544332211")),
    Vector("KQ verify only, failed",
           emv.VerifyArqcKq(0, 1, KEY_A, bytes(8), b"\x00\x02", bytes(4), b"\x80" + bytes(7), bytes(8)),
           b("0001KQ01" + KEY_A) + bytes(8) + b"\x00\x02" + bytes(4) + b"08\x80" + bytes(7) + b";" + bytes(8),
           "01", None, b"0001KR01"),
    Vector("KW v3 ARPC method 2",
           emv.VerifyArqcKw(1, 2, KEY_A, bytes(8), b"\x00\x03", b"\x80" + bytes(15), b"\x01" * 8,
                            csu=b"\x00\x00\x00\x10", proprietary_data=b"\x01\x02"),
           b("0001KW12" + KEY_A) + bytes(8) + b"\x00\x03" + b"10" + b"\x80" + bytes(15) + b";" + b"\x01" * 8
           + b"\x00\x00\x00\x10" + b"2\x01\x02",
           "00", emv.ArpcKw(b"\xa1\xb2\xc3\xd4"), b"0001KX00\xa1\xb2\xc3\xd4"),
    Vector("KW legacy with IV-AC",
           emv.VerifyArqcKw(0, 2, KEY_A, bytes(8), b"\x00\x03", b"\x80" + bytes(7), b"\x01" * 8, iv=bytes(16)),
           b("0001KW02" + KEY_A) + bytes(16) + bytes(8) + b"\x00\x03" + b"08" + b"\x80" + bytes(7) + b";"
           + b"\x01" * 8, "00", emv.ArpcKw(None), b"0001KX00", LEGACY),
]


@pytest.mark.parametrize("v", VECTORS, ids=[v.name for v in VECTORS])
def test_vector_both_directions(v: Vector) -> None:
    assert encode_request(v.command, H, v.profile) == v.request
    inbound = decode_request(v.request, 4, v.profile)
    assert inbound == Inbound(H, v.command)
    assert encode_response(inbound, v.error_code, v.response, v.profile) == v.reply
    reply = decode_response(v.reply, 4, v.command, v.profile)
    assert (reply.header, reply.response_code, reply.error_code) == (H, v.reply[4:6].decode(), v.error_code)
    expected = v.response if v.error_code in v.command.FIELDS_ON else None
    assert reply.response == expected


def test_every_command_has_a_vector() -> None:
    covered = {v.command.CODE for v in VECTORS}
    assert covered == set(COMMANDS), sorted(set(COMMANDS) - covered)
    assert {"A0", "BU", "A6", "A8", "NC", "B2", "CA", "CC", "CI", "G0", "DA", "EA", "DC", "EC", "DG", "FW", "CW",
            "CY", "M6", "M8", "MA", "MC", "KQ", "KW"} <= covered


def test_response_codes_increment_the_second_character() -> None:
    pairs = {"A0": "A1", "BU": "BV", "CA": "CB", "CC": "CD", "CI": "CJ", "CW": "CX", "CY": "CZ", "DA": "DB",
             "DC": "DD", "DG": "DH", "EA": "EB", "EC": "ED", "FW": "FX", "G0": "G1", "KQ": "KR", "KW": "KX",
             "M6": "M7", "M8": "M9", "MA": "MB", "MC": "MD", "A6": "A7", "A8": "A9", "NC": "ND", "B2": "B3"}
    for command, response in pairs.items():
        inbound = decode_request(H + command.encode() + b"x", 4, V3)
        assert isinstance(inbound, Rejected) and inbound.response_code == response


# ---------------------------------------------------------------------------- suffixes: LMK id and trailer


def test_lmk_identifier_and_trailer_round_trip() -> None:
    command = keys.Diagnostics()
    message = encode_request(command, b"XY", V3, lmk_id="01", trailer=b"trace-42")
    assert message == b"XYNC%01\x19trace-42"
    inbound = decode_request(message, 2, V3)
    assert isinstance(inbound, Inbound) and (inbound.lmk_id, inbound.trailer) == ("01", b"trace-42")
    # The trailer is echoed after the response fields.
    reply = encode_response(inbound, "00", keys.DiagnosticsResult("0" * 16, "0007-E000"), V3)
    assert reply == b"XYND00" + b"0" * 16 + b"0007-E000\x19trace-42"


def test_pin_under_lmk_ends_before_the_lmk_identifier() -> None:
    inbound = decode_request(b("0001DG" + KEY_A + "98765" + ACCOUNT + "3%02"), 4, V3)
    assert isinstance(inbound, Inbound) and inbound.lmk_id == "02"
    assert inbound.command == pin.GeneratePvvFromLmkPin(KEY_A, "98765", ACCOUNT, 3)


# ---------------------------------------------------------------------------- server-side rejections


@pytest.mark.parametrize(
    ("message", "answer", "error_type"),
    [
        (b"0001CC123", b"0001CD15", MalformedCommandError),  # truncated key
        (b("0001CC" + KEY_A + KEY_B + "1X" + BLOCK + "0101" + ACCOUNT), b"0001CD15", MalformedCommandError),
        (b("0001CC" + KEY_A + KEY_B + "12" + BLOCK + "0101" + ACCOUNT + "EXTRA"), b"0001CD15", MalformedCommandError),
        (b("0001CW" + PAIR + "4123456789012345" + "8701101"), b"0001CX15", MalformedCommandError),  # no ';'
        (b"0001B20010ABC", b"0001B315", MalformedCommandError),  # declared length beyond the message
        (b"0001BUFF1" + b"U" + b"G" * 32, b"0001BV15", MalformedCommandError),  # not hex
        (b"0001NC%1", b"0001ND15", MalformedCommandError),  # LMK id not 2 digits
        (b"0001NC\x19" + b"t" * 33, b"0001ND15", MalformedCommandError),  # trailer too long
        (b"0001NC\x19t\x19u", b"0001ND15\x19u", MalformedCommandError),  # X'19' inside the trailer
        (b"0001ZZ", b"0001ZA68", UnsupportedCommandError),
        (b"0001JA123456789012", b"0001JB68", UnsupportedCommandError),  # a real command this HSM does not do
        (b"000", b"000 ZZ51", HeaderError),  # shorter than header + command
        (b"0001\x00\xff", b"0001ZZ51", HeaderError),  # no command code where it should be
    ],
)
def test_rejections(message: bytes, answer: bytes, error_type: type[Exception]) -> None:
    decoded = decode_request(message, 4, V3)
    assert isinstance(decoded, Rejected) and isinstance(decoded.error, error_type)
    assert encode_rejection(decoded) == answer


def test_unsupported_error_code_follows_the_profile() -> None:
    licensed = Profile(name="licence-check", unsupported_error="67")
    decoded = decode_request(b"0001ZZ", 4, licensed)
    assert isinstance(decoded, Rejected) and encode_rejection(decoded) == b"0001ZA67"


ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_every_command_code_is_answered_with_an_alphanumeric_response_code() -> None:
    # All 62 x 62 codes, known or not: the answer's response code is two alphanumerics, the second character
    # incremented, wrapping within its class (9 -> 0, Z -> A, z -> a).
    wrapped = {"9": "0", "Z": "A", "z": "a"}
    for first in ALNUM:
        for second in ALNUM:
            answer = encode_rejection_or_response(b"0001" + (first + second).encode())
            expected = first + wrapped.get(second, chr(ord(second) + 1))
            assert answer[4:6].decode() == expected and answer[4:6].isalnum(), (first + second, answer)


def encode_rejection_or_response(message: bytes) -> bytes:
    """The server's answer to ``message`` (empty commands are malformed for most codes, answered for NC)."""
    decoded = decode_request(message, 4, V3)
    if isinstance(decoded, Rejected):
        return encode_rejection(decoded)
    return encode_response(decoded, "15", None, V3)


def test_malformed_error_names_field_and_position() -> None:
    decoded = decode_request(b("0001CC" + KEY_A + KEY_B + "1X"), 4, V3)
    assert isinstance(decoded, Rejected) and isinstance(decoded.error, MalformedCommandError)
    assert decoded.error.field == "max_pin_length" and decoded.error.position == 6 + 33 + 33
    assert decoded.error.code == "15"


# ---------------------------------------------------------------------------- client-side checks


def test_response_with_the_wrong_code_is_refused() -> None:
    with pytest.raises(UnexpectedResponseError):
        decode_response(b"0001CB00", 4, keys.Diagnostics(), V3)


def test_short_response_is_refused() -> None:
    with pytest.raises(MalformedCommandError):
        decode_response(b"0001ND0", 4, keys.Diagnostics(), V3)


def test_response_fields_beyond_the_layout_are_ignored() -> None:
    reply = decode_response(b"0001CD0004" + b(BLOCK) + b"01NEWFIELD", 4,
                            pin.TranslatePinZpkToZpk(KEY_A, KEY_B, 12, BLOCK, "01", "01", ACCOUNT), V3)
    assert reply.result() == pin.PinTranslated(4, BLOCK, "01")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (pin.TranslatePinZpkToZpk(KEY_A, KEY_B, 12, "0412", "01", "01", ACCOUNT), "pin_block"),
        (pin.TranslatePinZpkToZpk(KEY_A, "U123", 12, BLOCK, "01", "01", ACCOUNT), "destination_zpk"),
        (pin.TranslatePinZpkToZpk(KEY_A, KEY_B, 123, BLOCK, "01", "01", ACCOUNT), "max_pin_length"),
        (pin.TranslatePinZpkToZpk(KEY_A, KEY_B, 12, BLOCK, "01", "48", ACCOUNT), "pan"),
        (card.GenerateCvv(PAIR, "41234567890123456789", "8701", "101"), "pan"),
        (keys.Echo(b"x" * 0x10000), "data length"),
    ],
)
def test_encoding_refuses_bad_values(command: Command[Any], field: str) -> None:
    with pytest.raises(LocalThalesError) as info:
        encode_request(command, H, V3)
    assert info.value.field == field and info.value.code == "15"


def test_repr_hides_secrets() -> None:
    command = card.VerifyCvv(PAIR, "561", "4123456789012345", "8701", "101")
    text = repr(command) + repr(Inbound(H, command))
    for secret in ("561", "4123456789012345", PAIR):
        assert secret not in text
    assert "service_code='101'" in text


def test_profiles_by_name() -> None:
    assert profile_by_name("payshield-9000-v3") is V3
    with pytest.raises(KeyError, match="payshield-9000-legacy"):
        profile_by_name("payshield-1")
    with pytest.raises(ValueError):
        Profile(name="inconsistent", m6_mac_size=False, m6_algorithm_digits=1)


# ---------------------------------------------------------------------------- framing


def test_framing_whole_bytewise_and_with_keepalives() -> None:
    messages = [b"0001NC", b"0002B20002hi", b"0003" + bytes(300)]
    stream = b"".join(frame(m) for m in messages)
    assert stream[:2] == b"\x00\x06"
    for chunks in ([stream], [stream[i:i + 1] for i in range(len(stream))]):
        buffer = FrameBuffer()
        out = []
        for chunk in chunks:
            buffer.receive_data(chunk)
            while (m := buffer.next_message()) is not None:
                out.append(m)
        assert out == messages and buffer.pending == 0
    buffer = FrameBuffer()
    buffer.receive_data(b"\x00\x00" + frame(b"0001NC") + b"\x00\x09partial")
    assert buffer.next_message() == b"0001NC" and buffer.next_message() is None and buffer.pending == 9
    with pytest.raises(LocalThalesError):
        frame(bytes(0x10000))


# ---------------------------------------------------------------------------- properties

_hex = st.text("0123456789ABCDEF", min_size=16, max_size=16)
_digits = st.text("0123456789", min_size=12, max_size=12)
_key = st.builds(lambda s, h: s + h, st.sampled_from(["U", "X"]), st.text("0123456789ABCDEF", min_size=32,
                                                                              max_size=32))


@settings(max_examples=150, deadline=None)
@given(_key, _key, st.integers(4, 12), _hex, st.sampled_from(["01", "05", "34", "47"]),
       st.sampled_from(["01", "05", "34", "47"]), _digits, st.text("0123456789", min_size=0, max_size=4),
       st.binary(max_size=40))
def test_round_trip_properties(src: str, dst: str, max_len: int, block: str, sf: str, df: str, account: str,
                               header: str, data: bytes) -> None:
    """Whatever valid values a command carries, the server decodes exactly what the client encoded."""
    hdr = header.encode()
    for command in (pin.TranslatePinZpkToZpk(src, dst, max_len, block, sf, df, account),
                    card.GenerateMac(0, 0, 1, 3, 1, "003", src, data), keys.Echo(data),
                    emv.VerifyArqcKq(1, 1, src, data[:8].ljust(8, b"\x00"), b"\x00\x09", b"\x19%;%", data,
                                     bytes(8), b"\x19;")):
        decoded = decode_request(encode_request(command, hdr, V3), len(hdr), V3)
        assert decoded == Inbound(hdr, command)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_get_an_answer(message: bytes) -> None:
    """Garbage never raises on the server side: it decodes or is rejected with a 2-digit code."""
    decoded = decode_request(message, 4, V3)
    if isinstance(decoded, Rejected):
        answer = encode_rejection(decoded)
        assert len(answer[len(decoded.header) + 2:]) >= 2 and decoded.error.code.isdigit()


_codes = st.sampled_from(sorted(COMMANDS))
_tails = st.one_of(st.binary(max_size=150), st.text("0123456789ABCDEFUXTRZ;%#\x19", max_size=150).map(str.encode))


@settings(max_examples=300, deadline=None)
@given(_codes, _tails, st.sampled_from([V3, LEGACY]))
def test_fuzzed_requests_decode_or_get_15(code: str, tail: bytes, profile: Profile) -> None:
    """A known command code with any field bytes: a command, or a rejection with a protocol error code."""
    decoded = decode_request(H + code.encode() + tail, 4, profile)
    if isinstance(decoded, Rejected):
        assert decoded.error.code == "15" and decoded.response_code[0] == code[0]
    else:
        # What decoded re-encodes to the same bytes (nothing was silently dropped or normalised away)...
        again = encode_request(decoded.command, H, profile, lmk_id=decoded.lmk_id, trailer=decoded.trailer)
        assert again.upper() == (H + code.encode() + tail).upper()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VECTORS), _tails)
def test_fuzzed_responses_decode_or_raise_protocol_errors(v: Vector, tail: bytes) -> None:
    message = v.reply[:8] + tail
    try:
        reply = decode_response(message, 4, v.command, v.profile)
    except MalformedCommandError:
        return
    assert reply.error_code == v.reply[6:8].decode()
