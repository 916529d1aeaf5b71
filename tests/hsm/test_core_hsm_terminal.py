"""The test PIN pad forms PIN blocks that the HSM's translate/verify commands accept, and only under the test LMK."""

from __future__ import annotations

import pytest

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.testing import NotTestLmkError, TestPinPad

PAN = "4761739001010010"


def test_pin_block_under_tpk_translates_to_the_same_pin_under_a_zpk() -> None:
    hsm = SoftwareHsm(Lmk.thales_test())
    tpk = hsm.generate_key("002").under_lmk
    zpk = hsm.generate_key("001").under_lmk
    pvk = hsm.generate_key("002").under_lmk
    pad = TestPinPad()
    block = pad.pin_block("TPK", tpk, "1234", PAN)
    assert len(block) == 8
    account = PAN[-13:-1]
    translated = hsm.translate_pin_tpk_to_zpk(tpk, zpk, block.hex().upper(), "01", "01", account)
    assert translated.pin_length == 4
    pvv = hsm.generate_pvv("001", zpk, pvk, pad.pin_block("ZPK", zpk, "1234", PAN).hex().upper(), "01", account, 1)
    assert hsm.verify_pin_pvv("001", zpk, pvk, translated.pin_block, "01", account, 1, pvv)
    wrong = pad.pin_block("ZPK", zpk, "9999", PAN).hex().upper()
    assert not hsm.verify_pin_pvv("001", zpk, pvk, wrong, "01", account, 1, pvv)


def test_refuses_any_lmk_but_the_test_lmk() -> None:
    other = Lmk([bytes([i + 1]) * 16 for i in range(20)])
    with pytest.raises(NotTestLmkError):
        TestPinPad(other)


def test_refuses_a_key_type_that_does_not_encrypt_pins() -> None:
    hsm = SoftwareHsm(Lmk.thales_test())
    with pytest.raises(Exception, match="TPK or ZPK"):
        TestPinPad().pin_block("CVK", hsm.generate_key("002").under_lmk, "1234", PAN)
