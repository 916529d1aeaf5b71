"""The same calls through both backends give the same answers.

SoftwareBackend runs the software HSM in-process; ThalesBackend sends payShield host commands over real TCP on
127.0.0.1 (port 0) to ``serve_hsm``, which runs the same software HSM. Every result and every error code must
match, including on Hypothesis-generated PINs and PANs. Keys are set up from known clear values so that the
tests can build PIN blocks and cryptograms themselves; the backends only ever see cryptograms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import trio
from Crypto.Cipher import DES3
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm import dukpt, emv, pinblock
from hsm.api import Hsm
from hsm.cipher import force_odd_parity, tdes_encrypt
from hsm.errors import HsmError
from hsm.inprocess import SoftwareBackend
from hsm.keys import ClearKey, KeyCodec
from hsm.thales.backend import ThalesBackend
from hsm.thales.client import ClientConfig, open_thales_client
from hsm.thales.profile import PAYSHIELD_9000_LEGACY, PAYSHIELD_9000_V3, Profile
from tests.hsm.test_thales_support import HSM, LMK, LOCALHOST, running_server

T = TypeVar("T")
CODEC = KeyCodec(LMK)


def clear(hex_: str) -> bytes:
    return force_odd_parity(bytes.fromhex(hex_))


TPK_CLEAR = clear("0123456789ABCDEFFEDCBA9876543210")
ZPK1_CLEAR = clear("1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A")
ZPK2_CLEAR = clear("4C4C4C4C4C4C4C4C7A7A7A7A7A7A7A7A")
TPK = CODEC.to_lmk("002", ClearKey(TPK_CLEAR), "U")
ZPK1 = CODEC.to_lmk("001", ClearKey(ZPK1_CLEAR), "U")
ZPK2 = CODEC.to_lmk("001", ClearKey(ZPK2_CLEAR), "X")
PVK = CODEC.to_lmk("002", ClearKey(clear("0123456789ABCDEFFEDCBA9876543210")), "U")
PVK_SINGLE = CODEC.to_lmk("002", ClearKey(clear("0123456789ABCDEF")), "Z")
CVK = CODEC.to_lmk("402", ClearKey(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")), "U")
TAK = CODEC.to_lmk("003", ClearKey(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")), "U")
TAK_AES = CODEC.to_lmk("003", ClearKey(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"), aes=True), "R")
ZAK = CODEC.to_lmk("008", ClearKey(clear("0123456789ABCDEF0123456789ABCDEF")), "U")
ZMK = "U0A26760BD07871026B6702C5F9BA25B3"  # clear 0808..08 under the Thales test LMK
ZMK_AES = CODEC.to_lmk("000", ClearKey(bytes(range(16)), aes=True), "R")
ZPK_AES_CLEAR = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
ZPK_AES = CODEC.to_lmk("001", ClearKey(ZPK_AES_CLEAR, aes=True), "R")
BDK = CODEC.to_lmk("009", ClearKey(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")), "U")
BDK_AES = CODEC.to_lmk("009", ClearKey(bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1"), aes=True), "R")
MK_AC_CLEAR = clear("9E15204313F7318ACB79B90BD986AD29")
MK_AC = CODEC.to_lmk("109", ClearKey(MK_AC_CLEAR), "U")
DECIMALISATION = "0123456789012345"


def encrypted_block(key: bytes, fmt: int, pin: str, account: str) -> str:
    return tdes_encrypt(key, pinblock.encode(fmt, pin, account)).hex().upper()


def decrypted_pin(key: bytes, fmt_code: str, block: str, account: str) -> str:
    raw = DES3.new(key, DES3.MODE_ECB).decrypt(bytes.fromhex(block))
    return pinblock.decode(pinblock.iso_format(fmt_code), raw, account)


@asynccontextmanager
async def backends(profile: Profile = PAYSHIELD_9000_V3) -> AsyncIterator[tuple[Hsm, Hsm]]:
    async with running_server(HSM, profile=profile) as port, \
            open_thales_client(ClientConfig(LOCALHOST, port, profile=profile)) as client:
        yield SoftwareBackend(HSM), ThalesBackend(client, profile, timeout=5)


async def same(software: Hsm, thales: Hsm, call: Callable[[Hsm], Awaitable[T]]) -> T:
    """Run ``call`` on both backends; both return the same value or both raise the same HSM error code."""
    outcomes: list[tuple[str, Any]] = []
    for backend in (software, thales):
        try:
            outcomes.append(("ok", await call(backend)))
        except HsmError as exc:
            outcomes.append(("error", exc.code))
    assert outcomes[0] == outcomes[1]
    kind, value = outcomes[0]
    if kind == "error":
        raise HsmError("both backends failed", value)
    return value  # type: ignore[no-any-return]


async def same_call(software: Hsm, thales: Hsm, method: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`same` for a method named by string (loops: no closures over loop variables)."""
    return await same(software, thales, lambda h: getattr(h, method)(*args, **kwargs))


