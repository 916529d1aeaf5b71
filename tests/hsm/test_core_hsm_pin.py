"""PIN translation (CA, CC, CI/G0, AES DUKPT) and PIN verification (DA/EA, DC/EC, FW, BK)."""

from __future__ import annotations

import pytest

from hsm import dukpt, pinblock
from hsm.cipher import force_odd_parity, tdes_decrypt, tdes_encrypt
from hsm.errors import (
    AccountError,
    HsmError,
    InvalidInputError,
    PinBlockError,
    PinBlockFormatError,
    PinLengthError,
)
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
CODEC = KeyCodec(LMK)

PAN = "4012345678909"
ACCOUNT = "401234567890"  # 12 right-most digits without the check digit
TPK_CLEAR = force_odd_parity(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
ZPK_CLEAR = force_odd_parity(bytes.fromhex("89ABCDEF01234567F0E1D2C3B4A59687"))
AES_ZPK_CLEAR = bytes(range(16))
TPK = CODEC.to_lmk("002", ClearKey(TPK_CLEAR), "U")
ZPK = CODEC.to_lmk("001", ClearKey(ZPK_CLEAR), "U")
AES_ZPK = CODEC.to_lmk("001", ClearKey(AES_ZPK_CLEAR, aes=True), "R")
FORMATS = {"01": 0, "05": 1, "34": 2, "47": 3}


def tpk_block(pin: str, fmt: int, account: str = ACCOUNT) -> str:
    return tdes_encrypt(TPK_CLEAR, pinblock.encode(fmt, pin, account)).hex().upper()


@pytest.mark.parametrize("src", sorted(FORMATS))
@pytest.mark.parametrize("dst", sorted(FORMATS))
def test_tpk_to_zpk_every_format(src: str, dst: str) -> None:
    out = HSM.translate_pin_tpk_to_zpk(TPK, ZPK, tpk_block("98765", FORMATS[src]), src, dst, ACCOUNT)
    assert (out.pin_length, out.pin_format) == (5, dst)
    clear = tdes_decrypt(ZPK_CLEAR, bytes.fromhex(out.pin_block))
    assert pinblock.decode(FORMATS[dst], clear, ACCOUNT) == "98765"


def test_zpk_to_zpk_to_aes_format_4_and_back() -> None:
    src_block = tdes_encrypt(ZPK_CLEAR, pinblock.encode(0, "1234", ACCOUNT)).hex().upper()
    out = HSM.translate_pin_zpk_to_zpk(ZPK, AES_ZPK, src_block, "01", "48", ACCOUNT, pan=PAN)
    assert len(out.pin_block) == 32 and out.pin_format == "48"
    assert pinblock.decrypt_format4(AES_ZPK_CLEAR, bytes.fromhex(out.pin_block), PAN) == "1234"
    back = HSM.translate_pin_zpk_to_zpk(AES_ZPK, ZPK, out.pin_block, "48", "47", ACCOUNT, pan=PAN)
    assert pinblock.decode(3, tdes_decrypt(ZPK_CLEAR, bytes.fromhex(back.pin_block)), ACCOUNT) == "1234"


def test_format_4_is_bound_to_the_pan() -> None:
    block = pinblock.encrypt_format4(AES_ZPK_CLEAR, "1234", PAN).hex().upper()
    with pytest.raises(HsmError) as excinfo:
        HSM.translate_pin_zpk_to_zpk(AES_ZPK, ZPK, block, "48", "01", ACCOUNT, pan="4012345678917")
    assert excinfo.value.code in ("20", "24")


def test_format_4_needs_pan_and_aes_key() -> None:
    src_block = tdes_encrypt(ZPK_CLEAR, pinblock.encode(0, "1234", ACCOUNT)).hex().upper()
    with pytest.raises(AccountError):
        HSM.translate_pin_zpk_to_zpk(ZPK, AES_ZPK, src_block, "01", "48", ACCOUNT)
    with pytest.raises(PinBlockFormatError):
        HSM.translate_pin_zpk_to_zpk(ZPK, ZPK, src_block, "01", "48", ACCOUNT, pan=PAN)
    with pytest.raises(PinBlockFormatError):
        HSM.translate_pin_zpk_to_zpk(ZPK, AES_ZPK, src_block, "01", "01", ACCOUNT)


def test_full_pan_accepted_as_account() -> None:
    out = HSM.translate_pin_tpk_to_zpk(TPK, ZPK, tpk_block("1234", 0), "01", "01", PAN)
    assert pinblock.decode(0, tdes_decrypt(ZPK_CLEAR, bytes.fromhex(out.pin_block)), ACCOUNT) == "1234"


def test_wrong_account_gives_pin_block_error() -> None:
    with pytest.raises(HsmError) as excinfo:
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK, tpk_block("1234", 0), "01", "01", "999999999999")
    assert excinfo.value.code in ("20", "24")


