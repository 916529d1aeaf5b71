"""PINs under the LMK: BA, NG, JC, JE and DG, in the software HSM, on the wire and through both backends.

The DG vector, and how it was derived. The open-source Thales simulator (nickntg/thalessimulatorlibrary) answers
DG by taking its "PIN under LMK" field as ``"0"`` + the clear PIN (``DecryptPINUnderHostStorage``: drop the first
character) and computing the VISA PVV: transformed security parameter = 11 digits of the 12-digit account field
(its C# port: ``AccountNumber.Substring(1, 11)``, the 11 right-most, as VISA defines it) + PVKI + the first 4 PIN
digits, TDES-encrypted under the PVK pair, then decimalised. Inputs: PVK pair 0123456789ABCDEF / FEDCBA9876543210,
PAN 4123456789012345 (account field 345678901234), PVKI 1, PIN 1234, so the simulator's DG request carries the PIN
as ``01234``. TSP = 45678901234 1 1234; TDES under the pair = the block computed below; its decimal digits, left to
right, give PVV 1894 (psec's ``generate_visa_pvv`` agrees). A payShield-compatible server under the public test LMK
must answer the simulator's request with 1894, and the same PVV for the same PIN under Bulkhead's own encoding.
"""

from __future__ import annotations

import os

import psec.pin
import pytest
import trio
from Crypto.Cipher import DES3
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm import pinlmk
from hsm.cipher import force_odd_parity
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.pinverify import decimalise_visa
from hsm.software import SoftwareHsm
from tests.hsm.test_atm_hsm_legacy_formats import block
from tests.hsm.test_interface_backends import TPK, TPK_CLEAR, ZPK1, ZPK1_CLEAR, backends, same, same_error
from tests.hsm.test_thales_support import HSM, LMK, LOCALHOST, exchange, running_server

PVK_CLEAR = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PVK = KeyCodec(LMK).to_lmk("002", ClearKey(PVK_CLEAR), "U")
PAN = "4123456789012345"
ACCOUNT = "345678901234"
PVV = "1894"


def test_the_dg_vector_derivation() -> None:
    tsp = ACCOUNT[-11:] + "1" + "1234"
    assert tsp == "4567890123411234"
    encrypted = DES3.new(PVK_CLEAR, DES3.MODE_ECB).encrypt(bytes.fromhex(tsp)).hex().upper()
    assert decimalise_visa(encrypted, 4) == PVV == psec.pin.generate_visa_pvv(PVK_CLEAR, "1", "1234", PAN)


def test_dg_answers_what_the_simulator_computes() -> None:
    # The simulator's own PIN-under-LMK form, readable under the public test LMK only.
    assert HSM.generate_pvv_from_lmk_pin(PVK, "01234", ACCOUNT, 1) == PVV
    # Bulkhead's encoding of the same PIN gives the same PVV, through BA and through JC.
    assert HSM.generate_pvv_from_lmk_pin(PVK, HSM.encrypt_pin("1234", ACCOUNT), ACCOUNT, 1) == PVV
    pin_block = block(TPK_CLEAR, "01", "1234", PAN)
    under_lmk = HSM.translate_pin_to_lmk("002", TPK, pin_block, "01", PAN)
    assert HSM.generate_pvv_from_lmk_pin(PVK, under_lmk, PAN, 1) == PVV


def test_the_encoding_is_an_account_bound_permutation_that_hides_the_pin() -> None:
    key = LMK.pin_pair()
    values = {pinlmk.encrypt(key, f"{i:04d}", ACCOUNT) for i in range(10000)}
    assert len(values) == 10000 and all(len(v) == 5 and v[0] == "1" and v.isdigit() for v in values)
    enc = pinlmk.encrypt(key, "123456", ACCOUNT)
    assert len(enc) == 7 and pinlmk.decrypt(key, enc, ACCOUNT) == "123456"
    assert enc == pinlmk.encrypt(key, "123456", ACCOUNT)  # deterministic, as a payShield's
    assert pinlmk.encrypt(key, "123456", "345678901235") != enc  # bound to the account
    assert pinlmk.decrypt(key, enc, "345678901235") != "123456"
    # The PIN does not show through: a random permutation of 10,000 values has about one fixed point.
    assert sum(pinlmk.encrypt(key, f"{i:04d}", ACCOUNT)[1:] == f"{i:04d}" for i in range(10000)) < 10
    with pytest.raises(pinlmk.PinUnderLmkError):
        pinlmk.decrypt(key, "2" + enc[1:], ACCOUNT)  # not this encoding
    with pytest.raises(pinlmk.PinUnderLmkError):
        pinlmk.decrypt(key, "01234", ACCOUNT)  # the simulator's form, not accepted by default


