"""``products.toml`` parsed into a :class:`~processors.catalog.Catalog`, validated at load time.

The layout is documented in :mod:`processors.catalog`. As for ``node.toml`` (:mod:`switch.config`), every
error is a :class:`~switch.model.errors.ConfigError` naming the file, the dotted key and the reason, and an unknown
key is an error with a "did you mean" suggestion: a misspelt daily limit silently ignored means cards with no
limit. Cross-references are checked too (a product's key set exists, a BIN belongs to one product only).

Key cryptograms are checked for their form only (scheme letter and length, Thales notation); whether they are
under this node's LMK is only known to the HSM (``bulkhead keys kcv``).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from processors import money, pricing
from processors.catalog import DE28_RULES, Bank, Catalog, Fee, KeySet, Limit, Product
from processors.model import Channel, ProductKind, TxnType
from switch.model.errors import ConfigError
from switch.model.toml import TomlTable, kind_name

# Double-length TDES keys under a variant LMK: "U" + 32H or "X" + 32H (X9.17); the ZPK may also be triple
# length ("T"/"Y" + 48H). payShield host command manual, key scheme table. The scheme letter is required: 32
# bare hex digits are as likely to be a clear key pasted by mistake as a cryptogram.
_DOUBLE = re.compile(r"^[UX][0-9A-F]{32}$")
_DOUBLE_OR_TRIPLE = re.compile(r"^(?:[UX][0-9A-F]{32}|[TY][0-9A-F]{48})$")
_CVNS = (10, 16, 17, 18)  # EMV cryptogram versions hsm.verify_arqc supports
_LIMIT_FIELDS = ("per_txn", "daily_amount", "daily_count")


class _Table(TomlTable):
    """The catalogue's reader names a wrong value's type in words ("expected an integer, got a string")."""

    def value_name(self, value: Any) -> str:
        return kind_name(type(value)) if type(value) in (int, str, list, dict) else type(value).__name__


def load_catalog(path: Path | str) -> Catalog:
    """Read and validate ``products.toml``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), "", f"cannot read: {exc.strerror}") from None
    return parse_catalog(text, file)


def parse_catalog(text: str, file: Path | str = "products.toml") -> Catalog:
    """Validate the TOML text of a catalogue (``file`` only names it in errors)."""
    name = str(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"TOML syntax error: {exc}") from None
    root = _Table(data, name, "")
    bank_t = root.table("bank")
    bank = _bank(bank_t) if bank_t is not None else Bank()
    keys_t = root.table("keys")
    keys = _named(keys_t, _key_set) if keys_t is not None else {}
    products_t = root.table("products")
    if products_t is None or not products_t.data:
        raise root.error("products", "is required: at least one [products.<code>] table")
    products = _named(products_t, lambda t, code: _product(t, code, keys))
    rates_t = root.table("rates")
    rates = _rates(rates_t) if rates_t is not None else {}
    root.done()
    _check_bins(name, products)
    return Catalog(bank=bank, products=products, keys=keys, rates=rates)


