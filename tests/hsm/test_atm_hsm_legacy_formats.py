"""Legacy ATM PIN block formats as sources (and destinations) of CA / CC / G0: 02 Docutel, 03 Diebold / IBM 3624,
04 PLUS.

Vectors: the payShield manual's own "Format 04" example (publicly quoted: PIN 92389, account 2283 4000 0012 3456 ->
clear block 0592 1A1C BFFF FFED); format 03 as IBM CCA defines the 3624 block (PIN digits, then one pad value; F
here, as jPOS pads it); format 02 as the open-source Thales simulator builds it (length digit, PIN zero-padded to
6, 9 pad characters). Round trips go through the software HSM, the payShield-compatible server on the wire, and
both backends of the interface; the test PIN pad encodes the same formats for the ATM simulator.
"""

from __future__ import annotations

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm import pinblock
from hsm.cipher import tdes_decrypt, tdes_encrypt
from hsm.errors import AccountError, PinBlockError, PinBlockFormatError, PinLengthError
from hsm.testing import TestPinPad
from tests.hsm.test_interface_backends import (
    BDK,
    TPK,
    TPK_CLEAR,
    ZPK1,
    ZPK1_CLEAR,
    ZPK2,
    ZPK2_CLEAR,
    backends,
    decrypted_pin,
    same,
    same_error,
)
from tests.hsm.test_thales_support import HSM, LOCALHOST, exchange, running_server

PLUS_PAN = "2283400000123456"


def block(key: bytes, code: str, pin: str, account: str, fill: str | None = None) -> str:
    return tdes_encrypt(key, pinblock.encode_code(code, pin, account, fill)).hex().upper()


def clear_pin(key: bytes, code: str, encrypted: str, account: str) -> str:
    return pinblock.decode_code(code, tdes_decrypt(key, bytes.fromhex(encrypted)), account)


# ------------------------------------------------------------------------------------------------ vectors


def test_plus_format_04_matches_the_manuals_worked_example() -> None:
    clear = pinblock.encode_code("04", "92389", PLUS_PAN)
    assert clear.hex().upper() == "05921A1CBFFFFFED"
    assert pinblock.decode_code("04", clear, PLUS_PAN) == "92389"
    # As the 18-digit wire field carries the account: right-justified, F-padded.
    assert pinblock.decode_code("04", clear, "FF" + PLUS_PAN) == "92389"
    # The account field is the number's left-most 12 digits, not ISO 0's right-most 12 before the check digit.
    assert pinblock.encode_code("01", "92389", PLUS_PAN) != clear
    with pytest.raises(AccountError):
        pinblock.encode_code("04", "92389", "400000123456")  # 12 digits: not the full account number


def test_diebold_format_03_is_the_pin_padded_with_f() -> None:
    assert pinblock.encode_code("03", "1234").hex().upper() == "1234FFFFFFFFFFFF"
    assert pinblock.decode_code("03", bytes.fromhex("123456789012FFFF")) == "123456789012"
    with pytest.raises(PinBlockError):  # a pad that is not F, or a hole in the PIN
        pinblock.decode_code("03", bytes.fromhex("12A4FFFFFFFFFFFF"))
    with pytest.raises(PinLengthError):  # 3 digits
        pinblock.decode_code("03", bytes.fromhex("123FFFFFFFFFFFFF"))
    with pytest.raises(PinLengthError):  # 16 digits, no pad: longer than a payShield PIN
        pinblock.decode_code("03", bytes.fromhex("1234567890123456"))


def test_docutel_format_02_carries_the_length_and_at_most_6_digits() -> None:
    assert pinblock.encode_code("02", "1234", fill="123456789").hex().upper() == "4123400123456789"
    assert pinblock.decode_code("02", bytes.fromhex("4123400123456789")) == "1234"
    assert pinblock.decode_code("02", bytes.fromhex("6987654ABCDEF012")) == "987654"
    with pytest.raises(PinLengthError):
        pinblock.encode_code("02", "1234567")
    with pytest.raises(PinLengthError):
        pinblock.decode_code("02", bytes.fromhex("7123456700000000"))
    with pytest.raises(PinBlockError):  # the PIN field is zero-padded digits
        pinblock.decode_code("02", bytes.fromhex("41234AB123456789"))


def test_unknown_codes_are_still_error_23() -> None:
    for code in ("00", "06", "99"):
        with pytest.raises(PinBlockFormatError):
            pinblock.check_code(code)


# ------------------------------------------------------------------------------------------- the HSM


@settings(max_examples=60, deadline=None)
@given(pin=st.text("0123456789", min_size=4, max_size=12), pan=st.text("0123456789", min_size=13, max_size=18),
       code=st.sampled_from(["02", "03", "04"]))
def test_legacy_to_iso_and_back_in_the_software_hsm(pin: str, pan: str, code: str) -> None:
    if code == "02":
        pin = pin[:6]
    source = block(TPK_CLEAR, code, pin, pan)
    out = HSM.translate_pin_tpk_to_zpk(TPK, ZPK1, source, code, "01", pan)
    assert out.pin_length == len(pin) and clear_pin(ZPK1_CLEAR, "01", out.pin_block, pan) == pin
    back = HSM.translate_pin_zpk_to_zpk(ZPK1, ZPK2, out.pin_block, "01", code, pan)
    assert back.pin_format == code and clear_pin(ZPK2_CLEAR, code, back.pin_block, pan) == pin


