"""PIN functions of the software HSM: translation (CA, CC, CI, G0) and verification values (DA, EA, DC, EC, FW, BK)."""

from __future__ import annotations

import hmac

from hsm import dukpt, pinblock, pinverify
from hsm.api import PinTranslation
from hsm.cipher import tdes_decrypt, tdes_encrypt
from hsm.errors import (
    AccountError,
    InvalidInputError,
    KeyLengthError,
    KeyTypeError,
    PinBlockFormatError,
    PinLengthError,
)
from hsm.keys import ClearKey
from hsm.soft_base import SoftwareCore, hex_field

FORMAT_4 = "48"


class PinFunctions(SoftwareCore):
    """PIN blocks: translated between keys and formats, verified, and turned into verification values."""

    def translate_pin_tpk_to_zpk(
        self,
        tpk: str,
        zpk: str,
        pin_block: str,
        source_format: str,
        destination_format: str,
        account: str,
        *,
        max_pin_length: int = 12,
        pan: str | None = None,
    ) -> PinTranslation:
        """CA: decrypt a PIN block under a TPK (``"002"``), re-encrypt it under a ZPK (``"001"``)."""
        return self._translate(
            self._key("002", tpk),
            self._key("001", zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account,
            pan,
            max_pin_length,
        )

    def translate_pin_zpk_to_zpk(
        self,
        source_zpk: str,
        destination_zpk: str,
        pin_block: str,
        source_format: str,
        destination_format: str,
        account: str,
        *,
        max_pin_length: int = 12,
        pan: str | None = None,
    ) -> PinTranslation:
        """CC: translate a PIN block from one ZPK to another, optionally changing its format."""
        return self._translate(
            self._key("001", source_zpk),
            self._key("001", destination_zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account,
            pan,
            max_pin_length,
        )

    def translate_pin_dukpt_to_zpk(
        self,
        bdk: str,
        zpk: str,
        ksn_descriptor: str,
        ksn: str,
        pin_block: str,
        destination_format: str,
        account: str,
        *,
        source_format: str = "01",
        pan: str | None = None,
    ) -> PinTranslation:
        """CI / G0: TDES DUKPT (ANSI X9.24-1) PIN block to a ZPK.

        ``ksn_descriptor`` is the Thales 3H descriptor (BDK ID length, sub-key ID length, device ID length,
        e.g. ``"605"``); ``ksn`` the KSN in hex, left-padded with F to 20H if shorter. CI always has source
        format 01; G0 passes ``source_format`` (the legacy 02 and 03 included). Format 04 is refused (23): its
        18-digit account field is defined for BC, BE, CA, CC, CG, DA, DC, EA, EC, EG, JC and JE only (payShield
        manual, "Format 04"), not for CI / G0.
        """
        if pinblock.PLUS in (source_format, destination_format):
            raise PinBlockFormatError("format 04 is not accepted by the DUKPT translations")
        base = self._key("009", bdk)
        if base.aes or len(base.value) != 16:
            raise KeyLengthError("TDES DUKPT needs a double-length TDES BDK")
        pin_key = ClearKey(dukpt.tdes_pin_key(base.value, dukpt.expand_ksn(ksn_descriptor, ksn)))
        return self._translate(
            pin_key,
            self._key("001", zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account,
            pan,
            pinblock.MAX_PIN,
        )

    def translate_pin_aes_dukpt(
        self,
        bdk: str,
        zpk: str,
        ksn: str,
        pin_block: str,
        pan: str,
        *,
        working_key: str = "AES128",
        source_format: str = "48",
        destination_format: str = "48",
        account: str | None = None,
    ) -> PinTranslation:
        """AES DUKPT (ANSI X9.24-3): PIN block under the transaction's PIN key to a zone key.

        ``bdk`` is an AES BDK (``"R"`` scheme, type ``"009"``); ``ksn`` 24H (initial key ID 16H + counter 8H).
        ``working_key``: ``"AES128"``, ``"AES192"``, ``"AES256"``, ``"2TDEA"`` or ``"3TDEA"``. Format 4
        needs AES keys on both sides; the destination ZPK may be TDES with formats 01/05/34/47.
        """
        base = self._key("009", bdk)
        if not base.aes:
            raise KeyLengthError("AES DUKPT needs an AES BDK")
        ksn_raw = hex_field("KSN", ksn, dukpt.AES_KSN_LEN)
        pin_key = dukpt.aes_working_key(base.value, ksn_raw, dukpt.USAGE_PIN, working_key.upper())
        source = ClearKey(pin_key, aes=working_key.upper().startswith("AES"))
        return self._translate(
            source,
            self._key("001", zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account if account is not None else pinblock.account_field(pan),
            pan,
            pinblock.MAX_PIN,
        )

    # ------------------------------------------------------------------------------- PIN verification

    def verify_pin_ibm(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        check_length: int,
        decimalisation_table: str,
        validation_data: str,
        offset: str,
        *,
        max_pin_length: int = 12,
        pan: str | None = None,
    ) -> bool:
        """DA (TPK, ``pin_key_type="002"``) / EA (ZPK, ``"001"``): verify a PIN by IBM 3624 offset.

        ``validation_data`` 12A: the letter ``N`` stands for the last 5 account digits. ``offset`` 12H
        left-justified, F-padded (or just ``check_length`` digits).
        """
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, max_pin_length)
        pvk_key = self._pvk(pvk)
        block = pinverify.validation_block(validation_data, pinblock.account_field(account))
        return pinverify.ibm_verify(pvk_key, block, decimalisation_table, pin, check_length, offset)

    def generate_ibm_offset(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        check_length: int,
        decimalisation_table: str,
        validation_data: str,
        *,
        pan: str | None = None,
    ) -> str:
        """BK: IBM 3624 offset of the PIN in a PIN block (PIN issuance / change). 12H, F-padded."""
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, pinblock.MAX_PIN)
        pvk_key = self._pvk(pvk)
        block = pinverify.validation_block(validation_data, pinblock.account_field(account))
        return pinverify.ibm_offset(pvk_key, block, decimalisation_table, pin, check_length)

    def verify_pin_pvv(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        pvki: int,
        pvv: str,
        *,
        pan: str | None = None,
    ) -> bool:
        """DC (TPK) / EC (ZPK): verify a PIN by VISA PVV. ``pvk`` is the PVK pair (double length, ``"002"``)."""
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, pinblock.MAX_PIN)
        if len(pvv) != 4 or not pvv.isdigit():
            raise InvalidInputError("PVV must be 4 digits")
        expected = pinverify.visa_pvv(self._pvk(pvk, pair=True), pinblock.account_field(account), pvki, pin)
        return hmac.compare_digest(expected, pvv)

    def generate_pvv(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        pvki: int,
        *,
        pan: str | None = None,
    ) -> str:
        """FW: VISA PVV (4N) of the PIN in a PIN block under a TPK or ZPK."""
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, pinblock.MAX_PIN)
        return pinverify.visa_pvv(self._pvk(pvk, pair=True), pinblock.account_field(account), pvki, pin)

    def _pin_under(
        self,
        code: str,
        cryptogram: str,
        pin_block: str,
        pin_format: str,
        account: str,
        pan: str | None,
        max_pin_length: int,
    ) -> str:
        if code not in ("001", "002"):
            raise KeyTypeError(f"key type {code} does not encrypt PIN blocks", "28")
        return _decrypt_pin(self._key(code, cryptogram), pin_block, pin_format, account, pan, max_pin_length)

    @staticmethod
    def _translate(
        source: ClearKey,
        destination: ClearKey,
        pin_block: str,
        source_format: str,
        destination_format: str,
        account: str,
        pan: str | None,
        max_pin_length: int,
    ) -> PinTranslation:
        pin = _decrypt_pin(source, pin_block, source_format, account, pan, max_pin_length)
        block = _encrypt_pin(destination, pin, destination_format, account, pan)
        return PinTranslation(len(pin), block, destination_format)