async def same_error(software: Hsm, thales: Hsm, call: Callable[[Hsm], Awaitable[Any]]) -> str:
    with pytest.raises(HsmError) as info:
        await same(software, thales, call)
    return info.value.code


# ---------------------------------------------------------------------------------------------- PINs


async def test_pin_translation_and_errors() -> None:
    account = "400000123456"
    block = encrypted_block(TPK_CLEAR, 0, "1234", account)
    async with backends() as (sw, th):
        out = await same(sw, th, lambda h: h.translate_pin_tpk_to_zpk(TPK, ZPK1, block, account))
        assert out.pin_length == 4 and decrypted_pin(ZPK1_CLEAR, "01", out.pin_block, account) == "1234"
        out2 = await same(sw, th, lambda h: h.translate_pin_zpk_to_zpk(
            ZPK1, ZPK2, out.pin_block, "4000001234562", destination_format="34"))
        assert decrypted_pin(ZPK2_CLEAR, "34", out2.pin_block, account) == "1234"
        # Format 3 and 1 have random fill: compare what the block holds, not the block.
        for fmt in ("47", "05"):
            for h in (sw, th):
                res = await h.translate_pin_zpk_to_zpk(ZPK1, ZPK2, out.pin_block, account, destination_format=fmt)
                assert res.pin_format == fmt and decrypted_pin(ZPK2_CLEAR, fmt, res.pin_block, account) == "1234"
        assert await same_error(sw, th, lambda h: h.translate_pin_zpk_to_zpk(ZPK1, ZPK2, "F" * 16, account)) == "20"
        assert await same_error(sw, th, lambda h: h.translate_pin_tpk_to_zpk(ZPK1, ZPK2, block, account)) == "10"
        assert await same_error(sw, th, lambda h: h.translate_pin_zpk_to_zpk(ZPK1, ZPK2, block, "12ab")) == "22"
        assert await same_error(sw, th, lambda h: h.translate_pin_zpk_to_zpk(
            ZPK1, ZPK2, out.pin_block, account, destination_format="99")) == "23"


@settings(max_examples=100, deadline=None)
@given(pin=st.text("0123456789", min_size=4, max_size=12), pan=st.text("0123456789", min_size=13, max_size=19),
       fmt=st.sampled_from([0, 3]))
async def test_pin_translation_properties(pin: str, pan: str, fmt: int) -> None:
    block = encrypted_block(TPK_CLEAR, fmt, pin, pan)
    async with backends() as (sw, th):
        out = await same(sw, th, lambda h: h.translate_pin_tpk_to_zpk(
            TPK, ZPK1, block, pan, source_format="01" if fmt == 0 else "47", destination_format="01"))
        assert out.pin_length == len(pin) and decrypted_pin(ZPK1_CLEAR, "01", out.pin_block, pan) == pin
        pvv = await same(sw, th, lambda h: h.generate_pvv("001", ZPK1, PVK, out.pin_block, "01", pan, 1))
        assert await same(sw, th, lambda h: h.verify_pin_pvv("001", ZPK1, PVK, out.pin_block, "01", pan, 1, pvv))


