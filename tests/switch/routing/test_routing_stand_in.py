"""A destination's stand-in policy: parsed strictly (file, line, key, reason), matched by a pure function,
shown by ``routes show`` and the reload diff, and reported to the issuer by an advice built here too."""

from __future__ import annotations

import pytest

from switch.exchange.reversal import build_stand_in_advice
from switch.model.errors import ConfigError
from switch.model.message import Message
from switch.routing import StandIn, parse_routes

POLICY = '{ max_amount = 5000, mti = ["0100", "0200"], processing_codes = ["00", "01"], currency = "840" }'
TABLE = """default = "a"
[destinations.a]
links = ["x"]
stand_in = {policy}
"""


def test_a_policy_is_parsed_and_a_destination_without_one_has_none() -> None:
    table = parse_routes(TABLE.format(policy=POLICY) + '[destinations.b]\nlinks = ["y"]\n', "r.toml")
    assert table.destinations["a"].stand_in == StandIn(5000, ("0100", "0200"), ("00", "01"), "840")
    assert table.destinations["b"].stand_in is None


def test_a_policy_may_be_written_as_a_sub_table() -> None:
    text = ('[destinations.a]\nlinks = ["x"]\n[destinations.a.stand_in]\nmax_amount = 100\nmti = ["0200"]\n'
            'processing_codes = ["00"]\ncurrency = "978"\n')
    assert parse_routes(text).destinations["a"].stand_in == StandIn(100, ("0200",), ("00",), "978")


BAD = [
    ("5", 'destinations.a.stand_in: expected a table (stand_in = { max_amount = ..., ... }), got integer'),
    ('{ max_amount = 5000, mti = ["0200"], processing_codes = ["00"] }',
     'destinations.a.stand_in: missing key "currency"'),
    ('{ max_amount = 5000, mti = ["0200"], processing_codes = ["00"], currency = "840", maxamount = 1 }',
     'destinations.a.stand_in.maxamount: unknown key "maxamount" (did you mean "max_amount"?)'),
    ('{ max_amount = 5000, mti = ["0200", "0400"], processing_codes = ["00"], currency = "840" }',
     "destinations.a.stand_in.mti[1]: stand-in applies to 0100 and 0200 (the requests an advice can report), "
     "not '0400'"),
    ('{ max_amount = 5000, mti = ["0200", "0200"], processing_codes = ["00"], currency = "840" }',
     "destinations.a.stand_in.mti[1]: duplicate of destinations.a.stand_in.mti[0]"),
    ('{ max_amount = 5000, mti = [], processing_codes = ["00"], currency = "840" }',
     "destinations.a.stand_in.mti: must not be empty (leave the key out to match any value)"),
    ('{ max_amount = 5000, mti = ["0200"], processing_codes = ["001000"], currency = "840" }',
     "destinations.a.stand_in.processing_codes[0]: transaction type (field 3, first two digits) must be 2 "
     "digits, not '001000'"),
    ('{ max_amount = 5000, mti = ["0200"], processing_codes = "00", currency = "840" }',
     "destinations.a.stand_in.processing_codes: expected an array of transaction type (field 3, first two "
     "digits) strings, got string"),
    ('{ max_amount = 5000, mti = ["0200"], processing_codes = ["00"], currency = "USD" }',
     "destinations.a.stand_in.currency: currency (ISO 4217 numeric) must be 3 digits, not 'USD'"),
    ('{ max_amount = 5000, mti = ["0200"], processing_codes = ["00"], currency = 840 }',
     'destinations.a.stand_in.currency: expected an ISO 4217 numeric code such as "840", got integer'),
    ('{ max_amount = 0, mti = ["0200"], processing_codes = ["00"], currency = "840" }',
     "destinations.a.stand_in.max_amount: must be from 1 to 999999999999, not 0"),
    ('{ max_amount = 50.0, mti = ["0200"], processing_codes = ["00"], currency = "840" }',
     "destinations.a.stand_in.max_amount: expected an integer, got float"),
]