def test_translation_rules() -> None:
    account = "400000123456"
    long_pin = block(TPK_CLEAR, "01", "1234567", account)
    with pytest.raises(PinLengthError):  # Docutel cannot carry a 7-digit PIN
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK1, long_pin, "01", "02", account)
    # 03 and 02 need no account: any account field gives the same PIN.
    diebold = block(TPK_CLEAR, "03", "4321", account)
    for acct in (account, "999999999999"):
        assert clear_pin(ZPK1_CLEAR, "34", HSM.translate_pin_tpk_to_zpk(
            TPK, ZPK1, diebold, "03", "34", acct).pin_block, acct) == "4321"
    plus = block(TPK_CLEAR, "04", "4321", PLUS_PAN)
    with pytest.raises(AccountError):  # 04 needs the full account number, not the 12-digit field
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK1, plus, "04", "01", account)
    assert HSM.translate_pin_tpk_to_zpk(TPK, ZPK1, plus, "04", "01", "400000123456", pan=PLUS_PAN).pin_length == 4


async def test_ca_and_cc_on_the_wire_with_legacy_formats() -> None:
    account = "400000123456"
    diebold = block(TPK_CLEAR, "03", "1234", account)
    plus = block(TPK_CLEAR, "04", "92389", PLUS_PAN)
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [
            f"0001CA{TPK}{ZPK1}12{diebold}0301{account}".encode(),  # was 23 before format 03 was known
            f"0002CA{TPK}{ZPK1}12{plus}0401FF{PLUS_PAN}".encode(),  # 04: the 18-digit account field
            f"0003CA{TPK}{ZPK1}12{plus}0401{account}".encode(),  # 04 with a 12-digit field: 15 (field too short)
            f"0004CA{TPK}{ZPK1}12{diebold}0302{account}".encode(),  # to Docutel
            f"0005CA{TPK}{ZPK1}12{diebold}0399{account}".encode(),  # unknown destination format
        ])
        await stream.aclose()
    assert answers[0][:10] == b"0001CB0004" and answers[0][-2:] == b"01"
    assert clear_pin(ZPK1_CLEAR, "01", answers[0][10:26].decode(), account) == "1234"
    assert answers[1][:10] == b"0002CB0005"
    assert clear_pin(ZPK1_CLEAR, "01", answers[1][10:26].decode(), PLUS_PAN) == "92389"
    assert answers[2] == b"0003CB15"
    assert answers[3][:10] == b"0004CB0004" and answers[3][-2:] == b"02"
    assert clear_pin(ZPK1_CLEAR, "02", answers[3][10:26].decode(), account) == "1234"
    assert answers[4] == b"0005CB23"


@settings(max_examples=40, deadline=None)
@given(pin=st.text("0123456789", min_size=4, max_size=6), pan=st.text("0123456789", min_size=13, max_size=18),
       code=st.sampled_from(["02", "03", "04"]))
async def test_both_backends_translate_legacy_formats_alike(pin: str, pan: str, code: str) -> None:
    source = block(TPK_CLEAR, code, pin, pan)
    async with backends() as (sw, th):
        out = await same(sw, th, lambda h: h.translate_pin_tpk_to_zpk(
            TPK, ZPK1, source, pan, source_format=code, destination_format="01"))
        assert out.pin_length == len(pin) and decrypted_pin(ZPK1_CLEAR, "01", out.pin_block, pan) == pin
        # CC to the same legacy format under another zone key (02 has a random pad: compare the PIN inside).
        back = await sw.translate_pin_zpk_to_zpk(ZPK1, ZPK2, out.pin_block, pan, destination_format=code)
        again = await th.translate_pin_zpk_to_zpk(ZPK1, ZPK2, out.pin_block, pan, destination_format=code)
        for res in (back, again):
            assert res.pin_format == code and clear_pin(ZPK2_CLEAR, code, res.pin_block, pan) == pin
        pvv = await same(sw, th, lambda h: h.generate_pvv("002", TPK, TPK, source, code, pan, 1))
        assert await same(sw, th, lambda h: h.verify_pin_pvv("001", ZPK1, TPK, out.pin_block, "01", pan, 1, pvv))


async def test_dukpt_accepts_02_and_03_as_g0_sources_but_not_04() -> None:
    async with backends() as (sw, th):
        assert await same_error(sw, th, lambda h: h.translate_pin_dukpt_to_zpk(
            BDK, ZPK1, "FFFF9876543210E00001", "1B9C1845EB993A7A", PLUS_PAN, source_format="04")) == "23"
        # The X9.24 block holds an ISO 0 block: read as 03 it is not a Diebold block (20), so the format is used.
        assert await same_error(sw, th, lambda h: h.translate_pin_dukpt_to_zpk(
            BDK, ZPK1, "FFFF9876543210E00001", "1B9C1845EB993A7A", "4012345678909", source_format="03")) == "20"


def test_the_test_pin_pad_forms_legacy_blocks_too() -> None:
    pad = TestPinPad()
    pan = "4761730010000019"
    assert pad.pin_block("TPK", TPK, "1234", pan, 0) == pad.pin_block("TPK", TPK, "1234", pan, "01")
    for code in ("02", "03", "04", "47", "05"):
        raw = pad.pin_block("TPK", TPK, "1234", pan, code)
        assert HSM.translate_pin_tpk_to_zpk(TPK, ZPK1, raw.hex(), code, "01", pan, pan=pan).pin_length == 4
        assert clear_pin(TPK_CLEAR, code, raw.hex(), pan) == "1234"
