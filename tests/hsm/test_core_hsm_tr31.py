"""TR-31 key block policy: a key keeps its purpose across import and export.

A key block's header says what the key is for (usage), how it may be used (mode of use) and whether it may
leave the receiving HSM (exportability). Under a variant LMK a key carries none of that, so the HSM checks the
header when the key crosses the boundary: a usage becomes only the key types it names (ANSI X9.143 Table 6),
a mode of use narrower than what the key type can do here is refused rather than widened, a non-exportable key
never leaves, and only the key-derivation versions B and D are accepted unless legacy versions are enabled.
Error codes from the payShield error table: A6 key usage, A8 mode of use, AA export field, BE key block
version, 29 key function not permitted.
"""

from __future__ import annotations

import hmac

import pytest

from hsm import pinblock, tr31
from hsm.cipher import force_odd_parity, tdes_encrypt
from hsm.errors import HsmError
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
LEGACY = SoftwareHsm(LMK, tr31_legacy_versions=True)
CODEC = KeyCodec(LMK)

KBPK_CLEAR = force_odd_parity(bytes(range(16)))
KBPK = CODEC.to_lmk("000", ClearKey(KBPK_CLEAR), "U")
AES_KBPK_CLEAR = bytes(range(32, 64))
AES_KBPK = CODEC.to_lmk("000", ClearKey(AES_KBPK_CLEAR, aes=True), "R")
KEY_CLEAR = force_odd_parity(bytes(range(100, 116)))
AES_KEY_CLEAR = bytes(range(200, 216))
ZPK = CODEC.to_lmk("001", ClearKey(KEY_CLEAR), "U")


def block(usage: str, mode: str = "B", *, version: str = "B", exportability: str = "E", aes: bool = False) -> str:
    """A key block built with the clear KBPK, as the sending party's HSM would."""
    if aes:
        return tr31.wrap(AES_KBPK_CLEAR, tr31.Header("D", usage, "A", mode, "00", exportability), AES_KEY_CLEAR)
    return tr31.wrap(KBPK_CLEAR, tr31.Header(version, usage, "T", mode, "00", exportability), KEY_CLEAR)


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(HsmError) as excinfo:
        call()
    return excinfo.value.code


# ------------------------------------------------------------------------------------------- import: usage

@pytest.mark.parametrize(
    ("usage", "mode", "key_type"),
    [("P0", "B", "000"), ("P0", "B", "402"), ("K0", "B", "001"), ("K0", "B", "002"), ("K1", "B", "003"),
     ("C0", "C", "001"), ("V1", "C", "001"), ("V2", "C", "402"), ("M3", "C", "000"), ("M6", "C", "001"),
     ("B0", "X", "001"), ("E0", "X", "402")],
)
def test_import_refuses_a_key_type_the_usage_does_not_name(usage: str, mode: str, key_type: str) -> None:
    assert code_of(lambda: HSM.tr31_import(KBPK, block(usage, mode), key_type=key_type)) == "A6"


@pytest.mark.parametrize(
    ("usage", "mode", "key_type", "imported_as"),
    [("P0", "B", None, "001"), ("P0", "B", "001", "001"), ("P0", "B", "002", "002"), ("K0", "B", None, "000"),
     ("K1", "B", None, "000"), ("V1", "C", None, "002"), ("V2", "N", "002", "002"), ("C0", "C", None, "402"),
     ("M3", "C", None, "003"), ("M1", "C", "008", "008"), ("B0", "X", None, "009"), ("E0", "X", None, "109")],
)
def test_import_accepts_the_key_types_the_usage_names(usage: str, mode: str, key_type: str | None,
                                                      imported_as: str) -> None:
    done = HSM.tr31_import(KBPK, block(usage, mode), key_type=key_type)
    assert done.key_type == imported_as
    assert HSM.key_check_value(imported_as, done.under_lmk) == ClearKey(KEY_CLEAR).check_value()


@pytest.mark.parametrize("key_type", [None, "001"])
def test_import_refuses_a_usage_this_hsm_has_no_key_type_for(key_type: str | None) -> None:
    # D0 (data encryption): the caller's key type must not make it a PIN key.
    assert code_of(lambda: HSM.tr31_import(KBPK, block("D0"), key_type=key_type)) == "A6"


def test_a_pin_key_cannot_come_back_as_a_zmk() -> None:
    # The reviewer's path: export a ZPK, re-import the block as a ZMK, then wrap other keys under it.
    exported = HSM.tr31_export("001", ZPK, KBPK, version="B")
    assert code_of(lambda: HSM.tr31_import(KBPK, exported, key_type="000")) == "A6"


# --------------------------------------------------------------------------------------- import: mode of use

@pytest.mark.parametrize(
    ("usage", "mode"),
    [("P0", "E"), ("P0", "D"), ("K0", "E"), ("K0", "D"), ("C0", "G"), ("C0", "V"), ("M3", "V"), ("V1", "G"),
     ("P0", "C"), ("K0", "X"), ("B0", "B")],
)
def test_import_refuses_a_mode_of_use_the_lmk_cryptogram_could_not_enforce(usage: str, mode: str) -> None:
    assert code_of(lambda: HSM.tr31_import(KBPK, block(usage, mode))) == "A8"


# ------------------------------------------------------------------------------------- import: exportability

def test_non_exportable_tdes_key_is_refused_at_import() -> None:
    # A variant cryptogram cannot record "non-exportable", and the key would leave again with A8.
    assert code_of(lambda: HSM.tr31_import(KBPK, block("P0", exportability="N"))) == "AA"


