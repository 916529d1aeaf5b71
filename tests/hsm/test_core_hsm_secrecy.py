"""No clear key, PIN, PAN or CVV in any exception text, repr or result of the software HSM."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hsm import pinblock
from hsm.cipher import force_odd_parity, tdes_encrypt
from hsm.errors import HsmError
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm

LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
CODEC = KeyCodec(LMK)

KEY = force_odd_parity(bytes.fromhex("3B6E2A9C4D1F5E7081A2B3C4D5E6F708"))
PIN = "918273"
PAN = "4999123456789012"
ACCOUNT = PAN[-13:-1]
TPK = CODEC.to_lmk("002", ClearKey(KEY), "U")
ZPK = CODEC.to_lmk("001", ClearKey(KEY), "U")
CVK = CODEC.to_lmk("402", ClearKey(KEY), "U")
BLOCK = tdes_encrypt(KEY, pinblock.encode(0, PIN, PAN)).hex().upper()
CVV = HSM.generate_cvv(CVK, PAN, "2912", "101")
SECRETS = [KEY.hex().upper(), KEY.hex(), KEY[:8].hex().upper(), KEY[8:].hex().upper(), PIN, PAN]

FAILING_CALLS: list[Callable[[], Any]] = [
    lambda: HSM.translate_pin_tpk_to_zpk(TPK, ZPK, BLOCK, "01", "01", ACCOUNT, max_pin_length=4),
    lambda: HSM.translate_pin_tpk_to_zpk(TPK, ZPK, BLOCK, "34", "01", ACCOUNT),
    lambda: HSM.translate_pin_tpk_to_zpk(TPK, ZPK, BLOCK, "01", "48", PAN),
    lambda: HSM.translate_pin_tpk_to_zpk(TPK, TPK, BLOCK, "01", "01", ACCOUNT),
    lambda: HSM.translate_pin_tpk_to_zpk(TPK, ZPK, BLOCK, "01", "01", PAN + "1234"),
    lambda: HSM.generate_cvv(CVK, PAN, "29120", "101"),
    lambda: HSM.verify_cvv(CVK, PAN, "2912", "101", CVV + "0"),
    lambda: HSM.key_check_value("000", ZPK),
    lambda: HSM.generate_mac("003", ZPK, PIN.encode()),
    lambda: HSM.verify_pin_pvv("002", TPK, TPK, BLOCK, "01", ACCOUNT, 1, "12X4"),
    lambda: HSM.verify_pin_ibm("002", TPK, TPK, BLOCK, "01", ACCOUNT, 4, "ABCDEF0123456789", "N", "1234"),
    lambda: HSM.verify_arqc(ZPK, 10, PAN, "00", "0001", b"", "00" * 8),
    lambda: HSM.tr31_import(ZPK, "B0016P0TE00E0000"),
]


@pytest.mark.parametrize("call", FAILING_CALLS)
def test_error_texts_hold_no_secrets(call: Callable[[], Any]) -> None:
    with pytest.raises(HsmError) as excinfo:
        call()
    exc = excinfo.value
    texts = [str(exc), repr(exc), exc.detail, *map(str, exc.args)]
    for text in texts:
        for secret in [*SECRETS, CVV]:
            assert secret not in text, f"{secret!r} leaked in {type(exc).__name__}"
    assert len(exc.code) == 2


def test_results_and_reprs_hold_no_secrets() -> None:
    outputs = [
        repr(HSM),
        repr(LMK),
        repr(ClearKey(KEY)),
        repr(HSM.translate_pin_tpk_to_zpk(TPK, ZPK, BLOCK, "01", "47", ACCOUNT)),
        repr(HSM.generate_key("001", "U")),
        repr(HSM.export_key("001", CODEC.to_lmk("000", ClearKey(KEY), "U"), ZPK, "U")),
        repr(HSM.diagnostics()),
    ]
    for text in outputs:
        for secret in SECRETS:
            assert secret not in text


def test_pin_translation_shows_the_pin_block_length_only() -> None:
    done = HSM.translate_pin_tpk_to_zpk(TPK, ZPK, BLOCK, "01", "47", ACCOUNT)
    aes_zpk = HSM.generate_key("001", "R").under_lmk
    four = HSM.translate_pin_tpk_to_zpk(TPK, aes_zpk, BLOCK, "01", "48", ACCOUNT, pan=PAN)
    assert repr(done) == "PinTranslation(pin_length=6, pin_block=<16>, pin_format='47')"
    assert str(four) == "PinTranslation(pin_length=6, pin_block=<32>, pin_format='48')"
    for result in (done, four):
        assert result.pin_block not in f"{result!r} {result!s} {[result]}"