async def test_tdes_dukpt_published_vector_through_both() -> None:
    # ANSI X9.24-1:2009 Annex A: PIN 1234, PAN 4012345678909, KSN ...E00001 -> 1B9C1845EB993A7A.
    async with backends() as (sw, th):
        for ksn, block in (("FFFF9876543210E00001", "1B9C1845EB993A7A"), ("FFFF9876543210E00002", "10A01C8D02C69107"),
                           ("9876543210E00003", "18DC07B94797B466")):
            out = await same_call(sw, th, "translate_pin_dukpt_to_zpk", BDK, ZPK1, ksn, block, "4012345678909")
            assert decrypted_pin(ZPK1_CLEAR, "01", out.pin_block, "4012345678909") == "1234"
        g0 = await same(sw, th, lambda h: h.translate_pin_dukpt_to_zpk(
            BDK, ZPK1, "FFFF9876543210E00001", "1B9C1845EB993A7A", "4012345678909", destination_format="34"))
        assert decrypted_pin(ZPK1_CLEAR, "34", g0.pin_block, "4012345678909") == "1234"
        assert await same_error(sw, th, lambda h: h.translate_pin_dukpt_to_zpk(
            BDK, ZPK1, "FFFF9876543210E00001", "1B9C1845EB993A7B", "4012345678909")) == "20"


async def test_aes_dukpt_format_4_through_both() -> None:
    pan = "4111111111111111"
    ksn = "123456789012345600000001"
    pin_key = dukpt.aes_working_key(bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1"), bytes.fromhex(ksn),
                                    dukpt.USAGE_PIN, "AES128")
    block = pinblock.encrypt_format4(pin_key, "4321", pan).hex().upper()
    async with backends() as (sw, th):
        out = await same(sw, th, lambda h: h.translate_pin_dukpt_to_zpk(
            BDK_AES, ZPK1, ksn, block, pan, source_format="48", destination_format="01", pan=pan))
        assert decrypted_pin(ZPK1_CLEAR, "01", out.pin_block, pan) == "4321"
        # Format 4 on both sides under AES zone keys (random fill: compare the PIN inside).
        for h in (sw, th):
            res = await h.translate_pin_dukpt_to_zpk(BDK_AES, ZPK_AES, ksn, block, pan, source_format="48",
                                                     destination_format="48", pan=pan)
            assert res.pin_format == "48" and len(res.pin_block) == 32
            assert pinblock.decrypt_format4(ZPK_AES_CLEAR, bytes.fromhex(res.pin_block), pan) == "4321"
            again = await h.translate_pin_zpk_to_zpk(ZPK_AES, ZPK1, res.pin_block, pan, source_format="48",
                                                     destination_format="34", pan=pan)
            assert decrypted_pin(ZPK1_CLEAR, "34", again.pin_block, pan) == "4321"


async def test_ibm_offset_generate_and_verify() -> None:
    account = "123456789012"
    block = encrypted_block(TPK_CLEAR, 0, "9876", account)
    async with backends() as (sw, th):
        offset = await same(sw, th, lambda h: h.generate_ibm_offset(
            "002", TPK, PVK_SINGLE, block, "01", account, 4, DECIMALISATION, "1234567N"))
        assert len(offset) == 12 and offset.endswith("F" * 8)
        assert await same(sw, th, lambda h: h.verify_pin_ibm(
            "002", TPK, PVK_SINGLE, block, "01", account, 4, DECIMALISATION, "1234567N", offset))
        wrong = f"{(int(offset[0]) + 1) % 10}{offset[1:]}"
        assert not await same(sw, th, lambda h: h.verify_pin_ibm(
            "002", TPK, PVK_SINGLE, block, "01", account, 4, DECIMALISATION, "1234567N", wrong))
        zblock = (await sw.translate_pin_tpk_to_zpk(TPK, ZPK1, block, account)).pin_block
        assert await same(sw, th, lambda h: h.verify_pin_ibm(
            "001", ZPK1, PVK_SINGLE, zblock, "01", account, 4, DECIMALISATION, "1234567N", offset))
        assert await same_error(sw, th, lambda h: h.verify_pin_ibm(
            "003", TPK, PVK_SINGLE, block, "01", account, 4, DECIMALISATION, "1234567N", offset)) == "28"


# ---------------------------------------------------------------------------------------------- CVV, MAC