def _format4_pan(account: str, pan: str | None) -> str:
    if pan is not None:
        return pan
    if len(account) >= 13:
        return account
    raise AccountError("PIN block format 48 needs the full PAN")


def _decrypt_pin(
    key: ClearKey, pin_block: str, fmt_code: str, account: str, pan: str | None, max_pin_length: int
) -> str:
    """The clear PIN inside an encrypted PIN block (stays inside the HSM)."""
    pinblock.check_code(fmt_code)
    if not 4 <= max_pin_length <= pinblock.MAX_PIN:
        raise PinLengthError("maximum PIN length must be 4 to 12")
    if fmt_code == FORMAT_4:
        if not key.aes:
            raise PinBlockFormatError("format 48 needs an AES key")
        raw = hex_field("PIN block", pin_block, 16)
        return pinblock.decrypt_format4(key.value, raw, _format4_pan(account, pan), max_pin_length)
    if key.aes:
        raise PinBlockFormatError("an AES key encrypts format 48 PIN blocks only")
    clear = tdes_decrypt(key.value, hex_field("PIN block", pin_block, 8))
    return pinblock.decode_code(fmt_code, clear, _account_for(fmt_code, account, pan), max_pin_length)


def _encrypt_pin(key: ClearKey, pin: str, fmt_code: str, account: str, pan: str | None) -> str:
    pinblock.check_code(fmt_code)
    if fmt_code == FORMAT_4:
        if not key.aes:
            raise PinBlockFormatError("format 48 needs an AES key")
        return pinblock.encrypt_format4(key.value, pin, _format4_pan(account, pan)).hex().upper()
    if key.aes:
        raise PinBlockFormatError("an AES key encrypts format 48 PIN blocks only")
    clear = pinblock.encode_code(fmt_code, pin, _account_for(fmt_code, account, pan))
    return tdes_encrypt(key.value, clear).hex().upper()


def _account_for(fmt_code: str, account: str, pan: str | None) -> str:
    """Format 04 binds the account number's left-most digits, so it needs the full number: ``pan`` if given."""
    return pan if fmt_code == pinblock.PLUS and pan is not None else account
