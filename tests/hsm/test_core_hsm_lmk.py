"""The LMK file, key-type variants, key schemes and parity: what makes cryptograms payShield-compatible."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from Crypto.Cipher import DES, DES3

from hsm.errors import (
    HsmError,
    InvalidInputError,
    KeyLengthError,
    KeyParityError,
    KeySchemeError,
    KeyTypeError,
    LmkFileError,
)
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk, write_test_lmk
from hsm.software import SoftwareHsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)

# The public Thales test LMK, pairs 00-01 .. 38-39, as published (copied here so the test is independent of
# the shipped data file).
TEST_LMK_PAIRS = [
    "01010101010101017902CD1FD36EF8BA", "20202020202020203131313131313131", "40404040404040405151515151515151",
    "61616161616161617070707070707070", "80808080808080809191919191919191", "A1A1A1A1A1A1A1A1B0B0B0B0B0B0B0B0",
    "C1C1010101010101D0D0010101010101", "E0E0010101010101F1F1010101010101", "1C587F1C13924FEF0101010101010101",
    "01010101010101010101010101010101", "02020202020202020404040404040404", "07070707070707071010101010101010",
    "13131313131313131515151515151515", "16161616161616161919191919191919", "1A1A1A1A1A1A1A1A1C1C1C1C1C1C1C1C",
    "23232323232323232525252525252525", "26262626262626262929292929292929", "2A2A2A2A2A2A2A2A2C2C2C2C2C2C2C2C",
    "2F2F2F2F2F2F2F2F3131313131313131", "01010101010101010101010101010101",
]


def _reference_u(pair_number: int, variant: int, clear: bytes) -> str:
    """Scheme U encryption written straight from the payShield description, with pycryptodome's DES3."""
    pair = bytearray(bytes.fromhex(TEST_LMK_PAIRS[pair_number // 2]))
    if variant:
        pair[0] ^= bytes.fromhex("A65A6ADE2B50749CFA")[variant - 1]
    out = b""
    for half, scheme_variant in zip((clear[:8], clear[8:]), (0xA6, 0x5A), strict=True):
        key = bytearray(pair)
        key[8] ^= scheme_variant
        out += DES3.new(bytes(key), DES3.MODE_ECB).encrypt(half)
    return "U" + out.hex().upper()


# ---------------------------------------------------------------------------------------- the file

def test_shipped_file_is_the_public_test_lmk(tmp_path: Path) -> None:
    path = write_test_lmk(tmp_path / "lmk.txt")
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "TESTS ONLY" in text.splitlines()[0].upper()
    loaded = Lmk.load(path)
    pairs_in_file = [line.split()[1] for line in text.splitlines() if line and not line.startswith("#")]
    assert pairs_in_file == TEST_LMK_PAIRS
    assert loaded.check_value() == LMK.check_value()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606])
def test_lmk_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_test_lmk(tmp_path / "lmk.txt")
    path.chmod(mode)
    with pytest.raises(LmkFileError) as excinfo:
        Lmk.load(path)
    assert str(path) in str(excinfo.value)
    assert f"{mode:04o}" in str(excinfo.value)
    assert excinfo.value.mode == mode and excinfo.value.code == "13"


def test_lmk_file_owner_only_modes_are_accepted(tmp_path: Path) -> None:
    path = write_test_lmk(tmp_path / "lmk.txt")
    path.chmod(0o400)
    assert SoftwareHsm.from_file(path).diagnostics().lmk_check_value == LMK.check_value()


def test_missing_lmk_file(tmp_path: Path) -> None:
    with pytest.raises(LmkFileError, match="lmk-missing"):
        Lmk.load(tmp_path / "lmk-missing")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\n".join(TEST_LMK_PAIRS[:19]), "found 19"),
        ("\n".join([*TEST_LMK_PAIRS, TEST_LMK_PAIRS[0]]), "found 21"),
        ("\n".join([TEST_LMK_PAIRS[0][:-1], *TEST_LMK_PAIRS[1:]]), "line 1"),
        ("\n".join(f"{2 * i + 2:02d}-{2 * i + 3:02d} {p}" for i, p in enumerate(TEST_LMK_PAIRS)), "order"),
    ],
)
def test_malformed_lmk_text(text: str, reason: str) -> None:
    with pytest.raises(LmkFileError, match=reason) as excinfo:
        Lmk.parse(text)
    # The error never quotes key material.
    assert not any(p[:16] in str(excinfo.value) for p in TEST_LMK_PAIRS)


