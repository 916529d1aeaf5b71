"""The bank's product catalogue: reference data every cell loads at start (``products.toml``).

Products give defaults (limits, fees, pricing, credit terms); cards and accounts override them. The parser
(:func:`load_catalog`) lives in :mod:`processors.catalog_file`; this module is only the shape.

Layout of ``products.toml``::

    [bank]
    country = "840"                 # ISO 3166 numeric: DE 19 different from this makes a transaction cross-border
    own_acquirers = ["00000000001"] # DE 32 values of the bank's own ATMs/terminals ("foreign" otherwise)
    hold_days = 7                   # pre-authorization holds expire after this many days unless completed
    pin_tries = 3                   # wrong PINs in a row before 75
    txn_retention_days = 35         # decided transactions kept in memory for reversals and duplicates
    reversal_retention_days = 35    # a reversal that came before its original is remembered this long
    reversal_memory_per_card = 10   # at most this many such reversals remembered per card at once (25 past it)
    reversal_memory_total = 100000  # and at most this many in the cell (25 past it)
    completion_tolerance_bp = 2000  # a completion above its pre-authorization by more than this (20%) is still
                                    # posted as sent, and listed as an exception (bulkhead exceptions list)

    [rates]                         # the cell's own exchange rates: "<from>/<to>" = units of <to> per unit of
    "EUR/USD" = "1.0850"            # <from> (a string, exact). Used only for an advice in a foreign currency
    "JPY/USD" = "0.0067"            # that carries no cardholder billing amount (DE 6 / DE 51), see
                                    # processors.engine.rules; the rate is one way: "USD/EUR" is a rate of its own

    [keys.demo]                     # one key set, all as LMK cryptograms (test LMK in the demo)
    zpk = "U..."                    # zone PIN key the switch uses towards the cells (DE 52 arrives under it)
    pvk = "U..."                    # VISA PVV key pair
    cvk = "U..."                    # CVV/iCVV key pair
    imk_ac = "U..."                 # issuer master key for application cryptograms (ARQC/ARPC)

    [products.debit-classic]
    kind = "debit"
    bins = ["476173"]
    currency = "USD"
    keys = "demo"
    validity_months = 36
    service_code = "201"
    cvn = 18                        # EMV cryptogram version for ARQC checks
    pan_length = 16                 # BIN 6 + cell 2 + sequence 7 + Luhn 1
    [products.debit-classic.limits.atm]     # per channel: per_txn, daily_amount, daily_count (absent: none)
    per_txn = 50000
    daily_amount = 100000
    daily_count = 10
    [products.debit-classic.fees]           # "<txn type>.<channel>[.foreign]" -> fee
    "withdrawal.atm.foreign" = { fixed = 250 }
    "withdrawal.atm.cross_border" = { fixed = 300, rate_bp = 100, min = 300, max = 1500 }
    [products.debit-classic.pricing]        # named pricing items (processors.pricing), product level
    "overdraft" = 0

    [products.credit-gold]
    kind = "credit"
    bins = ["520000"]
    currency = "USD"
    keys = "demo"
    credit_limit = 500000           # default customer-level line when the first credit card is issued
    cash_limit = 100000
    payment_allocation = "cash_first"   # how a payment lowers the cash owed (processors.credit): cash_first
                                        # (default), purchases_first or pro_rata
    de28 = "add"                    # a request's DE 28: "add" (default: the fee charged on top of DE 4,
                                    # replacing the product's) or "ignore" (the network includes it in DE 4)
    allowed = ["purchase", "withdrawal", "refund", "balance"]   # transaction types the product permits (57 else)
    pin_required = ["atm"]          # channels where a request without a PIN block gets 55
    [products.credit-gold.pricing]
    "installment.fee_rate_bp" = 150 # per plan, of the principal
    "installment.max_count" = 24
    "cash_advance.fee" = { fixed = 500, rate_bp = 300 }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from processors.model import ProductKind

# A request's DE 28 (transaction fee, in DE 49's currency): "add" - the fee the acquirer disclosed, charged to
# the cardholder on top of DE 4 (replacing the product's and the account's fee); "ignore" - already included in
# DE 4 on this network (an ATM access fee the acquirer keeps), so it is not a fee of the issuer's.
DE28_RULES = ("add", "ignore")


@dataclass(frozen=True)
class Fee:
    """A fee: ``fixed`` minor units plus ``rate_bp`` basis points of the amount, clamped to [min, max]
    (``max`` 0 = no cap)."""

    fixed: int = 0
    rate_bp: int = 0
    min: int = 0
    max: int = 0

    def on(self, amount: int) -> int:
        fee = self.fixed + (amount * self.rate_bp + 5_000) // 10_000  # rounded half up to the minor unit
        if fee < self.min:
            fee = self.min
        if self.max and fee > self.max:
            fee = self.max
        return fee


@dataclass(frozen=True)
class Limit:
    """One channel's limit; ``None`` means no limit of that kind."""

    per_txn: int | None = None
    daily_amount: int | None = None
    daily_count: int | None = None


