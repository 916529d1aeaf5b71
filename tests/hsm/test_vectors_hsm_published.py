"""Published test vectors, as tables, run through the HSM's internal modules and its public API.

Sources (public): ISO 9564-1 examples (PIN blocks); ISO/IEC 9797-1 Annex B and RFC 4493 §4 (MACs);
ANSI X9.24-1:2009 Annex A (TDES DUKPT); ANSI X9.24-3:2017 Annex B.1 (AES DUKPT); ANSI X9 TR-31:2018
Annex A (key blocks); the widely published VISA CVV example; the public Thales test LMK and the worked
ZMK cryptogram example quoted with it in payShield training material.
"""

from __future__ import annotations

import pytest

from hsm import dukpt, pinblock, tr31
from hsm.cipher import force_odd_parity, tdes_decrypt, tdes_encrypt, xor
from hsm.cvv import visa_cvv
from hsm.errors import HsmError
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.mac import cmac, mac_final
from hsm.software import SoftwareHsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
CODEC = KeyCodec(LMK)


def under_lmk(code: str, clear_hex: str, scheme: str = "U") -> str:
    return CODEC.to_lmk(code, ClearKey(bytes.fromhex(clear_hex)), scheme)


# --------------------------------------------------------------------------- keys under the test LMK

def test_worked_example_zmk_cryptogram_and_kcv() -> None:
    # Thales test LMK worked example: ZMK 0808..08 is U0A26760BD07871026B6702C5F9BA25B3, KCV D6A875.
    assert under_lmk("000", "08" * 16) == "U0A26760BD07871026B6702C5F9BA25B3"
    assert HSM.key_check_value("000", "U0A26760BD07871026B6702C5F9BA25B3") == "D6A875"


def test_kcv_vector() -> None:
    # TDES key 0123456789ABCDEFFEDCBA9876543210 encrypts 8 zero bytes to 08D7B4FB629D0885.
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert tdes_encrypt(key, bytes(8)).hex().upper() == "08D7B4FB629D0885"
    cryptogram = under_lmk("001", key.hex())
    assert HSM.key_check_value("001", cryptogram) == "08D7B4"
    assert HSM.key_check_value("001", cryptogram, full=True) == "08D7B4FB629D0885"


# --------------------------------------------------------------------------------------- PIN blocks

PIN_BLOCKS = [
    # (ISO format, PIN, account or PAN, fill, block)  -- ISO 9564-1 examples
    (0, "1234", "43219876543210987", None, "0412AC89ABCDEF67"),
    (1, "123456", None, "6ABCFDE1", "161234566ABCFDE1"),
    (2, "123456", None, None, "26123456FFFFFFFF"),
    (3, "123456", "222333444555", "AFBECDDC", "361216759CFA8889"),
]


@pytest.mark.parametrize(("fmt", "pin", "account", "fill", "block"), PIN_BLOCKS)
def test_pin_block_vectors(fmt: int, pin: str, account: str | None, fill: str | None, block: str) -> None:
    assert pinblock.encode(fmt, pin, account, fill).hex().upper() == block
    assert pinblock.decode(fmt, bytes.fromhex(block), account) == pin


# --------------------------------------------------------------------------------------------- CVV

CVK = "0123456789ABCDEFFEDCBA9876543210"
CVV_VECTORS = [
    # VISA example card: PAN 4123456789012345, expiry 8701 -> CVV 561, CVV2 636, iCVV 651.
    ("101", "561"),
    ("000", "636"),
    ("999", "651"),
]


@pytest.mark.parametrize(("service_code", "cvv"), CVV_VECTORS)
def test_cvv_vectors(service_code: str, cvv: str) -> None:
    assert visa_cvv(bytes.fromhex(CVK), "4123456789012345", "8701", service_code) == cvv
    cvk = under_lmk("402", CVK)
    assert HSM.generate_cvv(cvk, "4123456789012345", "8701", service_code) == cvv
    assert HSM.verify_cvv(cvk, "4123456789012345", "8701", service_code, cvv)
    wrong = f"{(int(cvv) + 1) % 1000:03d}"
    assert not HSM.verify_cvv(cvk, "4123456789012345", "8701", service_code, wrong)


# ------------------------------------------------------------------------------------------- MACs

MAC_VECTORS = [
    # (algorithm, padding, key, data, MAC prefix) -- ISO/IEC 9797-1 Annex B
    (1, 1, "0123456789ABCDEF", b"Now is the time for all ", "70A30640CC76DD8B"),
    (1, 2, "0123456789ABCDEF", b"Now is the time for all ", "10E1F0F1"),
    (1, 3, "0123456789ABCDEF", b"Now is the time for all ", "2C58FB8F"),
    (3, 1, "0123456789ABCDEFFEDCBA9876543210", b"Now is the time for all ", "A1C72E74EA3FA9B6"),
    (3, 2, "0123456789ABCDEFFEDCBA9876543210", b"Now is the time for all ", "E9086230CA3BE796"),
    (3, 3, "0123456789ABCDEFFEDCBA9876543210", b"Now is the time for all ", "AB059463D7A7D170"),
    (3, 1, "0123456789ABCDEFFEDCBA9876543210", b"Now is the time for it", "2E2B1428CC78254F"),
]