def test_bare_pair_lines_and_comments_parse() -> None:
    text = "# comment\n" + "\n".join(p[:16] + " " + p[16:] + "  # pair" for p in TEST_LMK_PAIRS)
    assert Lmk.parse(text).check_value() == LMK.check_value()


def test_reprs_carry_no_key_material() -> None:
    for obj in (LMK, HSM, ClearKey(bytes.fromhex(TEST_LMK_PAIRS[2]))):
        text = repr(obj)
        assert not any(p[:8] in text.upper() or p[16:24] in text.upper() for p in TEST_LMK_PAIRS), text


# --------------------------------------------------------------------------------- key-type variants

@pytest.mark.parametrize(
    ("code", "pair", "variant"),
    [("000", 4, 0), ("001", 6, 0), ("002", 14, 0), ("402", 14, 4), ("003", 16, 0), ("008", 26, 0),
     ("009", 28, 0), ("109", 28, 1)],
)
def test_scheme_u_matches_reference_description(code: str, pair: int, variant: int) -> None:
    clear = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert KeyCodec(LMK).to_lmk(code, ClearKey(clear), "U") == _reference_u(pair, variant, clear)


def test_interchangeable_with_payshield_published_pair() -> None:
    # The published test-LMK cryptogram of ZMK 0808..08 (KCV D6A875) works as a ZMK: a key exported under
    # it in X9.17 (scheme X) decrypts with DES under 0808.. (TDES with equal halves is single DES).
    zmk = "U0A26760BD07871026B6702C5F9BA25B3"
    assert HSM.key_check_value("000", zmk) == "D6A875"
    zpk = HSM.generate_key("001", "U")
    exported = HSM.export_key("001", zmk, zpk.under_lmk, "X")
    assert exported.under_zmk.startswith("X") and exported.kcv == zpk.kcv
    clear = DES.new(bytes.fromhex("08" * 8), DES.MODE_ECB).decrypt(bytes.fromhex(exported.under_zmk[1:]))
    assert DES3.new(clear, DES3.MODE_ECB).encrypt(bytes(8))[:3].hex().upper() == zpk.kcv
    reimported = HSM.import_key("001", zmk, exported.under_zmk, "U")
    assert reimported == (zpk.under_lmk, zpk.kcv, False)


# ------------------------------------------------------------------------------------ schemes, parity

@pytest.mark.parametrize(("scheme", "length"), [("Z", 16), ("U", 33), ("X", 33), ("T", 49), ("Y", 49)])
def test_generate_each_scheme(scheme: str, length: int) -> None:
    generated = HSM.generate_key("001", scheme)
    assert len(generated.under_lmk) == length
    assert generated.under_lmk[0] == scheme or scheme == "Z"
    assert HSM.key_check_value("001", generated.under_lmk) == generated.kcv


def test_degenerate_double_length_key_is_accepted() -> None:
    # Halves equal: TDES degenerates to single DES, which payShield test data relies on.
    single = "0123456789ABCDEF"
    double = KeyCodec(LMK).to_lmk("003", ClearKey(bytes.fromhex(single * 2)), "U")
    single_ct = KeyCodec(LMK).to_lmk("003", ClearKey(bytes.fromhex(single)), "Z")
    data = b"Now is the time for all "
    assert HSM.generate_mac("003", double, data, algorithm=1) == "70A30640CC76DD8B"
    assert HSM.generate_mac("003", single_ct, data, algorithm=1) == "70A30640CC76DD8B"
    assert HSM.key_check_value("003", double) == HSM.key_check_value("003", single_ct)


def test_wrong_key_type_is_a_parity_error() -> None:
    zpk = HSM.generate_key("001", "U").under_lmk
    with pytest.raises(KeyParityError) as excinfo:
        HSM.key_check_value("000", zpk)
    assert excinfo.value.code == "10"