@dataclass(frozen=True)
class KeySet:
    """Key cryptograms under the LMK (never clear keys)."""

    name: str
    zpk: str
    pvk: str
    cvk: str
    imk_ac: str


@dataclass(frozen=True)
class Product:
    code: str
    kind: ProductKind
    bins: tuple[str, ...]
    currency: str
    keys: str
    validity_months: int = 36
    service_code: str = "201"
    cvn: int = 18
    pan_length: int = 16  # digits of the PANs issued: BIN 6 + cell 2 + sequence + Luhn 1 (13..19)
    limits: dict[str, Limit] = field(default_factory=dict)  # channel -> limit
    fees: dict[str, Fee] = field(default_factory=dict)  # "<txn type>.<channel>[.foreign|.cross_border]" -> fee
    pricing: dict[str, Any] = field(default_factory=dict)  # product-level pricing items
    allowed: frozenset[str] = frozenset()  # txn types permitted; empty: every type the kind supports
    pin_required: frozenset[str] = frozenset()  # channels where a financial request without DE 52 gets 55
    credit_limit: int = 0
    cash_limit: int = 0
    payment_allocation: str = "cash_first"  # processors.credit.PAYMENT_ALLOCATIONS
    de28: str = "add"  # DE28_RULES: how a request's DE 28 is taken (processors.fees.stated_fee)


@dataclass(frozen=True)
class Bank:
    country: str = "840"
    own_acquirers: frozenset[str] = frozenset()
    hold_days: int = 7
    pin_tries: int = 3
    txn_retention_days: int = 35
    # How long a reversal whose original has not arrived is remembered (processors.early): as long as an original
    # is remembered for its reversals, the window in which a late original or stand-in advice is matched.
    reversal_retention_days: int = 35
    # At most this many remembered reversals per card, and in the cell (processors.early): any peer can send 0400s
    # naming real cards with fresh STANs, each a row and a memory entry for reversal_retention_days. Past a cap a
    # reversal is answered as before (25; 00 after a decline) without being remembered, and a warning is logged.
    reversal_memory_per_card: int = 10
    reversal_memory_total: int = 100_000
    completion_tolerance_bp: int = 2000  # a completion may exceed its pre-authorization by this much (20%)


@dataclass(frozen=True)
class Catalog:
    bank: Bank
    products: dict[str, Product]
    keys: dict[str, KeySet]
    # (from, to) ISO 4217 alpha codes -> units of ``to`` per unit of ``from`` (``[rates]``, major units)
    rates: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def rate(self, source: str, target: str) -> Decimal | None:
        """The cell's own rate from ``source`` to ``target``; None when ``[rates]`` has none (never inverted: a
        bank's buying and selling rates differ, so the inverse of one is not the other)."""
        return self.rates.get((source, target))

    def product(self, code: str) -> Product:
        return self.products[code]

    def product_for_bin(self, bin_: str) -> Product | None:
        for product in self.products.values():
            if bin_ in product.bins:
                return product
        return None