def _named(parent: _Table, build: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in parent.data:
        t = parent.table(code)
        if t is None:  # pragma: no cover - table() only returns None for an absent key
            continue
        out[code] = build(t, code)
    return out


def _bank(t: _Table) -> Bank:
    country = t.get("country", str, "840")
    if len(country) != 3 or not country.isdigit():
        raise t.error("country", "expected an ISO 3166 numeric country code (3 digits), like '840'")
    acquirers = t.get("own_acquirers", list, [])
    for i, acquirer in enumerate(acquirers):
        # DE 32, acquiring institution identification code: n..11 (ISO 8583:1987).
        if not isinstance(acquirer, str) or not acquirer.isdigit() or not 1 <= len(acquirer) <= 11:
            raise t.error(f"own_acquirers[{i}]", "expected an acquirer id of 1 to 11 digits (DE 32), as a string")
    bank = Bank(
        country=country,
        own_acquirers=frozenset(acquirers),
        hold_days=t.integer("hold_days", 7, low=1, high=90),
        pin_tries=t.integer("pin_tries", 3, low=1, high=9),
        txn_retention_days=t.integer("txn_retention_days", 35, low=1),
        reversal_retention_days=t.integer("reversal_retention_days", 35, low=1, high=3660),
        reversal_memory_per_card=t.integer("reversal_memory_per_card", 10, low=1, high=10_000),
        reversal_memory_total=t.integer("reversal_memory_total", 100_000, low=1, high=10_000_000),
        completion_tolerance_bp=t.integer("completion_tolerance_bp", 2000, low=0, high=100_000),
    )
    t.done()
    return bank


# A rate is a positive decimal with at most this many significant digits (a rate sheet quotes 4 to 8).
_RATE_DIGITS = 12


def _rates(t: _Table) -> dict[tuple[str, str], Decimal]:
    """``"EUR/USD" = "1.0850"``: units of USD per EUR, exact (a string; an integer or float is taken by its
    written form). Both codes must be current ISO 4217 codes with a minor unit (any of list one's,
    :data:`processors.money.ISO_4217`), and differ."""
    out: dict[tuple[str, str], Decimal] = {}
    for key, value in t.data.items():
        t.used.add(key)
        source, slash, target = key.partition("/")
        if not slash:
            raise t.error(_quoted(key), "expected '<from>/<to>' with two ISO 4217 alphabetic codes, like 'EUR/USD'")
        for code in (source, target):
            if code not in money.ISO_4217:
                raise t.error(_quoted(key), f"{money.unknown(code)} (expected '<from>/<to>' with two ISO 4217 "
                              "alphabetic codes, like 'EUR/USD')")
        if source == target:
            raise t.error(_quoted(key), "a rate from a currency to itself")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise t.error(_quoted(key), f"expected a rate as a string like '1.0850', got {kind_name(type(value))}")
        try:
            rate = Decimal(str(value).strip())
        except InvalidOperation:
            raise t.error(_quoted(key), f"{value!r} is not a number") from None
        if not rate.is_finite() or rate <= 0:
            raise t.error(_quoted(key), "must be a positive number")
        if len(rate.normalize().as_tuple().digits) > _RATE_DIGITS:
            raise t.error(_quoted(key), f"more than {_RATE_DIGITS} significant digits")
        out[(source, target)] = rate
    t.done()
    return out


def _quoted(key: str) -> str:
    return f'"{key}"'


def _key_set(t: _Table, name: str) -> KeySet:
    def key(field: str, pattern: re.Pattern[str], what: str) -> str:
        value = t.get(field, str).upper()
        if not pattern.match(value):
            raise t.error(field, f"expected {what} under the LMK in Thales notation (e.g. 'U' + 32 hex digits)")
        return str(value)

    keys = KeySet(
        name=name,
        zpk=key("zpk", _DOUBLE_OR_TRIPLE, "a double or triple length ZPK"),
        pvk=key("pvk", _DOUBLE, "a double length PVK pair"),
        cvk=key("cvk", _DOUBLE, "a double length CVK pair"),
        imk_ac=key("imk_ac", _DOUBLE, "a double length IMK-AC"),
    )
    t.done()
    return keys


def _product(t: _Table, code: str, keys: Mapping[str, KeySet]) -> Product:
    kind_text = t.get("kind", str)
    try:
        kind = ProductKind(kind_text)
    except ValueError:
        raise t.error("kind", f"must be 'debit' or 'credit', not {kind_text!r}") from None
    bins = t.get("bins", list)
    if not bins:
        raise t.error("bins", "needs at least one 6-digit BIN")
    for i, bin_ in enumerate(bins):
        if not isinstance(bin_, str) or len(bin_) != 6 or not bin_.isdigit():
            raise t.error(f"bins[{i}]", "expected a 6-digit BIN as a string")
    if len(set(bins)) != len(bins):
        raise t.error("bins", "lists a BIN twice")
    currency = t.get("currency", str)
    if currency not in money.ISO_4217:
        raise t.error("currency", f"expected an ISO 4217 alphabetic code like 'USD', not {currency!r}")
    key_set = t.get("keys", str)
    if key_set not in keys:
        known = ", ".join(sorted(keys)) or "none defined"
        raise t.error("keys", f"no key set [keys.{key_set}] (known: {known})")
    service_code = t.get("service_code", str, "201")
    if len(service_code) != 3 or not service_code.isdigit():
        raise t.error("service_code", "expected 3 digits (ISO/IEC 7813 service code)")
    cvn = t.integer("cvn", 18)
    if cvn not in _CVNS:
        raise t.error("cvn", f"unsupported cryptogram version {cvn} (supported: {', '.join(map(str, _CVNS))})")
    credit = kind is ProductKind.CREDIT
    product = Product(
        code=code,
        kind=kind,
        bins=tuple(bins),
        currency=currency,
        keys=key_set,
        validity_months=t.integer("validity_months", 36, low=1, high=120),
        service_code=service_code,
        cvn=cvn,
        pan_length=t.integer("pan_length", 16, low=13, high=19),
        limits=_limits(t),
        fees=_fees(t),
        pricing=_pricing(t),
        allowed=_allowed(t),
        pin_required=_channels(t, "pin_required"),
        credit_limit=_credit_amount(t, "credit_limit", credit),
        cash_limit=_credit_amount(t, "cash_limit", credit),
        payment_allocation=_payment_allocation(t, credit),
        de28=_choice(t, "de28", DE28_RULES),
    )
    if credit and product.cash_limit > product.credit_limit:
        raise t.error("cash_limit", f"is above credit_limit ({product.credit_limit})")
    t.done()
    return product


def _payment_allocation(t: _Table, credit: bool) -> str:
    from processors.credit import PAYMENT_ALLOCATIONS

    if not credit:
        if "payment_allocation" in t.data:
            t.used.add("payment_allocation")
            raise t.error("payment_allocation", "only credit products have a credit line")
        return PAYMENT_ALLOCATIONS[0]
    rule = t.get("payment_allocation", str, PAYMENT_ALLOCATIONS[0])
    if rule not in PAYMENT_ALLOCATIONS:
        raise t.error("payment_allocation", f"must be one of {', '.join(PAYMENT_ALLOCATIONS)}, not {rule!r}")
    return str(rule)


def _choice(t: _Table, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first is the default)."""
    value = t.get(name, str, choices[0])
    if value not in choices:
        raise t.error(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _credit_amount(t: _Table, name: str, credit: bool) -> int:
    if not credit:
        if name in t.data:
            t.used.add(name)
            raise t.error(name, "only credit products have a credit line")
        return 0
    return t.integer(name, 0)


def _limits(t: _Table) -> dict[str, Limit]:
    limits_t = t.table("limits")
    if limits_t is None:
        return {}
    channels = [c.value for c in Channel]
    out: dict[str, Limit] = {}
    for channel in limits_t.data:
        if channel not in channels:
            hint = difflib.get_close_matches(channel, channels, n=1)
            raise limits_t.error(channel, f"unknown channel (channels: {', '.join(channels)})"
                                 + (f"; did you mean {hint[0]!r}?" if hint else ""))
        ct = limits_t.table(channel)
        assert ct is not None
        out[channel] = Limit(*(ct.optional_integer(f) for f in _LIMIT_FIELDS))
        ct.done()
    limits_t.done()
    return out


def _fees(t: _Table) -> dict[str, Fee]:
    fees_t = t.table("fees")
    if fees_t is None:
        return {}
    out: dict[str, Fee] = {}
    for key, value in fees_t.data.items():
        fees_t.used.add(key)
        if not pricing.is_fee_key(key):
            types = "|".join(x.value for x in TxnType)
            raise fees_t.error(key, f"expected '<{types}>.<{'|'.join(pricing.FEE_CHANNELS)}>"
                               "[.foreign|.cross_border]'")
        try:
            out[key] = pricing.fee_from(key, value)
        except pricing.PricingError as exc:
            raise ConfigError(fees_t.file, f"{fees_t.prefix}.{_quote(exc.item)}", exc.reason) from None
    return out


def _pricing(t: _Table) -> dict[str, Any]:
    pricing_t = t.table("pricing")
    if pricing_t is None:
        return {}
    out: dict[str, Any] = {}
    for item, value in pricing_t.data.items():
        pricing_t.used.add(item)
        try:
            out[item] = pricing.validate_item(item, value)
        except pricing.PricingError as exc:
            raise ConfigError(pricing_t.file, f"{pricing_t.prefix}.{_quote(exc.item)}", exc.reason) from None
    return out


def _quote(item: str) -> str:
    # "fee.purchase.pos.max" -> the fee key quoted, the field after it: '"fee.purchase.pos".max'
    for field in pricing.FEE_FIELDS:
        if item.endswith("." + field):
            head = item[: -len(field) - 1]
            return (f'"{head}"' if "." in head else head) + "." + field
    return f'"{item}"' if "." in item else item


def _allowed(t: _Table) -> frozenset[str]:
    allowed = t.get("allowed", list, [])
    types = [x.value for x in TxnType]
    for i, name in enumerate(allowed):
        if name not in types:
            raise t.error(f"allowed[{i}]", f"unknown transaction type {name!r} (types: {', '.join(types)})")
    return frozenset(allowed)


def _channels(t: _Table, key: str) -> frozenset[str]:
    names = t.get(key, list, [])
    channels = [x.value for x in Channel if x != Channel.CROSS_BORDER]
    for i, name in enumerate(names):
        if name not in channels:
            raise t.error(f"{key}[{i}]", f"unknown channel {name!r} (channels: {', '.join(channels)})")
    return frozenset(names)


def _check_bins(file: str, products: Mapping[str, Product]) -> None:
    seen: dict[str, str] = {}
    for code, product in products.items():
        for i, bin_ in enumerate(product.bins):
            if bin_ in seen:
                raise ConfigError(file, f"products.{code}.bins[{i}]", f"BIN {bin_} is already used by product "
                                  f"{seen[bin_]!r}")
            seen[bin_] = code
