"""Which fee a card transaction pays: the seam between authorization and pricing.

:func:`fee_for` is the one function the engine calls. It asks :mod:`processors.pricing` for the transaction's
fee, by its three levels: the transaction's own (``override``: the fee a request states in DE 28, see
:func:`processors.fields.requested_fee`), then ``fees["<txn type>.<channel>"]`` with ``.cross_border`` and
``.foreign`` variants, the most specific present winning, an account-level ``fee.<key>`` before the product's,
and, for a credit-card cash advance without such an entry, the ``cash_advance.fee`` pricing item (account level
before product level).
"""

from __future__ import annotations

from processors import pricing
from processors.catalog import Fee, Product
from processors.model import Account, ProductKind, TxnType


def fee_for(
    product: Product, account: Account, txn_type: str, channel: str, *, foreign: bool, cross_border: bool,
    amount: int, override: int | None = None,
) -> int:
    """The fee in the account's minor units for a transaction of ``amount`` (0 when none applies);
    ``override``: the transaction-level fee in minor units, which wins over the account's and the product's
    (a cash advance's too; 0 waives the fee)."""
    given = None if override is None else Fee(fixed=override)
    if product.fees or account.pricing or given is not None:
        fee = pricing.txn_fee(product, account, txn_type, channel, foreign=foreign, cross_border=cross_border,
                              override=given)
        if fee is not None:
            return fee.on(amount)
    if product.kind == ProductKind.CREDIT and txn_type == TxnType.WITHDRAWAL:
        return pricing.cash_advance_fee(product, account, amount)
    return 0