async def test_cvv_published_vectors_through_both() -> None:
    async with backends() as (sw, th):
        for service_code, expected in (("101", "561"), ("000", "636"), ("999", "651")):
            cvv = await same_call(sw, th, "generate_cvv", CVK, "4123456789012345", "8701", service_code)
            assert cvv == expected
        assert await same(sw, th, lambda h: h.verify_cvv(CVK, "4123456789012345", "8701", "101", "561"))
        assert not await same(sw, th, lambda h: h.verify_cvv(CVK, "4123456789012345", "8701", "101", "562"))
        assert await same_error(sw, th, lambda h: h.generate_cvv(TAK, "4123456789012345", "8701", "101")) == "10"


@pytest.mark.parametrize("profile", [PAYSHIELD_9000_V3, PAYSHIELD_9000_LEGACY], ids=lambda p: p.name)
async def test_mac_published_vectors_through_both(profile: Profile) -> None:
    text = b"Now is the time for all "
    async with backends(profile) as (sw, th):
        for padding, expected in ((1, "A1C72E74EA3FA9B6"), (2, "E9086230CA3BE796"), (3, "AB059463D7A7D170")):
            length = 8 if profile.m6_mac_size else 4
            mac = await same_call(sw, th, "generate_mac", "003", TAK, text, padding=padding, mac_length=length)
            assert mac == expected[:2 * length]
            assert await same_call(sw, th, "verify_mac", "003", TAK, text, mac, padding=padding)
        assert not await same(sw, th, lambda h: h.verify_mac("003", TAK, text, "00000000"))
        assert await same_error(sw, th, lambda h: h.generate_mac("001", ZPK1, text, mac_length=length)) == "28"
        assert await same_error(sw, th, lambda h: h.generate_mac("003", TAK, text, mac_length=3)) == "15"


async def test_cmac_long_messages_and_odd_lengths_through_both() -> None:
    async with backends() as (sw, th):
        cmac = await same(sw, th, lambda h: h.generate_mac(
            "003", TAK_AES, bytes.fromhex("6bc1bee22e409f96e93d7e117393172a"), algorithm=5, mac_length=16))
        assert cmac == "070A16B46B4D4144F79BDD9DD04A287C"  # RFC 4493 example 2
        big = bytes(range(256)) * 160  # 40 KiB: sent as M6 first/final parts
        for padding in (1, 2, 3):
            mac = await same_call(sw, th, "generate_mac", "008", ZAK, big, padding=padding)
            assert await same_call(sw, th, "verify_mac", "008", ZAK, big, mac, padding=padding)
        six = await same(sw, th, lambda h: h.generate_mac("003", TAK, b"odd", mac_length=6))
        assert await same(sw, th, lambda h: h.verify_mac("003", TAK, b"odd", six))


# ---------------------------------------------------------------------------------------------- EMV


def _arqc(cvn: int, pan: str, psn: str, atc: str, data: bytes, un: str | None) -> str:
    icc = emv.icc_master_key(MK_AC_CLEAR, pan, psn)
    session = emv.ac_session_key(cvn, icc, atc, un)
    return emv.application_cryptogram(session, data, emv.profile(cvn).padding).hex().upper()


@pytest.mark.parametrize("profile", [PAYSHIELD_9000_V3, PAYSHIELD_9000_LEGACY], ids=lambda p: p.name)
@pytest.mark.parametrize("cvn", [10, 16, 17, 18])
async def test_arqc_and_arpc_through_both(cvn: int, profile: Profile) -> None:
    pan, psn, atc, un = "5413330089010434", "01", "0042", "1A2B3C4D"
    data = bytes.fromhex("0000000010000000000000000840000000000008400311220012345678") + b"\x5c\x00\x00\x42"
    arqc = _arqc(cvn, pan, psn, atc, data, un)
    async with backends(profile) as (sw, th):
        assert await same(sw, th, lambda h: h.verify_arqc(MK_AC, cvn, pan, psn, atc, data, arqc,
                                                          unpredictable_number=un))
        assert not await same(sw, th, lambda h: h.verify_arqc(MK_AC, cvn, pan, psn, atc, data[:-1] + b"\x43", arqc,
                                                              unpredictable_number=un))
        arpc = await same(sw, th, lambda h: h.generate_arpc(MK_AC, cvn, pan, psn, atc, arqc, arc="3030",
                                                            csu="00000000", proprietary_data=b"\x01",
                                                            unpredictable_number=un))
        assert len(arpc) == (8 if cvn == 18 else 16)
        assert await same_error(sw, th, lambda h: h.verify_arqc(MK_AC, cvn, "41111111111111111", psn, atc, data,
                                                                arqc, unpredictable_number=un)) == "22"
    assert await _both_errors(cvn) == ("15", "15")


