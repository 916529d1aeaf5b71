"""Card numbers and identifiers: Luhn vectors, PAN layout, vanity numbers, cells in every identifier."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.cardnumber import (
    CardNumberError,
    cell_for_external_ref,
    cell_of_id,
    cell_of_pan,
    is_pan,
    luhn_check_digit,
    luhn_valid,
    make_card_id,
    make_id,
    make_pan,
    sequence_digits,
    vanity_pan,
)

# Published Luhn-valid numbers: ISO/IEC 7812-1 annex B example (79927398713) and the well-known test PANs of
# the card networks' developer documentation.
VALID = ["79927398713", "4111111111111111", "5555555555554444", "378282246310005", "4761739001010010",
         "6011111111111117", "3530111333300000"]


@pytest.mark.parametrize("number", VALID)
def test_published_numbers_pass_luhn(number: str) -> None:
    assert luhn_valid(number)
    assert luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize("number", ["79927398710", "4111111111111112", "4761739001010011", "", "1", "41111x11"])
def test_altered_or_malformed_numbers_fail_luhn(number: str) -> None:
    assert not luhn_valid(number)


@given(st.text("0123456789", min_size=1, max_size=18), st.integers(0, 9))
def test_luhn_detects_every_single_digit_change(payload: str, delta: int) -> None:
    number = payload + luhn_check_digit(payload)
    assert luhn_valid(number)
    i = len(payload) // 2
    changed = number[:i] + str((int(number[i]) + delta) % 10) + number[i + 1:]
    assert luhn_valid(changed) == (delta == 0)


def test_make_pan_layout() -> None:
    pan = make_pan("476173", 1, 42)
    assert pan == "476173" + "01" + "0000042" + luhn_check_digit("476173010000042")
    assert len(pan) == 16 and luhn_valid(pan)
    assert cell_of_pan(pan) == 1
    assert len(make_pan("520000", 99, 1, length=19)) == 19
    assert sequence_digits(13) == 4


@given(st.integers(0, 99), st.integers(0, 9_999_999), st.integers(13, 19))
def test_make_pan_round_trips_the_cell(cell: int, seq: int, length: int) -> None:
    seq %= 10 ** sequence_digits(length)
    pan = make_pan("520000", cell, seq, length)
    assert len(pan) == length and is_pan(pan) and cell_of_pan(pan) == cell
    assert pan.startswith("520000")


@pytest.mark.parametrize(("bin_", "cell", "seq", "length"), [
    ("47617", 0, 1, 16), ("47617a", 0, 1, 16), ("476173", 100, 1, 16), ("476173", -1, 1, 16),
    ("476173", 0, 10_000_000, 16), ("476173", 0, -1, 16), ("476173", 0, 1, 12), ("476173", 0, 1, 20),
])
def test_make_pan_refuses_bad_input(bin_: str, cell: int, seq: int, length: int) -> None:
    with pytest.raises(CardNumberError):
        make_pan(bin_, cell, seq, length)


def test_vanity_pan_uses_the_requested_digits() -> None:
    pan = vanity_pan("476173", 0, "1000001")
    assert pan == "4761730010000019"
    with pytest.raises(CardNumberError, match="exactly 7 digits"):
        vanity_pan("476173", 0, "100001")
    with pytest.raises(CardNumberError):
        vanity_pan("476173", 0, "10000a1")


def test_cell_of_pan_refuses_a_bad_pan_without_echoing_it() -> None:
    with pytest.raises(CardNumberError) as info:
        cell_of_pan("4761730010000018")
    assert "4761730010000018" not in str(info.value)


def test_identifiers_carry_their_cell() -> None:
    assert make_id(7, 12) == "0700000012"
    assert make_card_id(7, 12) == "K0700000012"
    for identifier in ("0700000012", "K0700000012", "T07-5", "M07-12", "I0700000001", "P07-3"):
        assert cell_of_id(identifier) == 7
    for bad in ("K", "Kx100", "7"):
        with pytest.raises(CardNumberError):
            cell_of_id(bad)
    with pytest.raises(CardNumberError):
        make_id(0, 0)
    with pytest.raises(CardNumberError):
        make_id(0, 100_000_000)


def test_cell_for_external_ref_is_crc32_modulo_the_count() -> None:
    # zlib.crc32 is CRC-32 (ISO 3309): "123456789" -> 0xCBF43926, the standard check value.
    assert zlib.crc32(b"123456789") == 0xCBF43926
    assert cell_for_external_ref("123456789", 100) == 0xCBF43926 % 100
    assert cell_for_external_ref("DEMO-ALICE", 2) == 0
    assert cell_for_external_ref("DEMO-BOB", 2) == 1
    assert cell_for_external_ref("anything", 1) == 0
    for bad_count in (0, 101):
        with pytest.raises(CardNumberError):
            cell_for_external_ref("x", bad_count)
    with pytest.raises(CardNumberError):
        cell_for_external_ref("", 2)


@given(st.text(min_size=1), st.integers(1, 100))
def test_cell_for_external_ref_is_in_range(ref: str, count: int) -> None:
    assert 0 <= cell_for_external_ref(ref, count) < count
