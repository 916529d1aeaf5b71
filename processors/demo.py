"""The demo's customers, accounts and cards, as a list of cell commands.

:func:`demo_commands` returns ``(cell, command, args)`` steps; running each one with its cell's
:class:`~processors.commands.CellCommands` (in order, on empty cells) seeds the demo. Customers land in the
cell their external reference maps to (``crc32(ref) % cell_count``); the references below were chosen so that
with two cells both get customers. Cards get vanity numbers, so the PANs are known in advance, and each gets
the PIN **1234** (its PIN block formed under the key set's ZPK by :class:`hsm.testing.TestPinPad`, which only
works under the public Thales test LMK: demo data only).

Demo PANs with ``cell_count = 2`` (BIN + cell + vanity + Luhn; other cell counts change digits 7-8), expiry
12/30 (``DEMO_EXPIRY``), PIN 1234:

================== ============ ==== ==================================================================
PAN                customer     cell what it shows
================== ============ ==== ==================================================================
4761730010000019   DEMO-ALICE   00   debit, checking $2,500.00 + savings $5,000.00: approvals
4761730110000026   DEMO-BOB     01   debit, card limits lowered: POS and ATM $20.00 per transaction,
                                     $50.00 a day (61 above)
4761730010000035   DEMO-CAROL   00   debit, checking $5.00: insufficient funds (51)
4761730110000042   DEMO-DAVE    01   debit, reported lost (41)
5200000120000010   DEMO-ERIN    01   credit (line $5,000.00), a $1,200.00 purchase converted to 6
                                     installments at the product's fee rate
================== ============ ==== ==================================================================

Amounts are minor units (USD cents) in the commands themselves.
"""

from __future__ import annotations

from typing import Any

from hsm.testing import TestPinPad
from processors.cardnumber import cell_for_external_ref, vanity_pan
from processors.catalog import Catalog, Product

Step = tuple[int, str, dict[str, Any]]

DEMO_PIN = "1234"
# A fixed expiry (December 2030) so the simulator can build the cards' track 2: `bulkhead sim acquirer --atm
# --test-card conf/demo --expiry 3012` (its default).
DEMO_EXPIRY = "3012"


def _pin_block(pad: TestPinPad, catalog: Catalog, product: Product, pan: str) -> str:
    return pad.pin_block("ZPK", catalog.keys[product.keys].zpk, DEMO_PIN, pan).hex().upper()


def demo_commands(catalog: Catalog, cell_count: int, *, debit: str = "debit-classic",
                  credit: str = "credit-gold") -> list[Step]:
    """The seeding steps for ``cell_count`` cells with the catalogue's ``debit`` and ``credit`` products."""
    debit_product, credit_product = catalog.products[debit], catalog.products[credit]
    pad = TestPinPad()
    steps: list[Step] = []

    def customer(ref: str, name: str) -> tuple[int, str]:
        cell = cell_for_external_ref(ref, cell_count)
        steps.append((cell, "customer.open", {"name": name, "external_ref": ref}))
        return cell, f"ref:{ref}"

    def deposit(cell: int, account: str, amount: int, reference: str) -> None:
        steps.append((cell, "account.deposit", {"account": account, "amount": amount, "reference": reference}))

    def card(cell: int, who: str, product: Product, vanity: str) -> str:
        pan = vanity_pan(product.bins[0], cell, vanity, product.pan_length)
        steps.append((cell, "card.issue", {"customer": who, "product": product.code, "vanity": vanity,
                                           "expiry": DEMO_EXPIRY, "activate": True}))
        steps.append((cell, "card.set_pin", {"card": pan, "pin_block": _pin_block(pad, catalog, product, pan)}))
        return pan

    def debit_customer(ref: str, name: str, vanity: str, checking: int, savings: int = 0) -> tuple[int, str, str]:
        cell, who = customer(ref, name)
        for kind, amount in (("checking", checking), ("savings", savings)):
            if amount:
                steps.append((cell, "account.open", {"customer": who, "kind": kind, "product": debit}))
                deposit(cell, f"{who}/{kind}", amount, f"{ref}-{kind}")
        return cell, who, card(cell, who, debit_product, vanity)

    # Alice: money in checking and savings (DE 3 account types 20 and 10 on her card), an ordinary card.
    debit_customer("DEMO-ALICE", "Alice Demo", "1000001", 250_000, 500_000)

    # Bob: plenty of money, but his card's limits are lowered below the product's.
    cell, who, pan = debit_customer("DEMO-BOB", "Bob Demo", "1000002", 100_000)
    for channel in ("pos", "atm"):
        steps.append((cell, "card.set_limits", {"card": pan, "channel": channel, "per_txn": 2_000,
                                                "daily_amount": 5_000}))

    # Carol: five dollars.
    debit_customer("DEMO-CAROL", "Carol Demo", "1000003", 500)

    # Dave: his card is reported lost.
    cell, who, pan = debit_customer("DEMO-DAVE", "Dave Demo", "1000004", 50_000)
    steps.append((cell, "card.block", {"card": pan, "status": "lost", "reason": "reported lost by phone"}))

    # Erin: a credit card; a purchase posted and converted into six installments.
    cell, who = customer("DEMO-ERIN", "Erin Demo")
    steps.append((cell, "account.open", {"customer": who, "kind": "credit", "product": credit}))
    card(cell, who, credit_product, "2000001")
    steps.append((cell, "account.post", {"account": f"{who}/credit", "amount": 120_000, "reference": "DEMO-ERIN-tv",
                                         "description": "television, Demo Electronics"}))
    steps.append((cell, "credit.installments", {"account": f"{who}/credit", "txn": "ref:DEMO-ERIN-tv",
                                                "count": 6}))
    return steps