def test_pin_errors() -> None:
    long_pin = tpk_block("123456789012", 0)
    with pytest.raises(PinLengthError) as excinfo:
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK, long_pin, "01", "01", ACCOUNT, max_pin_length=6)
    assert excinfo.value.code == "24"
    with pytest.raises(PinBlockFormatError) as fmt_info:
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK, long_pin, "99", "01", ACCOUNT)
    assert fmt_info.value.code == "23"  # 03 (Diebold) is a known format now: tests/hsm/test_atm_hsm_legacy_formats.py
    garbage = tdes_encrypt(TPK_CLEAR, bytes.fromhex("0412ABCDEFFFFFFF")).hex()
    with pytest.raises(PinBlockError) as block_info:
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK, garbage, "34", "01", ACCOUNT)
    assert block_info.value.code == "20"
    with pytest.raises(InvalidInputError):
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK, "XYZ", "01", "01", ACCOUNT)
    with pytest.raises(AccountError) as account_info:
        HSM.translate_pin_tpk_to_zpk(TPK, ZPK, long_pin, "01", "01", "12345")
    assert account_info.value.code == "22"


# ---------------------------------------------------------------------------------------- DUKPT

def test_g0_source_format_and_20_digit_ksn() -> None:
    bdk_clear = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    bdk = CODEC.to_lmk("009", ClearKey(bdk_clear), "U")
    ksn = "FFFF9876543210E00007"
    key = dukpt.tdes_pin_key(bdk_clear, bytes.fromhex(ksn))
    block = tdes_encrypt(key, pinblock.encode(3, "4321", ACCOUNT)).hex()
    out = HSM.translate_pin_dukpt_to_zpk(bdk, ZPK, "605", ksn, block, "01", ACCOUNT, source_format="47")
    assert pinblock.decode(0, tdes_decrypt(ZPK_CLEAR, bytes.fromhex(out.pin_block)), ACCOUNT) == "4321"
    with pytest.raises(InvalidInputError):
        HSM.translate_pin_dukpt_to_zpk(bdk, ZPK, "605", ksn[:-1], block, "01", ACCOUNT)


@pytest.mark.parametrize("working_key", ["AES128", "2TDEA"])
def test_aes_dukpt_to_aes_zone_key(working_key: str) -> None:
    # X9.24-3 Annex B.1 BDK; the device enciphers under the transaction PIN key.
    bdk_clear = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
    bdk = CODEC.to_lmk("009", ClearKey(bdk_clear, aes=True), "R")
    ksn = "123456789012345600000005"
    pin_key = dukpt.aes_working_key(bdk_clear, bytes.fromhex(ksn), dukpt.USAGE_PIN, working_key)
    if working_key == "AES128":
        block, src = pinblock.encrypt_format4(pin_key, "246810", PAN).hex(), "48"
    else:
        block, src = tdes_encrypt(pin_key, pinblock.encode(0, "246810", ACCOUNT)).hex(), "01"
    out = HSM.translate_pin_aes_dukpt(bdk, AES_ZPK, ksn, block, PAN, working_key=working_key, source_format=src)
    assert out.pin_length == 6 and out.pin_format == "48"
    assert pinblock.decrypt_format4(AES_ZPK_CLEAR, bytes.fromhex(out.pin_block), PAN) == "246810"


# ---------------------------------------------------------------------------------- verification

PVK_CLEAR = force_odd_parity(bytes.fromhex("FEDCBA98765432100123456789ABCDEF"))
PVK = CODEC.to_lmk("002", ClearKey(PVK_CLEAR), "U")
DEC_TABLE = "0123456789012345"


