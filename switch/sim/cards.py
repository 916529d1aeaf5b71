"""Test cards for the acquirer simulator: the track 2 a card bureau would have encoded and the PIN block a
PIN pad would send, computed from the demo's keys under the public Thales test LMK (demos and tests only).

Track 2 equivalent data (ISO/IEC 7813): ``PAN '=' YYMM service-code discretionary``. Bulkhead's discretionary
data, as its card issuance defines it: PVKI (1) + PVV (4) + CVV (3) + zero padding. The simulator does not
know the card's PVV (it lives in the issuer's database), so it sends zeros there: the issuer verifies the PIN
against its own PVV, and the CVV, which the simulator computes with the product's CVK, against the track.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.testing import TestPinPad

FOREIGN_SERVICE_CODE = "201"  # international, IC card, normal authorization (the demo products' own)


@dataclass(frozen=True)
class TestCard:
    __test__ = False  # not a pytest test class

    track2: str = field(repr=False)  # test data, but card data all the same: kept out of logs
    pin_block: bytes | None = field(repr=False)


def test_card(products: Path | None, pan: str, expiry: str, *, pin: str | None = None, tpk: str | None = None,
              service_code: str | None = None) -> TestCard:
    """The track 2 of ``pan`` (expiry YYMM) with a CVV from its product's CVK in ``products`` (the catalogue;
    None: no catalogue, every card is another bank's, as the benchmark's network scenarios send), and, with
    ``pin`` and ``tpk`` (a TPK cryptogram), the PIN block under that TPK."""
    from processors.catalog_file import load_catalog

    catalog = load_catalog(products) if products is not None else None
    product = catalog.product_for_bin(pan[:6]) if catalog is not None else None
    if catalog is None or product is None:
        # Another bank's card (the demo's VISA and UnionPay cards): its issuer's keys are not ours, so its track
        # carries CVV 000, which the demo networks' simulators do not check; its PIN block is real (under the ATM's
        # TPK, translated by the node to the network's zone key), with the PIN the README documents (1234).
        code = service_code or FOREIGN_SERVICE_CODE
        track2 = f"{pan}={expiry}{code}{'0'}{'0000'}00000000"
    else:
        keys = catalog.keys[product.keys]
        code = service_code or product.service_code
        cvv = SoftwareHsm(Lmk.thales_test()).generate_cvv(keys.cvk, pan, expiry, code)
        track2 = f"{pan}={expiry}{code}{'1'}{'0000'}{cvv}00000"
    block = TestPinPad().pin_block("TPK", tpk, pin, pan) if pin is not None and tpk is not None else None
    return TestCard(track2, block)
