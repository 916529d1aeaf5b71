"""American Express's ISO 8583:1993 fields and their ISO 8583:1987 counterparts: DE 12's year, the POS data code,
function and reason codes, DE 56 <-> DE 90."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemes.amex.fields import (
    ECOMMERCE_POS,
    de90_of,
    entry_mode,
    function_code,
    local_datetime,
    original_data,
    pos_data_code,
    reason_39,
    reversal_reason,
)
from switch.model.errors import FieldError


@pytest.mark.parametrize(("mmdd", "today", "expected"), [
    ("1207", date(2026, 12, 7), "261207"),
    ("1231", date(2027, 1, 2), "261231"),  # read on 2 January: last year's
    ("0101", date(2026, 12, 30), "270101"),  # read on 30 December: next year's
    ("0229", date(2027, 3, 1), "280229"),  # no 29 February in 2026 or 2027: 2028's
])
def test_de12_year_is_the_one_nearest_today(mmdd: str, today: date, expected: str) -> None:
    assert local_datetime(mmdd, "101010", today) == expected + "101010"


def test_function_codes() -> None:
    assert function_code("0100", "000000", False) == "100"
    assert function_code("0100", "300000", False) == "108"  # an inquiry
    assert function_code("0200", "010000", False) == "200"
    assert function_code("0400", "000000", False) == "400"
    assert function_code("0420", "000000", True) == "401"


@pytest.mark.parametrize(("entry", "condition", "pin", "code", "back"), [
    ("021", "00", True, "560101214041", ("021", "00")),  # stripe, PIN entered, cardholder and card present
    ("012", "00", False, "560101664040", ("012", "00")),  # keyed at the counter, no PIN capability
    ("051", "00", True, "560101514041", ("051", "00")),  # chip
    ("071", "00", False, "560101X54041", ("071", "00")),  # contactless
    ("012", "08", False, "560110664040", ("012", "08")),  # mail or telephone: cardholder and card absent
    ("812", "59", False, ECOMMERCE_POS, ("812", "59")),  # e-commerce: the public interface's own code
])
def test_pos_data_code_both_ways(entry: str, condition: str, pin: bool, code: str, back: tuple[str, str]) -> None:
    built = pos_data_code(entry, condition, pin)
    assert built == code and len(built) == 12
    assert entry_mode(built) == back


def test_a_pos_data_code_that_is_not_12_characters_is_a_field_error() -> None:
    with pytest.raises(FieldError):
        entry_mode("5601")


def test_reversal_reasons() -> None:
    assert [reversal_reason(r) for r in ("17", "32", "22", "68", None, "99")] == \
        ["4000", "4004", "4017", "4021", "4021", "4021"]
    assert reason_39("4000") == "17" and reason_39("4004") == "32" and reason_39("1234") is None


def test_original_data_elements_both_ways() -> None:
    de90 = "0200" + "000123" + "1207101010" + "00000412345" + "0" * 11
    de56 = original_data(de90, None, date(2026, 12, 7))
    assert de56 == "1200" + "000123" + "261207101010" + "06" + "412345"
    assert de90_of(de56) == de90
    assert original_data(de90, "999", date(2026, 12, 7)).endswith("03999")  # the message's own acquirer
    with pytest.raises(FieldError):
        de90_of("1200000123261207101010" + "09" + "123")  # the acquirer does not fit its length


@given(st.sampled_from(["0100", "0200", "0120"]), st.text("0123456789", min_size=6, max_size=6),
       st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
       st.text("0123456789", min_size=1, max_size=11).filter(lambda t: t.lstrip("0")))
def test_de56_round_trip(mti: str, stan: str, day: date, acquirer: str) -> None:
    de90 = mti + stan + day.strftime("%m%d") + "101010" + acquirer.lstrip("0").rjust(11, "0") + "0" * 11
    assert de90_of(original_data(de90, None, day)) == de90