def test_unknown_exportability_is_refused() -> None:
    assert code_of(lambda: HSM.tr31_import(KBPK, block("P0", exportability="X"))) == "AA"


def test_non_exportable_aes_key_imports_and_never_leaves() -> None:
    done = HSM.tr31_import(AES_KBPK, block("P0", aes=True, exportability="N"))
    assert done.under_lmk.startswith("R")
    assert HSM.key_check_value("001", done.under_lmk) == ClearKey(AES_KEY_CLEAR, aes=True).check_value()
    assert code_of(lambda: HSM.tr31_export("001", done.under_lmk, AES_KBPK, version="D")) == "29"
    assert code_of(lambda: HSM.export_key("001", KBPK, done.under_lmk, "U")) == "29"
    # Still usable inside the HSM: a PIN block translates into it.
    tpk_clear = force_odd_parity(bytes(range(50, 66)))
    pin_block = tdes_encrypt(tpk_clear, pinblock.encode(0, "1234", "4012345678909")).hex()
    translated = HSM.translate_pin_tpk_to_zpk(CODEC.to_lmk("002", ClearKey(tpk_clear), "U"), done.under_lmk,
                                              pin_block, "01", "48", "401234567890", pan="4012345678909")
    clear = pinblock.decrypt_format4(AES_KEY_CLEAR, bytes.fromhex(translated.pin_block), "4012345678909", 12)
    assert clear == "1234"


def test_exportable_aes_key_still_leaves() -> None:
    done = HSM.tr31_import(AES_KBPK, block("P0", aes=True, exportability="S"))
    again = HSM.tr31_export("001", done.under_lmk, AES_KBPK, version="D")
    assert tr31.unwrap(AES_KBPK_CLEAR, again)[1] == AES_KEY_CLEAR


# ------------------------------------------------------------------------------------------- versions

@pytest.mark.parametrize("version", ["A", "C"])
def test_variant_binding_versions_are_refused_unless_enabled(version: str) -> None:
    legacy_block = block("P0", version=version)
    assert code_of(lambda: HSM.tr31_import(KBPK, legacy_block)) == "BE"
    done = LEGACY.tr31_import(KBPK, legacy_block)
    assert done.key_type == "001" and done.kcv == ClearKey(KEY_CLEAR).check_value()


@pytest.mark.parametrize("version", ["A", "C", "E", "0"])
def test_export_produces_versions_b_and_d_only(version: str) -> None:
    assert code_of(lambda: LEGACY.tr31_export("001", ZPK, KBPK, version=version)) == "BE"


# ------------------------------------------------------------------------------------------- export

@pytest.mark.parametrize(
    ("key_type", "usage"),
    [("001", "K0"), ("001", "V1"), ("001", "D0"), ("000", "P0"), ("002", "K0"), ("402", "M3"), ("003", "C0"),
     ("009", "P0"), ("109", "K1")],
)
def test_export_refuses_a_usage_other_than_the_key_types_own(key_type: str, usage: str) -> None:
    key = HSM.generate_key(key_type, "U").under_lmk
    assert code_of(lambda: HSM.tr31_export(key_type, key, KBPK, version="B", usage=usage)) == "A6"


@pytest.mark.parametrize(
    ("key_type", "usage", "mode"),
    [("001", "P0", "E"), ("002", "P0", "D"), ("002", "V1", "C"), ("002", "V2", "V"), ("000", "K1", "B"),
     ("402", "C0", "G"), ("008", "M1", "C"), ("009", "B0", "X"), ("109", "E0", "N")],
)
def test_export_with_the_key_types_own_usage_and_a_defined_mode(key_type: str, usage: str, mode: str) -> None:
    key = HSM.generate_key(key_type, "U")
    exported = HSM.tr31_export(key_type, key.under_lmk, KBPK, version="B", usage=usage, mode_of_use=mode)
    header, value = tr31.unwrap(KBPK_CLEAR, exported)
    assert (header.usage, header.mode_of_use) == (usage, mode)
    assert ClearKey(value).check_value() == key.kcv


@pytest.mark.parametrize(("usage", "mode"), [("P0", "C"), ("P0", "X"), ("C0", "B")])
def test_export_refuses_a_mode_not_defined_for_the_usage(usage: str, mode: str) -> None:
    key_type = "402" if usage == "C0" else "001"
    key = HSM.generate_key(key_type, "U").under_lmk
    assert code_of(lambda: HSM.tr31_export(key_type, key, KBPK, version="B", usage=usage, mode_of_use=mode)) == "A8"


def test_export_refuses_an_unknown_exportability() -> None:
    assert code_of(lambda: HSM.tr31_export("001", ZPK, KBPK, version="B", exportability="Q")) == "AA"


# ------------------------------------------------------------------------------------------- MAC check

@pytest.mark.parametrize("version", ["A", "B", "D"])
def test_key_block_macs_are_compared_in_constant_time(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Timing cannot be asserted in a unit test; what can be is that every MAC check goes through
    # hmac.compare_digest, and that it decides the outcome.
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module tr31 calls it through
    kbpk = AES_KBPK_CLEAR if version == "D" else KBPK_CLEAR
    good = tr31.wrap(kbpk, tr31.Header(version, "P0", "A" if version == "D" else "T", "B"),
                     AES_KEY_CLEAR if version == "D" else KEY_CLEAR)
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert tr31.unwrap(kbpk, good)[1] in (KEY_CLEAR, AES_KEY_CLEAR)
    with pytest.raises(HsmError) as excinfo:
        tr31.unwrap(kbpk, tampered)
    assert excinfo.value.code == "84"
    assert len(calls) == 2 and all(len(a) == len(b) for a, b in calls)
