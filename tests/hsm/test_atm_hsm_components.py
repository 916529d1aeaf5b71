"""A terminal master key formed from components under dual control (software HSM, A4 on the wire, both backends),
and keys sent under a TMK imported back, as a terminal installs them.

Expected values are computed here independently: the formed key is the XOR of the clear components with odd
parity forced, and its KCV is TDES (pycryptodome) of eight zero bytes under it.
"""

from __future__ import annotations

import logging

import pytest
import trio
from Crypto.Cipher import DES3

from hsm.cipher import force_odd_parity
from hsm.errors import HsmError
from hsm.keys import ClearKey, KeyCodec
from hsm.thales.dispatch import execute
from hsm.thales.profile import DEFAULT_PROFILE
from tests.hsm.test_interface_backends import backends, same, same_error
from tests.hsm.test_thales_support import HSM, LMK, LOCALHOST, exchange, running_server

CODEC = KeyCodec(LMK)
C1 = "0123456789ABCDEFFEDCBA9876543210"
C2 = "1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A"
C3 = "4C4C4C4C4C4C4C4C7A7A7A7A7A7A7A7A"


def formed(*components: str) -> tuple[bytes, str]:
    value = bytes(16)
    for c in components:
        value = bytes(a ^ b for a, b in zip(value, bytes.fromhex(c), strict=True))
    key = force_odd_parity(value)
    kcv = DES3.new(key, DES3.MODE_ECB).encrypt(bytes(8))[:3].hex().upper()
    return key, kcv


def under_lmk(key_type: str, component: str) -> str:
    return CODEC.to_lmk(key_type, ClearKey(bytes.fromhex(component)), "U")


def test_software_hsm_forms_the_xor_of_two_or_three_clear_components() -> None:
    for parts in ((C1, C2), (C1, C2, C3)):
        made = HSM.form_key_from_components("002", parts)
        key, kcv = formed(*parts)
        assert made.kcv == kcv and CODEC.from_lmk("002", made.under_lmk).value == key
        # The same components under the LMK (A4's input) form the same key.
        encrypted = HSM.form_key_from_encrypted_components("002", [under_lmk("002", c) for c in parts])
        assert encrypted.kcv == kcv and CODEC.from_lmk("002", encrypted.under_lmk).value == key


@pytest.mark.parametrize(("parts", "code"), [
    ((C1,), "03"),  # one custodian is not dual control
    ((C1, "0123456789ABCDEFFEDCBA9876543211"), "10"),  # even parity: a typing error
    ((C1, C2[:16]), "15"),  # lengths differ
    ((C1, C1), "15"),  # two equal components cancel out
    ((C1, "XYZ"), "15"),
])
def test_software_hsm_refuses_bad_components(parts: tuple[str, ...], code: str) -> None:
    with pytest.raises(HsmError) as info:
        HSM.form_key_from_components("002", parts)
    assert info.value.code == code


async def test_a4_on_the_wire() -> None:
    e1, e2 = under_lmk("002", C1), under_lmk("002", C2)
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [
            f"0001A42002U{e1}{e2}".encode(),
            f"0002A41002U{e1}".encode(),  # one component: 03
            f"0003A42002U{e1}{under_lmk('001', C2)}".encode(),  # a ZPK component is not a TMK one: parity 10
        ])
        await stream.aclose()
    key, kcv = formed(C1, C2)
    assert answers[0][:8] == b"0001A500" and answers[0][-6:] == kcv.encode()
    assert CODEC.from_lmk("002", answers[0][8:-6].decode()).value == key
    assert answers[1] == b"0002A503" and answers[2] == b"0003A510"


def test_components_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    e1, e2 = under_lmk("002", C1), under_lmk("002", C2)
    for message in (f"0001A42002U{e1}{e2}", f"0002A42002U{e1}{e1}", f"0003A42002U{e1}"):
        execute(HSM, message.encode(), 4, DEFAULT_PROFILE)
    for secret in (C1, C2, e1, e2):
        assert secret not in caplog.text


async def test_both_backends_form_a_tmk_from_components_under_the_lmk() -> None:
    parts = [under_lmk("002", c) for c in (C1, C2, C3)]
    _, kcv = formed(C1, C2, C3)
    async with backends() as (sw, th):
        made = await same(sw, th, lambda h: h.form_key_from_components("002", parts))
        assert made.kcv == kcv and await sw.key_check_value("002", made.under_lmk) == kcv
        # The software backend also takes the clear components, as custodians type them.
        assert (await sw.form_key_from_components("002", [C1, C2, C3])).kcv == kcv
        with pytest.raises(HsmError) as info:  # a payShield never takes clear components from the host
            await th.form_key_from_components("002", [C1, C2])
        assert info.value.code == "15"
        assert await same_error(sw, th, lambda h: h.form_key_from_components("002", parts[:1])) == "03"
        assert await same_error(sw, th, lambda h: h.form_key_from_components("002", parts + parts[:1])) == "03"
        with pytest.raises(HsmError):
            await sw.form_key_from_components("002", [C1, parts[1]])  # clear and encrypted mixed


async def test_tpk_and_tak_sent_under_a_tmk_import_back_with_the_same_kcv() -> None:
    tmk = HSM.form_key_from_components("002", [C1, C2]).under_lmk
    async with backends() as (sw, th):
        for sender in (sw, th):
            for key_type in ("002", "003"):  # TPK, TAK
                sent = await sender.generate_key(key_type, zmk=tmk, zmk_type="002")
                assert sent.under_zmk is not None
                # The terminal (its own software HSM) installs the key from under its TMK.
                installed = await sw.import_key(key_type, tmk, sent.under_zmk, zmk_type="002")
                assert installed.kcv == sent.kcv and not installed.parity_forced
                assert await sw.key_check_value(key_type, installed.under_lmk) == sent.kcv
                # The TMK is a key of type 002: used as a ZMK (000) it fails its parity check under the LMK.
                with pytest.raises(HsmError) as wrong:
                    await sw.import_key(key_type, tmk, sent.under_zmk)
                assert wrong.value.code == "10"
        with pytest.raises(HsmError) as info:
            await th.import_key("002", tmk, "U" + "0" * 32, zmk_type="002")
        assert info.value.code == "29"
