"""CVV (CW/CY), MACs (M6/M8, MA/MC) and EMV cryptograms (KQ/KW) through the SoftwareHsm API."""

from __future__ import annotations

import pytest

from hsm import emv
from hsm.cipher import force_odd_parity
from hsm.errors import DataLengthError, InvalidInputError, KeyLengthError, KeyTypeError
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.mac import pad
from hsm.software import SoftwareHsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
CODEC = KeyCodec(LMK)


def test_cvv_input_errors() -> None:
    cvk = HSM.generate_key("402", "U").under_lmk
    with pytest.raises(InvalidInputError):
        HSM.generate_cvv(cvk, "4123456789012345", "871", "101")
    with pytest.raises(InvalidInputError):
        HSM.verify_cvv(cvk, "4123456789012345", "8701", "101", "56")
    single = HSM.generate_key("402", "Z").under_lmk
    with pytest.raises(KeyLengthError):
        HSM.generate_cvv(single, "4123456789012345", "8701", "101")


# ---------------------------------------------------------------------------------------------- MAC

MESSAGE = bytes(range(256)) * 3


@pytest.mark.parametrize(("algorithm", "scheme"), [(1, "U"), (3, "U"), (3, "T"), (5, "U"), (5, "R"), (1, "Z")])
def test_multipart_mac_equals_single_part(algorithm: int, scheme: str) -> None:
    tak = HSM.generate_key("003", scheme).under_lmk
    whole = HSM.generate_mac("003", tak, MESSAGE, algorithm=algorithm, padding=2)
    chain = HSM.generate_mac("003", tak, MESSAGE[:256], algorithm=algorithm, final=False)
    chain = HSM.generate_mac("003", tak, MESSAGE[256:512], algorithm=algorithm, iv=chain, final=False)
    last = HSM.generate_mac("003", tak, MESSAGE[512:], algorithm=algorithm, padding=2, iv=chain)
    assert last == whole and len(whole) == 16


def test_mac_with_zak_and_lengths() -> None:
    zak = HSM.generate_key("008", "U").under_lmk
    mac4 = HSM.generate_mac("008", zak, b"ISO 8583 message", mac_length=4)
    assert len(mac4) == 8
    assert HSM.verify_mac("008", zak, b"ISO 8583 message", mac4)
    assert HSM.generate_mac("008", zak, b"ISO 8583 message").startswith(mac4)
    assert not HSM.verify_mac("008", zak, b"ISO 8583 messagf", mac4)


def test_mac_errors() -> None:
    tak = HSM.generate_key("003", "U").under_lmk
    with pytest.raises(DataLengthError) as excinfo:
        HSM.generate_mac("003", tak, b"odd length", padding=0)
    assert excinfo.value.code == "80"
    with pytest.raises(KeyTypeError):
        HSM.generate_mac("001", HSM.generate_key("001", "U").under_lmk, b"data")
    with pytest.raises(KeyLengthError):
        HSM.generate_mac("003", HSM.generate_key("003", "Z").under_lmk, b"data", algorithm=3)
    with pytest.raises(InvalidInputError):
        HSM.generate_mac("003", tak, b"data", mac_length=9)


def test_padding_methods() -> None:
    assert pad(b"", 1) == bytes(8)
    assert pad(b"\x01" * 8, 1) == b"\x01" * 8
    assert pad(b"\x01" * 8, 2) == b"\x01" * 8 + b"\x80" + bytes(7)
    assert pad(b"\x01\x02", 3) == (16).to_bytes(8, "big") + b"\x01\x02" + bytes(6)


# ---------------------------------------------------------------------------------------------- EMV

MK_AC = CODEC.to_lmk("109", ClearKey(force_odd_parity(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))), "U")
TX_DATA = bytes.fromhex("000000010000000000000000084000000000000840230101000012345678") + bytes.fromhex(
    "58000001A00003220000"
)


def _arqc(cvn: int, data: bytes, un: str | None = None) -> str:
    # The card's side of the exchange, from the internal derivation functions (which the pyemv
    # differential test checks against an independent implementation).
    icc = emv.icc_master_key(force_odd_parity(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")),
                             "4761739001010010", "01")
    key = emv.ac_session_key(cvn, icc, "0012", un)
    return emv.application_cryptogram(key, data, emv.profile(cvn).padding).hex().upper()


@pytest.mark.parametrize(("cvn", "un"), [(10, None), (18, None), (16, "A1B2C3D4"), (17, "01020304")])
def test_arqc_verify_accepts_only_the_right_data(cvn: int, un: str | None) -> None:
    arqc = _arqc(cvn, TX_DATA, un)
    args = (MK_AC, cvn, "4761739001010010", "01", "0012")
    assert HSM.verify_arqc(*args, TX_DATA, arqc, unpredictable_number=un)
    assert not HSM.verify_arqc(*args, TX_DATA[:-1] + b"\x01", arqc, unpredictable_number=un)
    assert not HSM.verify_arqc(MK_AC, cvn, "4761739001010010", "02", "0012", TX_DATA, arqc,
                               unpredictable_number=un)


def test_arqc_with_host_padding() -> None:
    arqc = _arqc(18, TX_DATA)
    padded = TX_DATA + b"\x80" + bytes(-(len(TX_DATA) + 1) % 8)
    assert HSM.verify_arqc(MK_AC, 18, "4761739001010010", "01", "0012", padded, arqc, padded=True)


def test_arpc_methods() -> None:
    arqc = _arqc(10, TX_DATA)
    arpc1 = HSM.generate_arpc(MK_AC, 10, "4761739001010010", "01", "0012", arqc, arc="3030")
    assert len(arpc1) == 16
    assert arpc1 != HSM.generate_arpc(MK_AC, 10, "4761739001010010", "01", "0012", arqc, arc="3035")
    arpc2 = HSM.generate_arpc(MK_AC, 18, "4761739001010010", "01", "0012", arqc, csu="00820000")
    assert len(arpc2) == 8


def test_emv_errors() -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        HSM.verify_arqc(MK_AC, 99, "4761739001010010", "01", "0012", TX_DATA, "00" * 8)
    assert excinfo.value.code == "15"
    with pytest.raises(InvalidInputError):
        HSM.verify_arqc(MK_AC, 16, "4761739001010010", "01", "0012", TX_DATA, "00" * 8)
    with pytest.raises(InvalidInputError):
        HSM.generate_arpc(MK_AC, 10, "4761739001010010", "01", "0012", "00" * 8)
    with pytest.raises(InvalidInputError):
        HSM.generate_arpc(MK_AC, 18, "4761739001010010", "01", "0012", "00" * 8, arc="3030")
