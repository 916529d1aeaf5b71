"""products.toml: the demo file loads, and every mistake is a ConfigError naming file, key and reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from processors.catalog import Fee, Limit
from processors.catalog_file import load_catalog, parse_catalog
from processors.model import ProductKind
from switch.model.errors import ConfigError

from .commands_kit import PRODUCTS

KEYS = """
[keys.k]
zpk = "U51D62F096A9511A3D11B86968C8C1BA9"
pvk = "U99BF45E2A2BCB73698167E7AE0FC3FDF"
cvk = "UEC04202152DDFA3B2955B8BBB3074E4F"
imk_ac = "U67E7070D9A6E871313E59653CD8B1D1A"
"""

DEBIT = """
[products.d]
kind = "debit"
bins = ["476173"]
currency = "USD"
keys = "k"
"""


def test_demo_catalogue_loads() -> None:
    catalog = load_catalog(PRODUCTS)
    debit, credit = catalog.products["debit-classic"], catalog.products["credit-gold"]
    assert debit.kind is ProductKind.DEBIT and debit.bins == ("476173",)
    assert credit.kind is ProductKind.CREDIT and credit.bins == ("520000",)
    assert catalog.product_for_bin("520000") is credit
    assert debit.limits["atm"] == Limit(50_000, 100_000, 10)
    assert debit.fees["withdrawal.atm.cross_border"] == Fee(300, 100, 300, 1500)
    assert credit.pricing["cash_advance.fee"] == Fee(fixed=500, rate_bp=300)
    assert credit.pricing["installment.fee_rate_bp"] == 150
    assert credit.credit_limit == 500_000 and credit.cash_limit == 100_000
    assert credit.payment_allocation == "cash_first"
    assert credit.allowed == frozenset({"purchase", "withdrawal", "refund", "balance", "pin_change", "statement"})
    assert catalog.bank.own_acquirers == frozenset({"00000000001"})
    assert catalog.bank.reversal_retention_days == 35


def test_demo_keys_are_under_the_test_lmk_with_the_documented_check_values() -> None:
    keys = load_catalog(PRODUCTS).keys["demo"]
    hsm = SoftwareHsm(Lmk.thales_test())
    assert hsm.key_check_value("001", keys.zpk) == "75BD45"
    assert hsm.key_check_value("002", keys.pvk) == "58CC6A"
    assert hsm.key_check_value("402", keys.cvk) == "F71C6F"
    assert hsm.key_check_value("109", keys.imk_ac) == "622EFC"


def test_minimal_catalogue_takes_defaults() -> None:
    catalog = parse_catalog(KEYS + DEBIT)
    product = catalog.products["d"]
    assert product.validity_months == 36 and product.pan_length == 16 and product.limits == {}
    assert catalog.bank.pin_tries == 3
    assert catalog.bank.reversal_retention_days == 35
    assert product.de28 == "add"
    assert parse_catalog(KEYS + DEBIT + 'de28 = "ignore"\n').products["d"].de28 == "ignore"
    assert parse_catalog("[bank]\nreversal_retention_days = 10\n" + KEYS + DEBIT).bank.reversal_retention_days == 10
    assert (catalog.bank.reversal_memory_per_card, catalog.bank.reversal_memory_total) == (10, 100_000)
    capped = parse_catalog("[bank]\nreversal_memory_per_card = 3\nreversal_memory_total = 500\n" + KEYS + DEBIT)
    assert (capped.bank.reversal_memory_per_card, capped.bank.reversal_memory_total) == (3, 500)


# (TOML after KEYS, the key the error must name, a fragment of the reason)
BAD = [
    (DEBIT + 'colour = "blue"\n', "products.d.colour", "unknown key"),
    (DEBIT + "validity_month = 12\n", "products.d.validity_month", "did you mean 'validity_months'"),
    (DEBIT.replace('"debit"', '"prepaid"'), "products.d.kind", "'debit' or 'credit'"),
    (DEBIT.replace('["476173"]', '["47617"]'), "products.d.bins[0]", "6-digit BIN"),
    (DEBIT.replace('["476173"]', "[476173]"), "products.d.bins[0]", "6-digit BIN"),
    (DEBIT.replace('["476173"]', "[]"), "products.d.bins", "at least one"),
    (DEBIT.replace('"USD"', '"USX"'), "products.d.currency", "ISO 4217"),
    (DEBIT.replace('keys = "k"', 'keys = "prod"'), "products.d.keys", "no key set [keys.prod]"),
    (DEBIT.replace('keys = "k"\n', ""), "products.d.keys", "is required"),
    (DEBIT + "cvn = 11\n", "products.d.cvn", "unsupported cryptogram version"),
    (DEBIT + "validity_months = true\n", "products.d.validity_months", "got a boolean"),
    (DEBIT + "validity_months = 0\n", "products.d.validity_months", "at least 1"),
    (DEBIT + "pan_length = 20\n", "products.d.pan_length", "at most 19"),
    (DEBIT + 'service_code = "21"\n', "products.d.service_code", "3 digits"),
    (DEBIT + "credit_limit = 100\n", "products.d.credit_limit", "only credit products"),
    (DEBIT + 'allowed = ["purchase", "teleport"]\n', "products.d.allowed[1]", "unknown transaction type"),
    (DEBIT + 'pin_required = ["atm", "moon"]\n', "products.d.pin_required[1]", "unknown channel"),
    (DEBIT + "[products.d.limits.atn]\nper_txn = 1\n", "products.d.limits.atn", "did you mean 'atm'"),
    (DEBIT + "[products.d.limits.atm]\nper_tx = 1\n", "products.d.limits.atm.per_tx", "did you mean 'per_txn'"),
    (DEBIT + "[products.d.limits.atm]\nper_txn = -1\n", "products.d.limits.atm.per_txn", "negative"),
    (DEBIT + '[products.d.fees]\n"withdrawal.atm.abroad" = { fixed = 1 }\n',
     'products.d.fees."withdrawal.atm.abroad"', "expected '<"),
    (DEBIT + '[products.d.fees]\n"withdrawal.atm" = { fixd = 1 }\n',
     'products.d.fees."withdrawal.atm"', "unknown fee field 'fixd'"),
    (DEBIT + '[products.d.fees]\n"withdrawal.atm" = { min = 5, max = 1 }\n',
     'products.d.fees."withdrawal.atm".max', "below min"),
    (DEBIT + '[products.d.fees]\n"withdrawal.atm" = 5\n', 'products.d.fees."withdrawal.atm"', "fee table"),
    (DEBIT + '[products.d.pricing]\n"installment.fee_rate" = 1\n',
     'products.d.pricing."installment.fee_rate"', "unknown pricing item"),
    (DEBIT + '[products.d.pricing]\n"installment.max_count" = 1\n',
     'products.d.pricing."installment.max_count"', "at least 2"),
    (DEBIT + '[products.d.pricing]\n"cash_advance.fee" = { fixed = -1 }\n',
     'products.d.pricing."cash_advance.fee".fixed', "negative"),
    (DEBIT + DEBIT.replace("[products.d]", "[products.e]"), "products.e.bins[0]", "already used by product 'd'"),
    (DEBIT.replace('"debit"', '"credit"') + "credit_limit = 10\ncash_limit = 20\n", "products.d.cash_limit",
     "above credit_limit"),
    (DEBIT.replace('"debit"', '"credit"') + 'payment_allocation = "newest_first"\n', "products.d.payment_allocation",
     "must be one of cash_first, purchases_first, pro_rata, not 'newest_first'"),
    (DEBIT + 'payment_allocation = "cash_first"\n', "products.d.payment_allocation", "only credit products"),
    (DEBIT + 'de28 = "included"\n', "products.d.de28", "must be one of add, ignore, not 'included'"),
    (DEBIT + "de28 = 1\n", "products.d.de28", "expected a string"),
    ('[bank]\ncountry = "US"\n' + DEBIT, "bank.country", "ISO 3166 numeric"),
    ("[bank]\nown_acquirers = [1]\n" + DEBIT, "bank.own_acquirers[0]", "1 to 11 digits"),
    ("[bank]\npin_tries = 0\n" + DEBIT, "bank.pin_tries", "at least 1"),
    ("[bank]\nhold_day = 3\n" + DEBIT, "bank.hold_day", "did you mean 'hold_days'"),
    ("[bank]\nreversal_retention_days = 0\n" + DEBIT, "bank.reversal_retention_days", "at least 1"),
    ("[bank]\nreversal_memory_per_card = 0\n" + DEBIT, "bank.reversal_memory_per_card", "at least 1"),
    ('[bank]\nreversal_memory_total = "many"\n' + DEBIT, "bank.reversal_memory_total", "integer"),
    ("[bank]\nreversal_memory = 5\n" + DEBIT, "bank.reversal_memory", "did you mean"),
    ('[keys.x]\nzpk = "U12"\npvk = "U12"\ncvk = "U12"\nimk_ac = "U12"\n' + DEBIT, "keys.x.zpk", "Thales notation"),
    ("[bankk]\n" + DEBIT, "bankk", "did you mean 'bank'"),
    (DEBIT + '[rates]\n"EUR-USD" = "1.08"\n', 'rates."EUR-USD"', "'<from>/<to>'"),
    (DEBIT + '[rates]\n"EUR/USX" = "1.08"\n', 'rates."EUR/USX"', "ISO 4217"),
    (DEBIT + '[rates]\n"BGN/EUR" = "0.5113"\n', 'rates."BGN/EUR"', "ISO 4217"),  # withdrawn (2026)
    (DEBIT + '[rates]\n"XAU/USD" = "2400"\n', 'rates."XAU/USD"', "XAU has no minor unit"),
    (DEBIT + '[rates]\n"USD/USD" = "1"\n', 'rates."USD/USD"', "to itself"),
    (DEBIT + '[rates]\n"EUR/USD" = "abc"\n', 'rates."EUR/USD"', "not a number"),
    (DEBIT + '[rates]\n"EUR/USD" = "-1.08"\n', 'rates."EUR/USD"', "positive"),
    (DEBIT + '[rates]\n"EUR/USD" = "0"\n', 'rates."EUR/USD"', "positive"),
    (DEBIT + '[rates]\n"EUR/USD" = true\n', 'rates."EUR/USD"', "expected a rate"),
    (DEBIT + '[rates]\n"EUR/USD" = "1.0000000000001"\n', 'rates."EUR/USD"', "significant digits"),
    ("", "products", "is required"),
]


@pytest.mark.parametrize(("toml", "key", "reason"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_mistakes_name_file_key_and_reason(toml: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_catalog(KEYS + toml, Path("/etc/bank/products.toml"))
    assert info.value.file == "/etc/bank/products.toml"
    assert info.value.key == key
    assert reason in info.value.reason


def test_rates_are_exact_decimals_one_way() -> None:
    catalog = parse_catalog(KEYS + DEBIT + '[rates]\n"EUR/USD" = "1.0850"\n"JPY/USD" = 0.0067\n"USD/JPY" = 150\n')
    assert catalog.rate("EUR", "USD") == Decimal("1.0850")
    assert catalog.rate("JPY", "USD") == Decimal("0.0067")  # a TOML float is taken as written, not as binary
    assert catalog.rate("USD", "JPY") == Decimal(150)
    assert catalog.rate("USD", "EUR") is None  # never the inverse: buying and selling rates differ
    assert parse_catalog(KEYS + DEBIT).rates == {}


def test_any_current_iso_4217_currency_can_be_given_a_rate() -> None:
    """The remedy for an advice answered 96 for want of a rate: the operator adds it to the demo file's [rates]."""
    added = '"KZT/USD" = "0.0021"\n"USD/XCG" = "1.79"\n"ZWG/USD" = "0.037"\n'
    catalog = parse_catalog(PRODUCTS.read_text(encoding="utf-8").replace("[rates]\n", "[rates]\n" + added, 1))
    assert catalog.rate("KZT", "USD") == Decimal("0.0021") and catalog.rate("EUR", "USD") == Decimal("1.0850")
    assert catalog.rate("USD", "XCG") == Decimal("1.79") and catalog.rate("ZWG", "USD") == Decimal("0.037")


def test_toml_syntax_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TOML syntax error"):
        parse_catalog("[products\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "absent.toml")
    good = tmp_path / "products.toml"
    good.write_text(KEYS + DEBIT, encoding="utf-8")
    assert list(load_catalog(good).products) == ["d"]