@pytest.mark.parametrize(("policy", "reason"), BAD)
def test_a_bad_policy_is_refused_with_file_line_key_and_reason(policy: str, reason: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_routes(TABLE.format(policy=policy), "routes.toml")
    assert str(refused.value) == f"routes.toml:4: {reason}"


COVER = [
    # mti, processing code, currency, amount, PIN block, covered
    ("0200", "000000", "840", 5000, False, True),
    ("0100", "011000", "840", 1, False, True),
    ("0200", "000000", "840", 5001, False, False),  # above max_amount
    ("0200", "300000", "840", 0, False, False),  # balance inquiry: not in processing_codes
    ("0200", "000000", "978", 100, False, False),  # another currency
    ("0200", "000000", None, 100, False, False),
    ("0200", None, "840", 100, False, False),
    ("0200", "000000", "840", None, False, False),
    ("0201", "000000", "840", 100, False, False),  # only the MTIs listed
    ("0200", "000000", "840", 100, True, False),  # a PIN the switch cannot verify
]


@pytest.mark.parametrize(("mti", "code", "currency", "amount", "pin", "covered"), COVER)
def test_covers(mti: str, code: str | None, currency: str | None, amount: int | None, pin: bool,
                covered: bool) -> None:
    policy = StandIn(5000, ("0100", "0200"), ("00", "01"), "840")
    assert policy.covers(mti, code, currency, amount, pin) is covered


def test_routes_show_diff_and_digest_include_the_policy() -> None:
    without = parse_routes('default = "a"\n[destinations.a]\nlinks = ["x"]\n', "r.toml")
    with_policy = parse_routes(TABLE.format(policy=POLICY), "r.toml")
    reordered = parse_routes(TABLE.format(policy=POLICY.replace('["0100", "0200"]', '["0200", "0100"]')), "r.toml")
    assert "a  single: x; stand-in 0100, 0200 type 00, 01 up to 5000 (minor units of 840)" in with_policy.describe()
    assert without.diff(with_policy) == [
        "destination changed: a: single: x -> single: x; stand-in 0100, 0200 type 00, 01 up to 5000 (minor units "
        "of 840)"]
    assert with_policy.digest != without.digest
    assert reordered.digest == with_policy.digest  # the order of values inside the policy does not matter


def test_the_stand_in_advice_names_the_original_and_carries_no_card_security_data() -> None:
    original = Message("0200", {
        2: "4761739001010010", 3: "000000", 4: "000000001200", 7: "1122101010", 11: "000123", 12: "101010",
        13: "1122", 14: "3012", 22: "051", 32: "12345", 35: "4761739001010010=30121010000000000000",
        37: "000000000123", 41: "TERM0001", 42: "MERCHANT0000001", 49: "392", 52: bytes(8),
        6: "000000000800", 10: "61000000", 19: "392", 25: "00", 28: "D00000200", 51: "840",
    })
    advice = build_stand_in_advice(original, "S01234", repeat=False)
    assert advice.mti == "0220"
    assert (advice[38], advice[39]) == ("S01234", "00")
    assert advice[90] == "0200" + "000123" + "1122101010" + "00000012345" + "0" * 11
    # What the issuer posts it by: the billing amount, rate and currency, country, POS condition and the fee.
    for n in (2, 3, 4, 6, 7, 10, 11, 12, 13, 19, 22, 25, 28, 32, 37, 41, 42, 49, 51):
        assert advice[n] == original[n]
    assert not {14, 35, 52} & advice.fields.keys()
    assert build_stand_in_advice(original, "S01234", repeat=True).mti == "0221"
    original.mti = "0100"
    assert build_stand_in_advice(original, "S01234", repeat=False).mti == "0120"
    assert build_stand_in_advice(original, "S01234", repeat=True).mti == "0121"
