"""PINs under the LMK in the software HSM: BA (encrypt a clear PIN), NG (decrypt it), JC / JE (a PIN block from a
TPK / ZPK to under the LMK) and DG (a VISA PVV from a PIN under the LMK). The encoding is :mod:`hsm.pinlmk`'s."""

from __future__ import annotations

from hsm import pinblock, pinlmk, pinverify
from hsm.cipher import tdes_encrypt
from hsm.errors import PinLengthError
from hsm.soft_pin import PinFunctions


class PinLmkFunctions(PinFunctions):
    """PINs encrypted under LMK pair 02-03, bound to the account number."""

    def encrypt_pin(self, pin: str, account: str) -> str:
        """BA: a clear PIN (4-12 digits) under the LMK, for the 12-digit account field (or a full PAN)."""
        if not pin.isdigit() or not pinlmk.MIN_PIN <= len(pin) <= pinlmk.MAX_PIN:
            raise PinLengthError("PIN must be 4 to 12 digits")
        return pinlmk.encrypt(self._lmk.pin_pair(), pin, pinblock.account_field(account))

    def decrypt_pin_under_lmk(self, pin_under_lmk: str, account: str) -> str:
        """NG: the clear PIN of a PIN under the LMK. A clear PIN leaves the HSM: the payShield-compatible server
        executes NG only under the public test LMK (see :mod:`hsm.thales.dispatch`)."""
        return self._pin_from_lmk(pin_under_lmk, account)

    def translate_pin_to_lmk(
        self, pin_key_type: str, pin_key: str, pin_block: str, pin_format: str, account: str, *,
        pan: str | None = None,
    ) -> str:
        """JC (TPK, ``pin_key_type="002"``) / JE (ZPK, ``"001"``): the PIN of a PIN block, under the LMK."""
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, pinblock.MAX_PIN)
        return pinlmk.encrypt(self._lmk.pin_pair(), pin, pinblock.account_field(account))

    def generate_pvv_from_lmk_pin(self, pvk: str, pin_under_lmk: str, account: str, pvki: int) -> str:
        """DG: VISA PVV (4N) of a PIN under the LMK; ``pvk`` the PVK pair (double length, ``"002"``)."""
        pvk_pair = self._pvk(pvk, pair=True)
        pin = self._pin_from_lmk(pin_under_lmk, account)
        return pinverify.visa_pvv(pvk_pair, pinblock.account_field(account), pvki, pin)

    def pin_reference(self, pin: str, account: str) -> str:
        """NG's reference number (12N): Bulkhead's own, the PIN's ISO format 0 block for the account encrypted
        under LMK pair 02-03 and decimalised (VISA rule), so that it changes with the PIN and the LMK."""
        block = tdes_encrypt(self._lmk.pin_pair(), pinblock.encode(0, pin, account))
        return pinverify.decimalise_visa(block.hex().upper(), 12)

    @property
    def test_lmk(self) -> bool:
        """Whether this HSM holds the public Thales test LMK."""
        return self._test_lmk

    def _pin_from_lmk(self, pin_under_lmk: str, account: str) -> str:
        return pinlmk.decrypt(self._lmk.pin_pair(), pin_under_lmk, pinblock.account_field(account),
                              accept_simulator=self._test_lmk)
