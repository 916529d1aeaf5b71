"""Differential tests against pydukpt (independent TDES DUKPT, X9.24-1:2009; test-only dependency),
and against pycryptodome's CMAC for the HSM's own CMAC."""

from __future__ import annotations

import pydukpt
from Crypto.Cipher import AES, DES3
from Crypto.Hash import CMAC
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hsm import dukpt, pinblock
from hsm.cipher import force_odd_parity, tdes_decrypt
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.mac import cmac, tdes_cmac
from hsm.software import SoftwareHsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
CODEC = KeyCodec(LMK)
SETTINGS = settings(max_examples=100, deadline=None)

keys = st.binary(min_size=16, max_size=16).map(force_odd_parity)
# A KSN whose 21-bit counter has at most 10 bits set (X9.24-1 devices never use more).
ksns = st.tuples(st.binary(min_size=8, max_size=8), st.integers(1, (1 << 21) - 1)).filter(
    lambda t: bin(t[1]).count("1") <= 10
).map(lambda t: (int.from_bytes(t[0] + b"\0\0", "big") & ~((1 << 21) - 1) | t[1]).to_bytes(10, "big"))


@SETTINGS
@given(bdk=keys, ksn=ksns)
def test_ipek_and_transaction_key(bdk: bytes, ksn: bytes) -> None:
    assert dukpt.tdes_ipek(bdk, ksn) == pydukpt.derive_ipek(bdk, ksn)
    ipek = pydukpt.derive_ipek(bdk, ksn)
    assert dukpt.tdes_transaction_key(bdk, ksn) == pydukpt.derive_key(ipek, ksn)
    assert dukpt.tdes_pin_key(bdk, ksn) == pydukpt.pin_key(pydukpt.derive_key(ipek, ksn))


@SETTINGS
@given(bdk=keys, zpk=keys, ksn=ksns, pin=st.text("0123456789", min_size=4, max_size=12),
       pan=st.text("0123456789", min_size=13, max_size=19))
def test_dukpt_pin_translation(bdk: bytes, zpk: bytes, ksn: bytes, pin: str, pan: str) -> None:
    block = pydukpt.encrypt_pin(pydukpt.derive_key(pydukpt.derive_ipek(bdk, ksn), ksn), pin, pan)
    out = HSM.translate_pin_dukpt_to_zpk(
        CODEC.to_lmk("009", ClearKey(bdk), "U"), CODEC.to_lmk("001", ClearKey(zpk), "U"), "A05",
        ksn.hex(), block.hex(), "01", pan[-13:-1]
    )
    assert pinblock.decode(0, tdes_decrypt(zpk, bytes.fromhex(out.pin_block)), pan) == pin


@SETTINGS
@given(key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       data=st.binary(max_size=100))
def test_aes_cmac(key: bytes, data: bytes) -> None:
    assert cmac(key, data) == CMAC.new(key, data, ciphermod=AES).digest()


@SETTINGS
@given(key=st.binary(min_size=24, max_size=24), data=st.binary(max_size=100))
def test_tdes_cmac(key: bytes, data: bytes) -> None:
    key = force_odd_parity(key)
    assume(key[:8] != key[8:16] and key[8:16] != key[16:])  # pycryptodome refuses degenerate keys
    assert tdes_cmac(key, data) == CMAC.new(key, data, ciphermod=DES3).digest()
