"""Which fee a card transaction pays: the seam between authorization and pricing.

:func:`fee_for` is the one function the engine calls. It asks :mod:`processors.pricing` for the transaction's
fee, by its three levels: the transaction's own (``override``: the fee a request states in DE 28, in the
account's currency, see :func:`stated_fee`), then ``fees["<txn type>.<channel>"]`` with ``.cross_border`` and
``.foreign`` variants, the most specific present winning, an account-level ``fee.<key>`` before the product's,
and, for a credit-card cash advance without such an entry, the ``cash_advance.fee`` pricing item (account level
before product level).
"""

from __future__ import annotations

from processors import money, pricing
from processors.catalog import Fee, Product
from processors.fields import FeeFieldError, requested_fee
from processors.model import Account, ProductKind, TxnType
from switch.model.message import Message


def stated_fee(request: Message, product: Product, rate: tuple[int, int | None] | None) -> int | None:
    """The fee ``request`` states in DE 28 (:func:`processors.fields.requested_fee`) as the transaction-level
    fee in the account's minor units; None when there is none or the product's ``de28`` is ``"ignore"`` (the
    network already includes DE 28 in DE 4, so it is not the issuer's fee).

    DE 28 is in the transaction currency (DE 49), like DE 4. ``rate`` is (DE 6, DE 4) when the account is billed
    in DE 51's currency, not DE 49's: the fee is then converted by the same rate as the amount, rounded half up
    (:func:`processors.money.at_rate`). Raises :class:`~processors.fields.FeeFieldError` when DE 28 cannot be
    taken (malformed 30, credited 13, or no DE 4 to convert it by 13)."""
    if product.de28 == "ignore":
        return None
    fee = requested_fee(request)
    if fee is None or rate is None:
        return fee
    billed, requested = rate
    if not requested:
        raise FeeFieldError("13", "DE 28 is in DE 49's currency and there is no DE 4 to convert it by")
    return money.at_rate(fee, billed, requested)


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
