"""Pricing: transaction level over account level over product level; typed, validated values."""

from __future__ import annotations

import dataclasses

import pytest

from processors import pricing
from processors.catalog import Fee, Product
from processors.model import Account, ProductKind

PRODUCT = Product(
    code="p", kind=ProductKind.CREDIT, bins=("520000",), currency="USD", keys="k",
    fees={"withdrawal.atm": Fee(fixed=100), "withdrawal.atm.foreign": Fee(fixed=200),
          "withdrawal.atm.cross_border": Fee(fixed=300)},
    pricing={"installment.fee_rate_bp": 150, "cash_advance.fee": Fee(fixed=500, rate_bp=300)},
)


def account(**items: object) -> Account:
    return Account("0100000001", "0100000002", "credit", "USD", "p", pricing=dict(items))


def test_levels_transaction_then_account_then_product_then_default() -> None:
    plain = account()
    negotiated = account(**{"installment.fee_rate_bp": 90})
    assert pricing.installment_rate_bp(PRODUCT, None) == 150
    assert pricing.installment_rate_bp(PRODUCT, plain) == 150
    assert pricing.installment_rate_bp(PRODUCT, negotiated) == 90
    assert pricing.installment_rate_bp(PRODUCT, negotiated, override=0) == 0  # 0 is a value, not "absent"
    bare = dataclasses.replace(PRODUCT, pricing={})
    assert pricing.installment_rate_bp(bare, plain) == 0
    assert pricing.get_int("installment.max_count", bare, plain, default=12) == 12


def test_fee_items_resolve_and_convert_from_json() -> None:
    assert pricing.cash_advance_fee(PRODUCT, account(), 10_000) == 500 + 300
    waived = account(**{"cash_advance.fee": {"fixed": 0}})
    assert pricing.cash_advance_fee(PRODUCT, waived, 10_000) == 0
    assert pricing.cash_advance_fee(PRODUCT, waived, 10_000, override={"fixed": 7}) == 7
    assert pricing.cash_advance_fee(dataclasses.replace(PRODUCT, pricing={}), None, 10_000) == 0
    capped = {"rate_bp": 1000, "min": 50, "max": 400}
    assert pricing.get_fee("cash_advance.fee", PRODUCT, account(**{"cash_advance.fee": capped})) == Fee(0, 1000, 50,
                                                                                                         400)


def test_txn_fee_most_specific_key_first_and_account_before_product() -> None:
    plain = account()
    assert pricing.txn_fee(PRODUCT, plain, "withdrawal", "atm") == Fee(fixed=100)
    assert pricing.txn_fee(PRODUCT, plain, "withdrawal", "atm", foreign=True) == Fee(fixed=200)
    assert pricing.txn_fee(PRODUCT, plain, "withdrawal", "atm", foreign=True, cross_border=True) == Fee(fixed=300)
    assert pricing.txn_fee(PRODUCT, plain, "purchase", "pos", foreign=True) is None
    premium = account(**{"fee.withdrawal.atm.foreign": {"fixed": 0}})
    assert pricing.txn_fee(PRODUCT, premium, "withdrawal", "atm", foreign=True) == Fee()
    # The product's more specific cross-border fee still applies: specificity first, then level.
    assert pricing.txn_fee(PRODUCT, premium, "withdrawal", "atm", foreign=True, cross_border=True) == Fee(fixed=300)
    assert pricing.txn_fee(PRODUCT, premium, "withdrawal", "atm", override={"fixed": 9}) == Fee(fixed=9)


@pytest.mark.parametrize(("item", "value", "reason"), [
    ("installment.fee_rate", 1, "unknown pricing item"),
    ("installment.fee_rate_bp", -1, "negative"),
    ("installment.fee_rate_bp", True, "expected an integer"),
    ("installment.fee_rate_bp", "150", "expected an integer"),
    ("installment.max_count", 1, "at least 2"),
    ("cash_advance.fee", 5, "expected a fee table"),
    ("cash_advance.fee", {"fixed": 1, "percent": 2}, "unknown fee field 'percent'"),
    ("cash_advance.fee", {"min": 10, "max": 5}, "below min"),
    ("fee.withdrawal.atm.abroad", {"fixed": 1}, "unknown pricing item"),
    ("fee.teleport.atm", {"fixed": 1}, "unknown pricing item"),
])
def test_invalid_items_are_refused(item: str, value: object, reason: str) -> None:
    with pytest.raises(pricing.PricingError, match=reason):
        pricing.validate_item(item, value)


def test_a_bad_value_stored_on_an_account_is_not_silently_ignored() -> None:
    broken = account(**{"installment.fee_rate_bp": "a lot"})
    with pytest.raises(pricing.PricingError):
        pricing.installment_rate_bp(PRODUCT, broken)


def test_fee_keys() -> None:
    for key in ("purchase.pos", "withdrawal.atm.foreign", "refund.ecommerce.cross_border"):
        assert pricing.is_fee_key(key)
    for key in ("purchase", "purchase.cross_border", "purchase.pos.domestic", "buy.pos", "purchase.pos.foreign.x"):
        assert not pricing.is_fee_key(key)
    assert pricing.fee_to_json(pricing.fee_from("x", {"fixed": 1, "max": 3})) == {"fixed": 1, "rate_bp": 0, "min": 0,
                                                                                   "max": 3}