async def _both_errors(cvn: int) -> tuple[str, str]:
    async with backends() as (sw, th):
        codes = []
        for h in (sw, th):
            with pytest.raises(HsmError) as info:
                await h.verify_arqc(MK_AC, 22, "5413330089010434", "01", "0042", b"", "00" * 8)
            codes.append(info.value.code)
        return codes[0], codes[1]


# ---------------------------------------------------------------------------------------------- keys


async def test_key_management_through_both() -> None:
    async with backends() as (sw, th):
        assert await same(sw, th, lambda h: h.key_check_value("000", ZMK)) == "D6A875"
        assert len(await same(sw, th, lambda h: h.key_check_value("000", ZMK, full=True))) == 16
        assert await same(sw, th, lambda h: h.diagnostics()) == HSM.diagnostics()
        assert await same(sw, th, lambda h: h.echo(b"\x00ping\x19")) == b"\x00ping\x19"
        for scheme, zmk_scheme in (("U", "U"), ("T", "Y"), ("X", "X")):
            made = await th.generate_key("001", scheme, zmk=ZMK, zmk_scheme=zmk_scheme)
            assert made.under_zmk is not None
            # What one backend made, the other reads: same KCV, same import, same export.
            assert await same_call(sw, th, "key_check_value", "001", made.under_lmk) == made.kcv
            imported = await same_call(sw, th, "import_key", "001", ZMK, made.under_zmk, scheme)
            assert imported.kcv == made.kcv and not imported.parity_forced
            exported = await same_call(sw, th, "export_key", "001", ZMK, made.under_lmk, zmk_scheme)
            assert exported.under_zmk == made.under_zmk
        plain = await sw.generate_key("002")
        assert plain.under_zmk is None and await th.key_check_value("002", plain.under_lmk) == plain.kcv
        # Parity forced on import is an advisory (01) that both report the same way.
        even = tdes_encrypt(bytes.fromhex("0808080808080808") * 2, bytes.fromhex("0123456789ABCDEE0123456789ABCDEE"))
        forced = await same(sw, th, lambda h: h.import_key("001", ZMK, "X" + even.hex().upper()))
        assert forced.parity_forced
        assert await same_error(sw, th, lambda h: h.import_key("001", ZMK, "U" + "0" * 31 + "G")) in ("15", "26")


@pytest.mark.parametrize(("version", "kbpk"), [("B", ZMK), ("D", ZMK_AES)])
async def test_tr31_export_and_import_through_both(version: str, kbpk: str) -> None:
    async with backends() as (sw, th):
        for exporter, importer in ((sw, th), (th, sw)):
            block = await exporter.export_key("001", kbpk, ZPK1, "R", tr31_version=version)
            assert block.under_zmk.startswith("R" + version)
            imported = await importer.import_key("001", kbpk, block.under_zmk)
            assert imported.kcv == block.kcv == ClearKey(ZPK1_CLEAR).check_value()
        bad = block.under_zmk[:-1] + ("0" if block.under_zmk[-1] != "0" else "1")
        assert await same_error(sw, th, lambda h: h.import_key("001", kbpk, bad)) == "84"


async def test_backends_satisfy_the_protocol() -> None:
    async with backends() as (sw, th):
        assert isinstance(sw, Hsm) and isinstance(th, Hsm)
        for name in [n for n in dir(Hsm) if not n.startswith("_")]:
            assert callable(getattr(sw, name)) and callable(getattr(th, name))


async def test_thread_mode_software_backend_gives_the_same_answers() -> None:
    threaded = SoftwareBackend(HSM, use_thread=True)
    assert await threaded.generate_cvv(CVK, "4123456789012345", "8701", "101") == "561"
    with trio.fail_after(5):
        assert (await threaded.diagnostics()).firmware == HSM.diagnostics().firmware