def test_another_lmk_refuses_the_simulators_clear_form_and_reads_only_its_own() -> None:
    other = SoftwareHsm(Lmk([force_odd_parity(os.urandom(16)) for _ in range(20)]))
    assert not other.test_lmk and HSM.test_lmk
    pvk = KeyCodec(other._lmk).to_lmk("002", ClearKey(PVK_CLEAR), "U")
    with pytest.raises(pinlmk.PinUnderLmkError) as info:
        other.generate_pvv_from_lmk_pin(pvk, "01234", ACCOUNT, 1)
    assert info.value.code == "14"
    assert other.generate_pvv_from_lmk_pin(pvk, other.encrypt_pin("1234", ACCOUNT), ACCOUNT, 1) == PVV
    with pytest.raises(pinlmk.PinUnderLmkError):  # a value made under another LMK does not decrypt here
        other.generate_pvv_from_lmk_pin(pvk, "9" + HSM.encrypt_pin("1234", ACCOUNT)[1:], ACCOUNT, 1)


async def test_ba_ng_dg_jc_je_on_the_wire() -> None:
    pin_block = block(TPK_CLEAR, "01", "1234", PAN)
    zpk_block = block(ZPK1_CLEAR, "03", "1234", PAN)  # legacy Diebold block as a JE source
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        ba, = await exchange(stream, [f"0001BA1234F{ACCOUNT}".encode()])
        assert ba[:8] == b"0001BB00" and len(ba) == 13 and ba[8:9] == b"1"
        encrypted = ba[8:].decode()
        answers = await exchange(stream, [
            f"0002NG{ACCOUNT}{encrypted}".encode(),
            f"0003DG{PVK}{encrypted}{ACCOUNT}1".encode(),
            f"0004DG{PVK}01234{ACCOUNT}1".encode(),  # exactly the simulator's DG request
            f"0005JC{TPK}{pin_block}01{ACCOUNT}".encode(),
            f"0006JE{ZPK1}{zpk_block}03{ACCOUNT}".encode(),
            f"0007BA1234{ACCOUNT}".encode(),  # the clear PIN is padded with one F: 15
            f"0008DG{PVK}21234{ACCOUNT}1".encode(),  # not a PIN under this LMK: 14
        ])
        await stream.aclose()
    assert answers[0][:13] == b"0002NH001234F" and answers[0][13:].isdigit() and len(answers[0]) == 25
    assert answers[1] == f"0003DH00{PVV}".encode() and answers[2] == f"0004DH00{PVV}".encode()
    assert answers[3] == f"0005JD00{encrypted}".encode() and answers[4] == f"0006JF00{encrypted}".encode()
    assert answers[5] == b"0007BB15" and answers[6] == b"0008DH14"


async def test_ng_is_disabled_unless_the_lmk_is_the_public_test_lmk() -> None:
    other = SoftwareHsm(Lmk([force_odd_parity(os.urandom(16)) for _ in range(20)]))
    encrypted = other.encrypt_pin("1234", ACCOUNT)
    async with running_server(other) as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [f"0001NG{ACCOUNT}{encrypted}".encode(),
                                          f"0002BA1234F{ACCOUNT}".encode()])
        await stream.aclose()
    assert answers[0] == b"0001NH68" and answers[1][:8] == b"0002BB00"


@settings(max_examples=50, deadline=None)
@given(pin=st.text("0123456789", min_size=4, max_size=12), pan=st.text("0123456789", min_size=13, max_size=19))
async def test_je_then_dg_equals_fw_through_both_backends(pin: str, pan: str) -> None:
    zpk_block = block(ZPK1_CLEAR, "01", pin, pan)
    tpk_block = block(TPK_CLEAR, "47", pin, pan)
    async with backends() as (sw, th):
        under = await same(sw, th, lambda h: h.translate_pin_to_lmk("001", ZPK1, zpk_block, "01", pan))
        assert len(under) == len(pin) + 1
        assert await same(sw, th, lambda h: h.translate_pin_to_lmk("002", TPK, tpk_block, "47", pan)) == under
        from_lmk = await same(sw, th, lambda h: h.generate_pvv_from_lmk_pin(PVK, under, pan, 3))
        fw = await same(sw, th, lambda h: h.generate_pvv("001", ZPK1, PVK, zpk_block, "01", pan, 3))
        assert from_lmk == fw


async def test_pin_under_lmk_errors_alike_through_both_backends() -> None:
    zpk_block = block(ZPK1_CLEAR, "01", "1234", PAN)
    async with backends() as (sw, th):
        assert await same_error(sw, th, lambda h: h.translate_pin_to_lmk("003", ZPK1, zpk_block, "01", PAN)) == "28"
        assert await same_error(sw, th, lambda h: h.translate_pin_to_lmk("001", TPK, zpk_block, "01", PAN)) == "10"
        assert await same_error(sw, th, lambda h: h.generate_pvv_from_lmk_pin(PVK, "21234", PAN, 1)) == "14"
        assert await same(sw, th, lambda h: h.generate_pvv_from_lmk_pin(PVK, "01234", PAN, 1)) == PVV