@pytest.mark.parametrize(("alg", "padding", "key", "data", "mac"), MAC_VECTORS)
def test_iso9797_vectors(alg: int, padding: int, key: str, data: bytes, mac: str) -> None:
    assert mac_final(bytes.fromhex(key), data, alg, padding).hex().upper().startswith(mac)
    # The same through the HSM with the key as a TAK under the test LMK (single length: scheme Z).
    tak = under_lmk("003", key, "U" if len(key) == 32 else "Z")
    got = HSM.generate_mac("003", tak, data, algorithm=alg, padding=padding, mac_length=len(mac) // 2)
    assert got == mac
    assert HSM.verify_mac("003", tak, data, mac, algorithm=alg, padding=padding)
    assert not HSM.verify_mac("003", tak, data + b"!", mac, algorithm=alg, padding=padding)


CMAC_VECTORS = [
    # RFC 4493 §4, AES-128 key 2b7e1516...
    (b"", "bb1d6929e95937287fa37d129b756746"),
    (bytes.fromhex("6bc1bee22e409f96e93d7e117393172a"), "070a16b46b4d4144f79bdd9dd04a287c"),
]


@pytest.mark.parametrize(("data", "mac"), CMAC_VECTORS)
def test_aes_cmac_vectors(data: bytes, mac: str) -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert cmac(key, data).hex() == mac
    tak = CODEC.to_lmk("003", ClearKey(key, aes=True), "R")
    assert HSM.generate_mac("003", tak, data, algorithm=5, mac_length=16) == mac.upper()


# ------------------------------------------------------------------------------------- TDES DUKPT

BDK = "0123456789ABCDEFFEDCBA9876543210"
DUKPT_PIN_BLOCKS = [
    # X9.24-1:2009 Annex A: PIN 1234, PAN 4012345678909, KSN FFFF9876543210E0000n
    ("FFFF9876543210E00001", "1B9C1845EB993A7A", "042666B49184CFA368DE9628D0397BC9"),
    ("FFFF9876543210E00002", "10A01C8D02C69107", "C46551CEF9FD24B0AA9AD834130D3BC7"),
    ("FFFF9876543210E00003", "18DC07B94797B466", None),
]


def test_tdes_dukpt_ipek() -> None:
    ipek = dukpt.tdes_ipek(bytes.fromhex(BDK), bytes.fromhex("FFFF9876543210E00000"))
    assert ipek.hex().upper() == "6AC292FAA1315B4D858AB3A3D7D5933A"


@pytest.mark.parametrize(("ksn", "block", "key"), DUKPT_PIN_BLOCKS)
def test_tdes_dukpt_pin_blocks(ksn: str, block: str, key: str | None) -> None:
    bdk, ksn_raw = bytes.fromhex(BDK), bytes.fromhex(ksn)
    if key is not None:
        assert dukpt.tdes_transaction_key(bdk, ksn_raw).hex().upper() == key
    clear = tdes_decrypt(dukpt.tdes_pin_key(bdk, ksn_raw), bytes.fromhex(block))
    assert pinblock.decode(0, clear, "4012345678909") == "1234"
    # Through the HSM (CI): DUKPT block -> ZPK, format 01 both sides, KSN descriptor 605 (16H KSN field).
    zpk_clear = "1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A"
    out = HSM.translate_pin_dukpt_to_zpk(
        under_lmk("009", BDK), under_lmk("001", zpk_clear), "605", ksn[4:], block, "01", "401234567890"
    )
    assert out.pin_length == 4 and out.pin_format == "01"
    decoded = tdes_decrypt(bytes.fromhex(zpk_clear), bytes.fromhex(out.pin_block))
    assert pinblock.decode(0, decoded, "401234567890") == "1234"


def test_tdes_dukpt_request_mac_and_variants() -> None:
    bdk, ksn = bytes.fromhex(BDK), bytes.fromhex("FFFF9876543210E00001")
    mac_key = xor(dukpt.tdes_transaction_key(bdk, ksn), dukpt.MAC_REQUEST_VARIANT)
    # X9.24-1 Annex A: the MAC of "4012345678909D987" under the request MAC key (X9.19, zero padding).
    assert mac_final(mac_key, b"4012345678909D987", 3, 1).hex().upper() == "9CCC78173FC4FB64"
    assert dukpt.PIN_VARIANT.hex().upper() == "00000000000000FF00000000000000FF"
    assert dukpt.MAC_RESPONSE_VARIANT.hex().upper() == "00000000FF00000000000000FF000000"
    assert dukpt.DATA_REQUEST_VARIANT.hex().upper() == "0000000000FF00000000000000FF0000"
    assert dukpt.DATA_RESPONSE_VARIANT.hex().upper() == "000000FF00000000000000FF00000000"


# -------------------------------------------------------------------------------------- AES DUKPT

AES_BDK = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
AES_KEYS = [
    # X9.24-3:2017 Annex B.1 (AES-128 BDK, initial key ID 1234567890123456)
    ("123456789012345600000001", "4F21B565BAD9835E112B6465635EAE44"),
    ("123456789012345600000002", "2F34D68DE10F68D38091A73B9E7C437C"),
    ("123456789012345600000003", "031504E530365CF81264238540518318"),
]


def test_aes_dukpt_initial_key() -> None:
    key = dukpt.aes_initial_key(bytes.fromhex(AES_BDK), bytes.fromhex("1234567890123456"))
    assert key.hex().upper() == "1273671EA26AC29AFA4D1084127652A1"


@pytest.mark.parametrize(("ksn", "key"), AES_KEYS)
def test_aes_dukpt_transaction_keys(ksn: str, key: str) -> None:
    assert dukpt.aes_transaction_key(bytes.fromhex(AES_BDK), bytes.fromhex(ksn)).hex().upper() == key


@pytest.mark.parametrize(
    ("usage", "key"),
    [
        (dukpt.USAGE_PIN, "AF8CB133A78F8DC2D1359F18527593FB"),
        (dukpt.USAGE_MAC_GENERATE, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),
        (dukpt.USAGE_DATA_ENCRYPT, "A35C412EFD41FDB98B69797C02DCD08F"),
    ],
)
def test_aes_dukpt_working_keys(usage: int, key: str) -> None:
    ksn = bytes.fromhex("123456789012345600000001")
    assert dukpt.aes_working_key(bytes.fromhex(AES_BDK), ksn, usage).hex().upper() == key


# ------------------------------------------------------------------------------------------ TR-31

TR31_VECTORS = [
    # TR-31:2018 Annex A (version A, key variant binding; version B, key derivation binding)
    (
        "89E88CF7931444F334BD7547FC3F380C",
        "F039121BEC83D26B169BDCD5B22AAF8F",
        "A0072P0TE00E0000F5161ED902807AF26F1D62263644BD24192FDB3193C730301CEE8701",
    ),
    (
        "DD7515F2BFC17F85CE48F3CA25CB21F6",
        "3F419E1CB7079442AA37474C2EFBF8B8",
        "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E",
    ),
]


@pytest.mark.parametrize(("kbpk", "key", "block"), TR31_VECTORS)
def test_tr31_vectors(kbpk: str, key: str, block: str) -> None:
    header, clear = tr31.unwrap(bytes.fromhex(kbpk), block)
    assert clear.hex().upper() == key
    assert (header.usage, header.algorithm, header.mode_of_use, header.exportability) == ("P0", "T", "E", "E")
    # Through the HSM: the KBPK is a ZMK under the test LMK. The published KBPKs have even-parity bytes; DES
    # ignores parity bits, so the ZMK is stored parity-fixed. Both blocks are P0 with mode of use E (encrypt
    # only, as a PIN pad receives it): a ZPK under the variant LMK would also decrypt, so the HSM refuses them
    # (A8), and version A is refused before that (BE) unless legacy versions are enabled.
    zmk = under_lmk("000", force_odd_parity(bytes.fromhex(kbpk)).hex())
    legacy = SoftwareHsm(LMK, tr31_legacy_versions=True)
    for hsm, expected in ((HSM, "BE" if block[0] == "A" else "A8"), (legacy, "A8")):
        with pytest.raises(HsmError) as refused:
            hsm.tr31_import(zmk, block)
        assert refused.value.code == expected
    # The same key in a block that grants both directions (mode B) imports, with the published key's KCV.
    both_ways = tr31.wrap(bytes.fromhex(kbpk), tr31.Header(block[0], "P0", "T", "B"), bytes.fromhex(key))
    imported = legacy.tr31_import(zmk, both_ways)
    assert imported.key_type == "001"
    assert imported.kcv == tdes_encrypt(bytes.fromhex(key), bytes(8))[:3].hex().upper()
    tampered = block[:-1] + ("0" if block[-1] != "0" else "1")
    with pytest.raises(Exception) as excinfo:
        tr31.unwrap(bytes.fromhex(kbpk), tampered)
    assert getattr(excinfo.value, "code", None) == "84"
