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


@pytest.mark.parametrize(("alpha", "numeric", "exponent"), [
    ("KZT", "398", 2), ("UGX", "800", 0), ("ISK", "352", 0), ("VUV", "548", 0), ("UYW", "927", 4),
    ("XCG", "532", 2), ("ZWG", "924", 2), ("XAD", "396", 2), ("SLE", "925", 2), ("VED", "926", 2),
    ("MRU", "929", 2), ("STN", "930", 2), ("BYN", "933", 2), ("XPF", "953", 0), ("GNF", "324", 0),
])
def test_the_table_has_every_current_code_with_its_exponent(alpha: str, numeric: str, exponent: int) -> None:
    """Not only the currencies a bank is likely to see: a cardholder abroad pays in any of them, and the cell must
    be able to take a rate for it (processors.catalog_file)."""
    assert (money.numeric(alpha), money.alpha(numeric), money.exponent(alpha)) == (numeric, alpha, exponent)


def test_the_table_is_list_one_and_nothing_withdrawn() -> None:
    # ISO 4217 list one: 178 codes, of which 13 (funds, metals, testing, "no currency") have no minor unit.
    assert len(money.ISO_4217) == 165 and len(money.NO_MINOR_UNIT) == 13
    assert not set(money.ISO_4217) & set(money.NO_MINOR_UNIT)
    for withdrawn in ("HRK", "BGN", "ANG", "CUC", "SLL", "ZWL", "VEF", "MRO", "STD", "BYR"):
        assert money.alpha(withdrawn) is None, withdrawn


def test_unknown_currency() -> None:
    assert money.alpha("999") is None  # XXX: "no currency", no minor unit
    assert money.alpha("123") is None  # not assigned
    with pytest.raises(money.CurrencyError, match="no minor unit"):
        money.numeric("XXX")
    with pytest.raises(money.CurrencyError, match="no minor unit"):
        money.exponent("XAU")
    with pytest.raises(money.CurrencyError, match="unknown currency 'ABC'"):
        money.exponent("ABC")


def test_numeric_codes_are_unique() -> None:
    numerics = [numeric for numeric, _ in money.ISO_4217.values()] + list(money.NO_MINOR_UNIT.values())
    assert len(numerics) == len(set(numerics))
    assert all(len(code) == 3 and code.isdigit() for code in numerics)


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


@pytest.mark.parametrize(("value", "currency", "text"), [
    (123_456, "CNY", "1,234.56 CNY"),
    (1_500, "JPY", "1,500 JPY"),  # no minor unit
    (123_456_789, "KWD", "123,456.789 KWD"),  # three decimals
    (-5, "USD", "-0.05 USD"),
    (0, "USD", "0.00 USD"),
    (100_000_000_000, "USD", "1,000,000,000.00 USD"),
    (1_234, "XXX", "1234 minor units of XXX"),  # not in the table: no guessed exponent
])
def test_format_amount_in_major_units_by_the_exponent(value: int, currency: str, text: str) -> None:
    assert money.format_amount(value, currency) == text


@pytest.mark.parametrize(("rate", "source", "target", "value", "converted"), [
    ("1.0850", "EUR", "USD", 10_000, 10_850),
    ("0.0067", "JPY", "USD", 10_000, 6_700),  # JPY 10,000 = USD 67.00
    ("150", "USD", "JPY", 10_050, 15_075),  # USD 100.50 = JPY 15,075
    ("150", "USD", "JPY", 1, 2),  # 1.5 yen rounds half up
    ("3.2571", "KWD", "USD", 1_005, 327),  # KWD 1.005 = USD 3.2733855 -> 3.27 (three decimals to two)
    ("1E+2", "USD", "JPY", 1, 1),
])
def test_rate_ratio_converts_exactly_and_rounds_half_up(rate: str, source: str, target: str, value: int,
                                                         converted: int) -> None:
    from decimal import Decimal

    assert money.at_rate(value, *money.rate_ratio(Decimal(rate), source, target)) == converted


def test_rate_ratio_refuses_a_rate_that_is_not_positive() -> None:
    from decimal import Decimal

    for bad in ("0", "-1", "NaN", "Infinity"):
        with pytest.raises(ValueError, match="not a positive finite rate"):
            money.rate_ratio(Decimal(bad), "EUR", "USD")
