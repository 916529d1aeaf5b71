"""Pricing: named items resolved at three levels, most specific first.

1. the transaction (an explicit value given with the request or command: ``credit.installments`` with
   ``rate_bp``; a card request's DE 28, which is its transaction and cash-advance fee, processors.fees),
2. the account (``Account.pricing``, set with the ``account.set_pricing`` command: negotiated terms),
3. the product (``[products.<code>.pricing]`` in ``products.toml``).

The first level that has the item wins; none: the caller's default. Item values are integers (minor units,
basis points, counts) or fees. A fee is a :class:`~processors.catalog.Fee` in the catalogue and a table /
JSON object ``{fixed, rate_bp, min, max}`` in ``Account.pricing`` (which is persisted as JSON).

Known items (anything else is refused when the catalogue or an account override is validated, because a
misspelt item name silently falling back to a default is a pricing incident):

========================== ===== ============================================================================
``installment.fee_rate_bp`` int  fee of an installment plan, basis points of the principal (default 0)
``installment.max_count``   int  most installments a purchase can be split into (default 12)
``installment.min_amount``  int  smallest purchase that can be converted, minor units (default 0)
``cash_advance.fee``        fee  fee of a credit-card cash advance (added to the advance)
``overdraft``               int  how far a deposit account may go below zero, minor units (default 0)
``fee.<txn>.<channel>[.v]`` fee  override of the product's transaction fee of the same key (see below)
========================== ===== ============================================================================

Transaction fees (:func:`txn_fee`): the product's ``fees`` table is keyed ``"<txn type>.<channel>"`` with
optional ``.foreign`` / ``.cross_border`` variants. The most specific key wins (``.cross_border``, then
``.foreign``, then plain) and, for each key, the levels above apply with the account's item named
``"fee." + key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from processors.catalog import Fee, Product
from processors.model import Account, Channel, TxnType

INT_ITEMS = frozenset({"installment.fee_rate_bp", "installment.max_count", "installment.min_amount", "overdraft"})
FEE_ITEMS = frozenset({"cash_advance.fee"})
FEE_FIELDS = ("fixed", "rate_bp", "min", "max")
FEE_VARIANTS = ("foreign", "cross_border")
# Channels a transaction arrives through; cross-border is a variant on top of one of them, not a channel.
FEE_CHANNELS = tuple(c.value for c in Channel if c is not Channel.CROSS_BORDER)


class PricingError(ValueError):
    """A pricing item name or value is invalid. ``item`` names it; the message says why."""

    def __init__(self, item: str, reason: str) -> None:
        self.item = item
        self.reason = reason
        super().__init__(f"{item}: {reason}")


def is_fee_key(key: str) -> bool:
    """Whether ``key`` is a transaction-fee key ``<txn type>.<channel>[.foreign|.cross_border]``."""
    parts = key.split(".")
    if len(parts) not in (2, 3):
        return False
    if parts[0] not in {t.value for t in TxnType} or parts[1] not in FEE_CHANNELS:
        return False
    return len(parts) == 2 or parts[2] in FEE_VARIANTS


def fee_from(item: str, value: Any) -> Fee:
    """A :class:`Fee` from a catalogue/JSON value (a Fee, or a mapping of ``fixed/rate_bp/min/max``)."""
    if isinstance(value, Fee):
        return value
    if not isinstance(value, Mapping):
        raise PricingError(item, f"expected a fee table {{{', '.join(FEE_FIELDS)}}}, got {type(value).__name__}")
    unknown = sorted(set(value) - set(FEE_FIELDS))
    if unknown:
        raise PricingError(item, f"unknown fee field {unknown[0]!r} (fields: {', '.join(FEE_FIELDS)})")
    parts: dict[str, int] = {}
    for name in FEE_FIELDS:
        part = value.get(name, 0)
        if isinstance(part, bool) or not isinstance(part, int):
            raise PricingError(f"{item}.{name}", "expected an integer")
        if part < 0:
            raise PricingError(f"{item}.{name}", "must not be negative")
        parts[name] = part
    if parts["max"] and parts["max"] < parts["min"]:
        raise PricingError(f"{item}.max", f"is below min ({parts['min']})")
    return Fee(**parts)


def fee_to_json(fee: Fee) -> dict[str, int]:
    """The JSON form of a fee, as ``Account.pricing`` stores it."""
    return {"fixed": fee.fixed, "rate_bp": fee.rate_bp, "min": fee.min, "max": fee.max}


def validate_item(item: str, value: Any) -> int | Fee:
    """Check one pricing item; returns the typed value (an int, or a :class:`Fee`)."""
    if item in INT_ITEMS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PricingError(item, f"expected an integer, got {type(value).__name__}")
        if value < 0:
            raise PricingError(item, "must not be negative")
        if item == "installment.max_count" and value < 2:
            raise PricingError(item, "a plan has at least 2 installments")
        return value
    if item in FEE_ITEMS or (item.startswith("fee.") and is_fee_key(item[4:])):
        return fee_from(item, value)
    known = [*sorted(INT_ITEMS | FEE_ITEMS), "fee.<txn type>.<channel>[.foreign|.cross_border]"]
    raise PricingError(item, f"unknown pricing item (known: {', '.join(known)})")


def resolve(item: str, product: Product, account: Account | None = None, override: Any = None) -> Any:
    """The raw value of ``item``: ``override`` (transaction level) if not None, else the account's, else the
    product's; None when no level has it."""
    if override is not None:
        return override
    if account is not None and item in account.pricing:
        return account.pricing[item]
    return product.pricing.get(item)


def get_int(item: str, product: Product, account: Account | None = None, override: int | None = None, *,
            default: int) -> int:
    """An integer item resolved over the three levels (validated, so a bad stored value raises)."""
    value = resolve(item, product, account, override)
    if value is None:
        return default
    typed = validate_item(item, value)
    assert isinstance(typed, int)
    return typed


def get_fee(item: str, product: Product, account: Account | None = None,
            override: Fee | Mapping[str, Any] | None = None) -> Fee | None:
    """A fee item resolved over the three levels; None when no level has it."""
    value = resolve(item, product, account, override)
    return None if value is None else fee_from(item, value)


def txn_fee(product: Product, account: Account | None, txn_type: str, channel: str, *, foreign: bool = False,
            cross_border: bool = False, override: Fee | Mapping[str, Any] | None = None) -> Fee | None:
    """The fee of a transaction: ``override`` if given, else the most specific fee key that some level has
    (``.cross_border`` before ``.foreign`` before plain), the account's ``fee.<key>`` before the product's
    ``fees[key]``. None: no fee."""
    if override is not None:
        return fee_from("fee", override)
    base = f"{txn_type}.{channel}"
    keys = ([f"{base}.cross_border"] if cross_border else []) + ([f"{base}.foreign"] if foreign else []) + [base]
    for key in keys:
        if account is not None and f"fee.{key}" in account.pricing:
            return fee_from(f"fee.{key}", account.pricing[f"fee.{key}"])
        if key in product.fees:
            return product.fees[key]
    return None


def cash_advance_fee(product: Product, account: Account | None, amount: int,
                     override: Fee | Mapping[str, Any] | None = None) -> int:
    """The fee of a credit-card cash advance of ``amount`` minor units (0 when no level prices it)."""
    fee = get_fee("cash_advance.fee", product, account, override)
    return 0 if fee is None else fee.on(amount)


def installment_rate_bp(product: Product, account: Account | None, override: int | None = None) -> int:
    """The fee rate (basis points of the principal) of a new installment plan."""
    return get_int("installment.fee_rate_bp", product, account, override, default=0)