def test_destination_parity_error_is_11() -> None:
    tpk = HSM.generate_key("002", "U").under_lmk
    bad_zpk = HSM.generate_key("000", "U").under_lmk  # a ZMK cryptogram where a ZPK is expected
    with pytest.raises(KeyParityError) as excinfo:
        HSM.translate_pin_tpk_to_zpk(tpk, bad_zpk, "0" * 16, "01", "01", "123456789012")
    assert excinfo.value.code == "11"


@pytest.mark.parametrize(
    ("key", "error", "code"),
    [
        ("U" + "0" * 31, KeyLengthError, "27"),
        ("T" + "0" * 32, KeyLengthError, "27"),
        ("Q" + "0" * 32, KeySchemeError, "26"),
        ("0" * 20, KeyLengthError, "27"),
        ("U" + "G" * 32, InvalidInputError, "15"),
        ("", InvalidInputError, "15"),
    ],
)
def test_malformed_key_fields(key: str, error: type[HsmError], code: str) -> None:
    with pytest.raises(error) as excinfo:
        HSM.key_check_value("001", key)
    assert excinfo.value.code == code


def test_unknown_key_type() -> None:
    with pytest.raises(KeyTypeError) as excinfo:
        HSM.generate_key("999", "U")
    assert excinfo.value.code == "04"


def test_scheme_length_mismatch_on_generate() -> None:
    with pytest.raises(KeySchemeError):
        HSM.generate_key("001", "Q")


# ------------------------------------------------------------------------- the file, as an attacker sees it

def _other_lmk_text() -> str:
    """The test LMK with pair 00-01 changed: another LMK, so a different check value."""
    return "\n".join(["2323232323232323" + TEST_LMK_PAIRS[0][16:], *TEST_LMK_PAIRS[1:]]) + "\n"


def test_file_swapped_after_the_check_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Swap a world-readable LMK into place right after the permission check, whichever call makes it: what
    # gets loaded must be the file that was checked, not the one now at the path.
    path = write_test_lmk(tmp_path / "lmk.txt")
    intruder = tmp_path / "intruder.txt"
    intruder.write_text(_other_lmk_text())
    intruder.chmod(0o644)
    real_stat, real_fstat = os.stat, os.fstat
    swapped: list[bool] = []

    def swap_after(real: Any) -> Any:
        def checked(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if not swapped:
                swapped.append(True)
                os.replace(intruder, path)
            return result
        return checked

    monkeypatch.setattr(os, "stat", swap_after(real_stat))
    monkeypatch.setattr(os, "fstat", swap_after(real_fstat))
    loaded = Lmk.load(path)
    monkeypatch.undo()
    assert swapped and not intruder.exists()  # the swap did happen
    assert loaded.check_value() == LMK.check_value()


def test_symbolic_link_is_refused(tmp_path: Path) -> None:
    target = write_test_lmk(tmp_path / "lmk.txt")
    link = tmp_path / "lmk-link"
    link.symlink_to(target)
    with pytest.raises(LmkFileError) as excinfo:
        Lmk.load(link)
    assert str(link) in str(excinfo.value) and "symbolic link" in str(excinfo.value)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "lmk.fifo"
    os.mkfifo(fifo, 0o600)
    outcome: list[BaseException | Lmk] = []

    def load() -> None:
        try:
            outcome.append(Lmk.load(fifo))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(timeout=5)
    if loader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # release the blocked reader
        loader.join(timeout=5)
        pytest.fail("loading a FIFO blocked")
    (error,) = outcome
    assert isinstance(error, LmkFileError)
    assert str(fifo) in str(error) and "FIFO" in str(error)


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "lmk.d"
    folder.mkdir(mode=0o700)
    with pytest.raises(LmkFileError, match="not a regular file"):
        Lmk.load(folder)


def test_file_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_test_lmk(tmp_path / "lmk.txt")
    owner = path.stat().st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)  # the node runs as someone else
    with pytest.raises(LmkFileError) as excinfo:
        Lmk.load(path)
    assert str(path) in str(excinfo.value) and f"owned by uid {owner}" in str(excinfo.value)
