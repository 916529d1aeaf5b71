"""Key management through the SoftwareHsm API: A0, BU, A6, A8, NC and TR-31 import/export."""

from __future__ import annotations

import pytest

from hsm import tr31
from hsm.cipher import force_odd_parity, tdes_encrypt
from hsm.errors import KeyBlockMacError, KeyLengthError, KeyParityError, KeySchemeError
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.variant import encrypt_key

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
CODEC = KeyCodec(LMK)
ZMK_CLEAR = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ZMK = CODEC.to_lmk("000", ClearKey(ZMK_CLEAR), "U")


@pytest.mark.parametrize(("lmk_scheme", "zmk_scheme"), [("U", "U"), ("U", "X"), ("X", "U"), ("T", "T"),
                                                        ("T", "Y"), ("Z", "Z")])
def test_generate_and_export_then_import(lmk_scheme: str, zmk_scheme: str) -> None:
    out = HSM.generate_key_exported("001", ZMK, lmk_scheme, zmk_scheme)
    assert HSM.key_check_value("001", out.under_lmk) == out.kcv
    # The partner decrypts with the clear ZMK and finds the same key (KCV).
    imported = HSM.import_key("001", ZMK, out.under_zmk, lmk_scheme)
    assert imported.kcv == out.kcv and not imported.parity_forced
    assert HSM.export_key("001", ZMK, out.under_lmk, zmk_scheme).under_zmk == out.under_zmk


def test_export_under_tmk() -> None:
    tmk = HSM.generate_key("002", "U").under_lmk
    tpk = HSM.generate_key_exported("002", tmk, "U", "U", zmk_type="002")
    assert HSM.import_key("002", tmk, tpk.under_zmk, "U", zmk_type="002").kcv == tpk.kcv


def test_import_forces_parity_as_advisory() -> None:
    clear = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    even = bytes([clear[0] ^ 1]) + clear[1:]
    under_zmk = "U" + encrypt_key(ZMK_CLEAR, even, "U").hex().upper()
    imported = HSM.import_key("001", ZMK, under_zmk, "U")
    assert imported.parity_forced
    assert imported.kcv == tdes_encrypt(clear, bytes(8))[:3].hex().upper()


def test_variant_scheme_under_zmk_matches_description() -> None:
    # Scheme U under a ZMK: half i under the ZMK with byte 8 XOR A6 / 5A (no key-type variant).
    key = force_odd_parity(bytes.fromhex("1111111111111111E0E0E0E0E0E0E0E0"))
    cryptogram = HSM.export_key("001", ZMK, CODEC.to_lmk("001", ClearKey(key), "U"), "U").under_zmk
    left = ZMK_CLEAR[:8] + bytes([ZMK_CLEAR[8] ^ 0xA6]) + ZMK_CLEAR[9:]
    right = ZMK_CLEAR[:8] + bytes([ZMK_CLEAR[8] ^ 0x5A]) + ZMK_CLEAR[9:]
    expected = tdes_encrypt(left, key[:8]) + tdes_encrypt(right, key[8:])
    assert cryptogram == "U" + expected.hex().upper()


def test_diagnostics() -> None:
    diag = HSM.diagnostics()
    assert len(diag.lmk_check_value) == 16 and len(diag.firmware) == 9
    other = Lmk.parse("\n".join(("02" * 16) for _ in range(20)))
    assert SoftwareHsm(other).diagnostics().lmk_check_value != diag.lmk_check_value


# ------------------------------------------------------------------------------------------- AES

def test_aes_key_under_lmk_round_trip() -> None:
    generated = HSM.generate_key("001", "R", aes_length=32)
    assert generated.under_lmk.startswith("RD")
    assert HSM.key_check_value("001", generated.under_lmk) == generated.kcv
    with pytest.raises(KeyParityError):
        HSM.key_check_value("000", generated.under_lmk)


def test_aes_keys_cannot_travel_as_variant_cryptograms() -> None:
    aes = HSM.generate_key("001", "R").under_lmk
    with pytest.raises(KeySchemeError):
        HSM.export_key("001", ZMK, aes, "U")


# ---------------------------------------------------------------------------------------- TR-31

