"""How the results of the cell commands are printed for people (``customers``, ``accounts``, ``cards``, ``credit``).

A cell answers with a JSON-able dict: amounts in minor units (integers) beside the ``currency`` they are in, times
ISO 8601 in UTC. ``--json`` prints exactly that (machine output: minor units, see the README). For people this
module prints one ``key  value`` line per item, with

- amounts in major units with their ISO 4217 alphabetic code, by the currency's exponent (``1,234.56 CNY``,
  ``1,500 JPY``): the dict's own ``currency``, or, for a nested dict without one, the currency of the dict around
  it (:func:`processors.money.format_amount`);
- times in UTC with their zone (``2026-03-15 10:00:00 UTC``);
- basis points as percentages; ``yes``/``no``; ``-`` for nothing (None or an empty text);
- lists (a customer's accounts and cards, a line's installment plans, a plan's schedule) one item a line, under
  their key; pricing items and card limits spelled out with their amounts.

Which keys are amounts is listed here (:data:`AMOUNT_KEYS`): a result's integers are not all money (counts, tries,
installment numbers), so nothing is guessed from the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from processors.money import format_amount

# Keys whose integer value is an amount in minor units of the dict's currency (processors.commands views).
AMOUNT_KEYS = frozenset({
    "ledger_balance", "held", "available", "limit", "cash_limit", "owed", "cash_owed", "cash_held", "open_to_buy",
    "cash_open_to_buy", "principal", "fee", "amount",
})
# Pricing items (processors.pricing) that are amounts, and those that are basis points; the rest are counts.
_PRICING_AMOUNTS = frozenset({"overdraft", "installment.min_amount"})
_PRICING_RATES = frozenset({"installment.fee_rate_bp"})
# Card limit fields (processors.model.Card.limits): amounts, and the count.
_LIMIT_NAMES = {"per_txn": "per transaction", "daily_amount": "a day", "daily_count": "transactions a day"}
# DE 3 account types (ISO 8583:1987) as the card view keys its linked accounts.
_ACCOUNT_TYPES = {"10": "savings", "20": "checking", "30": "credit"}


def when(value: str | None) -> str:
    """An ISO 8601 time from a cell's result as people read it, in UTC with its zone: ``2026-03-15 10:00:00 UTC``
    (``-`` for none; text that is not a time is shown as it is)."""
    if not value:
        return "-"
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return value
    if instant.tzinfo is None:  # a cell's times are aware UTC; a naive one would be UTC too
        instant = instant.replace(tzinfo=UTC)
    return f"{instant.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def money(value: int, currency: str | None) -> str:
    """Minor units in major units with the code; without a known currency, the minor units, said to be so."""
    return format_amount(value, currency) if currency else f"{value} (minor units)"


def percent(basis_points: int) -> str:
    """Basis points as a percentage: 150 -> ``1.50%``."""
    return f"{basis_points / 100:.2f}%"


def render(result: Mapping[str, Any]) -> str:
    """The lines of a command's result for people (see the module docstring)."""
    currency = _currency(result, None)
    rows = [(str(key), _value(str(key), value, currency)) for key, value in result.items()]
    width = max((len(key) for key, _ in rows), default=0)
    lines = []
    for key, values in rows:
        first, *rest = values or ["-"]
        lines.append(f"{key:<{width}}  {first}".rstrip())
        lines.extend(f"{'':<{width}}  {more}" for more in rest)
    return "\n".join(lines)


def _currency(item: Mapping[str, Any], around: str | None) -> str | None:
    own = item.get("currency")
    return own if isinstance(own, str) and own else around


def _value(key: str, value: Any, currency: str | None) -> list[str]:
    if value is None:
        return ["-"]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, int):
        if key in AMOUNT_KEYS:
            return [money(value, currency)]
        if key == "rate_bp":
            return [percent(value)]
        return [str(value)]
    if isinstance(value, str):
        return [when(value)] if key.endswith("_at") else [value or "-"]
    if isinstance(value, Mapping):
        if key == "pricing":
            return _pricing(value, currency) or ["none (the product's apply)"]
        if key == "limits":
            return _limits(value, currency) or ["none (the product's apply)"]
        if key == "accounts":  # a card's linked accounts, by DE 3 account type
            return [", ".join(f"{_ACCOUNT_TYPES.get(str(t), t)} {a}" for t, a in sorted(value.items())) or "-"]
        return [_pairs(value, currency)] if value else ["-"]
    if isinstance(value, list):
        return [_item(key, item, currency) for item in value] or ["none"]
    return [str(value)]


def _item(key: str, item: Any, currency: str | None) -> str:
    """One line for an item of a list: the summary people look for in each kind of list."""
    if not isinstance(item, Mapping):
        return str(item)
    cur = _currency(item, currency)
    get = item.get
    if key == "accounts":
        return (f"{get('account')}  {get('kind')}  {get('product')}  ledger {money(get('ledger_balance', 0), cur)}  "
                f"available {money(get('available', 0), cur)}  {get('status')}")
    if key == "cards":
        return f"{get('card')}  {get('masked_pan')}  {get('product')}  {get('status')}"
    if key == "plans":
        return (f"{get('plan')}  {money(get('principal', 0), cur)} in {get('count')} installments, "
                f"{get('billed')} billed, fee {money(get('fee', 0), cur)} ({percent(get('rate_bp', 0))})  "
                f"{get('status')}")
    if key == "schedule":
        return (f"{get('installment'):>3}  due {get('due')}  {money(get('amount', 0), cur)}"
                + ("  billed" if get("billed") else ""))
    return _pairs(item, cur)


def _pairs(item: Mapping[str, Any], currency: str | None) -> str:
    """``key value`` pairs on one line (a dict with no summary of its own)."""
    cur = _currency(item, currency)
    return "  ".join(f"{k} {' / '.join(_value(str(k), v, cur))}" for k, v in item.items() if k != "currency")


def _pricing(items: Mapping[str, Any], currency: str | None) -> list[str]:
    lines = []
    for name, value in sorted(items.items()):
        if isinstance(value, Mapping):
            lines.append(f"{name} {fee(value, currency)}")
        elif isinstance(value, int) and name in _PRICING_AMOUNTS:
            lines.append(f"{name} {money(value, currency)}")
        elif isinstance(value, int) and name in _PRICING_RATES:
            lines.append(f"{name} {percent(value)}")
        else:
            lines.append(f"{name} {value}")
    return lines


def fee(parts: Mapping[str, Any], currency: str | None) -> str:
    """A fee table ``{fixed, rate_bp, min, max}`` (processors.catalog.Fee) in words: ``2.50 USD + 1.00% (min 3.00
    USD, max 15.00 USD)``; a fee of nothing is ``free``."""
    fixed, rate, low, high = (int(parts.get(k, 0)) for k in ("fixed", "rate_bp", "min", "max"))
    terms = ([money(fixed, currency)] if fixed else []) + ([percent(rate)] if rate else [])
    bounds = ([f"min {money(low, currency)}"] if low else []) + ([f"max {money(high, currency)}"] if high else [])
    text = " + ".join(terms) or ("free" if not low else money(0, currency))
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _limits(channels: Mapping[str, Any], currency: str | None) -> list[str]:
    lines = []
    for channel, values in sorted(channels.items()):
        if not isinstance(values, Mapping):
            lines.append(f"{channel}: {values}")
            continue
        parts = []
        for name, label in _LIMIT_NAMES.items():
            if name in values:
                amount = values[name]
                parts.append(f"{amount} {label}" if name == "daily_count" else f"{money(amount, currency)} {label}")
        lines.append(f"{channel}: {', '.join(parts)}")
    return lines