def test_ibm_offset_issue_then_verify() -> None:
    block = tpk_block("7391", 0)
    offset = HSM.generate_ibm_offset("002", TPK, PVK, block, "01", ACCOUNT, 4, DEC_TABLE, "4012N")
    assert len(offset) == 12 and offset.endswith("FFFFFFFF") and offset[:4].isdigit()
    assert HSM.verify_pin_ibm("002", TPK, PVK, block, "01", ACCOUNT, 4, DEC_TABLE, "4012N", offset)
    assert not HSM.verify_pin_ibm("002", TPK, PVK, tpk_block("7392", 0), "01", ACCOUNT, 4, DEC_TABLE,
                                  "4012N", offset)
    # Offset 0000 means the PIN is the natural PIN: DES of the validation data, decimalised.
    natural = tdes_encrypt(PVK_CLEAR, bytes.fromhex("401267890FFFFFFF")).hex().upper()
    natural = natural.translate(str.maketrans("0123456789ABCDEF", DEC_TABLE))[:4]
    assert HSM.verify_pin_ibm("002", TPK, PVK, tpk_block(natural, 0), "01", ACCOUNT, 4, DEC_TABLE, "4012N",
                              "0000FFFFFFFF")


def test_ibm_zpk_and_bad_table() -> None:
    block = tdes_encrypt(ZPK_CLEAR, pinblock.encode(0, "55555", ACCOUNT)).hex()
    offset = HSM.generate_ibm_offset("001", ZPK, PVK, block, "01", ACCOUNT, 5, DEC_TABLE, "N")
    assert HSM.verify_pin_ibm("001", ZPK, PVK, block, "01", ACCOUNT, 5, DEC_TABLE, "N", offset)
    with pytest.raises(HsmError) as excinfo:
        HSM.verify_pin_ibm("001", ZPK, PVK, block, "01", ACCOUNT, 5, "01234567890123AB", "N", offset)
    assert excinfo.value.code == "25"


def test_pvv_generate_then_verify() -> None:
    block = tpk_block("1234", 0)
    pvv = HSM.generate_pvv("002", TPK, PVK, block, "01", ACCOUNT, 1)
    assert len(pvv) == 4 and pvv.isdigit()
    assert HSM.verify_pin_pvv("002", TPK, PVK, block, "01", ACCOUNT, 1, pvv)
    assert not HSM.verify_pin_pvv("002", TPK, PVK, block, "01", ACCOUNT, 2, pvv)
    assert not HSM.verify_pin_pvv("002", TPK, PVK, tpk_block("1235", 0), "01", ACCOUNT, 1, pvv)
    zpk_block = tdes_encrypt(ZPK_CLEAR, pinblock.encode(0, "1234", ACCOUNT)).hex()
    assert HSM.verify_pin_pvv("001", ZPK, PVK, zpk_block, "01", ACCOUNT, 1, pvv)


def test_ibm_offset_field_must_be_digits_then_f() -> None:
    block = tpk_block("7391", 0)
    with pytest.raises(InvalidInputError) as excinfo:
        HSM.verify_pin_ibm("002", TPK, PVK, block, "01", ACCOUNT, 4, DEC_TABLE, "4012N", "12AB")
    assert excinfo.value.code == "15"


@pytest.mark.parametrize(
    "table",
    [
        "0000000000000000",  # everything decimalises to 0: offset 0000 verifies for PIN 0000
        "1123456789112345",  # digit 0 removed (the attack's probe for "is there a 0 in the PIN?")
        "0123456789999999",  # all ten digits, but 9 seven times
        "012345678901234",  # 15 digits
        "01234567890123456",  # 17 digits
        "0123456789ABCDEF",  # not decimal
        "０１２３４５６７８９０１２３４５",  # fullwidth digits: str.isdigit() says yes, the HSM must not
    ],
)
def test_decimalisation_tables_fit_for_the_attack_are_refused(table: str) -> None:
    block = tpk_block("7391", 0)
    offset = HSM.generate_ibm_offset("002", TPK, PVK, block, "01", ACCOUNT, 4, DEC_TABLE, "4012N")
    for call in (
        lambda: HSM.verify_pin_ibm("002", TPK, PVK, block, "01", ACCOUNT, 4, table, "4012N", offset),
        lambda: HSM.generate_ibm_offset("002", TPK, PVK, block, "01", ACCOUNT, 4, table, "4012N"),
    ):
        with pytest.raises(HsmError) as excinfo:
            call()
        assert excinfo.value.code == "25"
        assert table not in str(excinfo.value)


@pytest.mark.parametrize("table", ["0123456789012345", "9876543210543210", "3819027456019283"])
def test_decimalisation_tables_with_every_digit_at_most_four_times_are_accepted(table: str) -> None:
    block = tpk_block("7391", 0)
    offset = HSM.generate_ibm_offset("002", TPK, PVK, block, "01", ACCOUNT, 4, table, "4012N")
    assert HSM.verify_pin_ibm("002", TPK, PVK, block, "01", ACCOUNT, 4, table, "4012N", offset)