@pytest.mark.parametrize(("version", "kbpk_scheme"), [("B", "U"), ("B", "T"), ("D", "R")])
@pytest.mark.parametrize(("code", "usage"), [("001", "P0"), ("000", "K0"), ("402", "C0"), ("009", "B0")])
def test_tr31_export_import(version: str, kbpk_scheme: str, code: str, usage: str) -> None:
    kbpk = HSM.generate_key("000", kbpk_scheme, aes_length=32).under_lmk
    key = HSM.generate_key(code, "U")
    block = HSM.tr31_export(code, key.under_lmk, kbpk, version=version)
    assert block[0] == version and block[5:7] == usage and int(block[1:5]) == len(block)
    imported = HSM.tr31_import(kbpk, block)
    assert imported.key_type == code and imported.kcv == key.kcv


def test_tr31_block_opened_with_clear_kbpk() -> None:
    kbpk_clear = force_odd_parity(bytes(range(16)))
    kbpk = CODEC.to_lmk("000", ClearKey(kbpk_clear), "U")
    key_clear = force_odd_parity(bytes(range(100, 116)))
    block = HSM.tr31_export("001", CODEC.to_lmk("001", ClearKey(key_clear), "U"), kbpk, version="B")
    header, value = tr31.unwrap(kbpk_clear, block)
    assert value == key_clear and header.algorithm == "T" and header.mode_of_use == "B"


def test_tr31_aes_key_imports_as_scheme_r() -> None:
    kbpk = HSM.generate_key("000", "R", aes_length=32).under_lmk
    aes_zpk = HSM.generate_key("001", "R", aes_length=16)
    block = HSM.tr31_export("001", aes_zpk.under_lmk, kbpk, version="D")
    imported = HSM.tr31_import(kbpk, block)
    assert imported.under_lmk.startswith("R") and imported.kcv == aes_zpk.kcv


def test_tr31_version_needs_matching_kbpk() -> None:
    tdes_kbpk = HSM.generate_key("000", "U").under_lmk
    key = HSM.generate_key("001", "U").under_lmk
    with pytest.raises(KeyLengthError):
        HSM.tr31_export("001", key, tdes_kbpk, version="D")


def test_tr31_wrong_kbpk_is_mac_failure() -> None:
    kbpk = HSM.generate_key("000", "U").under_lmk
    other = HSM.generate_key("000", "U").under_lmk
    block = HSM.tr31_export("001", HSM.generate_key("001", "U").under_lmk, kbpk, version="B")
    with pytest.raises(KeyBlockMacError) as excinfo:
        HSM.tr31_import(other, block)
    assert excinfo.value.code == "84"


# ------------------------------------------------------------------------------- the clear-key cache

def test_a_cached_key_decrypts_to_the_same_key_under_its_own_type_only() -> None:
    codec = KeyCodec(LMK)
    zpk = HSM.generate_key("001", "U").under_lmk
    first = codec.from_lmk("001", zpk)
    assert codec.from_lmk("001", zpk) is first  # the second use is served from the cache
    assert first.value == KeyCodec(LMK).from_lmk("001", zpk).value
    # The same cryptogram read as another key type decrypts under another LMK variant: not the cached key,
    # and a parity error as without the cache (the variant scheme binds a key to its type).
    with pytest.raises(KeyParityError):
        codec.from_lmk("002", zpk)


def test_a_bad_cryptogram_fails_every_time_and_is_not_cached() -> None:
    codec = KeyCodec(LMK)
    good = CODEC.to_lmk("001", ClearKey(ZMK_CLEAR), "U")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    for _ in range(2):
        with pytest.raises(KeyParityError):
            codec.from_lmk("001", bad, destination=True)
    assert codec._clear == {}


def test_the_cache_keeps_at_most_its_size_and_drops_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = KeyCodec(LMK)
    monkeypatch.setattr(codec, "CACHE_SIZE", 3)
    keys = [HSM.generate_key("001", "U").under_lmk for _ in range(5)]
    for key in keys:
        codec.from_lmk("001", key)
    assert list(codec._clear) == [("001", k) for k in keys[-3:]]


def test_the_cache_is_safe_for_several_threads_at_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: with use_thread=True several threads evict at once (KeyError, RuntimeError before)."""
    import threading

    codec = KeyCodec(LMK)
    monkeypatch.setattr(codec, "CACHE_SIZE", 4)
    keys = [HSM.generate_key("001", "U").under_lmk for _ in range(16)]
    errors: list[BaseException] = []

    def use(offset: int) -> None:
        try:
            for n in range(300):
                codec.from_lmk("001", keys[(n + offset) % len(keys)])
        except BaseException as exc:  # any error in a thread is the finding
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(codec._clear) <= 4
