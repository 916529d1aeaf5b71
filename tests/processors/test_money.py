"""ISO 4217 table and the ISO 8583:1987 amount fields (DE 28, DE 54)."""

from __future__ import annotations

import pytest

from processors import money


@pytest.mark.parametrize(("alpha", "numeric", "exponent"), [
    ("USD", "840", 2), ("EUR", "978", 2), ("JPY", "392", 0), ("KWD", "414", 3), ("CLF", "990", 4),
])
def test_iso4217_both_ways(alpha: str, numeric: str, exponent: int) -> None:
    assert money.numeric(alpha) == numeric
    assert money.alpha(numeric) == alpha and money.alpha(alpha) == alpha
    assert money.exponent(alpha) == exponent


def test_unknown_currency() -> None:
    assert money.alpha("999") is None
    with pytest.raises(money.CurrencyError):
        money.numeric("XXX")
    with pytest.raises(money.CurrencyError):
        money.exponent("ABC")


def test_numeric_codes_are_unique() -> None:
    numerics = [numeric for numeric, _ in money.ISO_4217.values()]
    assert len(numerics) == len(set(numerics))


def test_de54_layout() -> None:
    field = money.balances_field("20", "USD", 150_000, -2_500)
    assert field == "2001840C000000150000" "2002840D000000002500"
    assert money.parse_additional_amounts(field) == [("20", "01", "USD", 150_000), ("20", "02", "USD", -2_500)]
    with pytest.raises(ValueError):
        money.parse_additional_amounts(field[:-1])
    with pytest.raises(ValueError):
        money.parse_additional_amounts("2001840X000000150000")


def test_fee_field_and_amount_parsing() -> None:
    assert money.fee_field(250) == "D00000250"
    assert money.fee_field(-75) == "C00000075"
    assert money.parse_amount("000000012345") == 12_345
    for bad in (None, "", "12a", "1" * 13):
        assert money.parse_amount(bad) is None
