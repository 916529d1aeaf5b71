"""Card functions of the software HSM: VISA CVV (CW, CY) and EMV cryptograms (KQ, KW)."""

from __future__ import annotations

import hmac

from hsm import emv
from hsm.cvv import visa_cvv
from hsm.errors import AccountError, InvalidInputError, KeyLengthError
from hsm.soft_base import SoftwareCore, hex_field


class CardFunctions(SoftwareCore):
    """Card verification: CVV / CVV2 / iCVV and EMV ARQC / ARPC."""

    def generate_cvv(self, cvk: str, pan: str, expiry: str, service_code: str) -> str:
        """CW: VISA CVV (3N). ``cvk`` is the CVK A/B pair (type ``"402"``); expiry YYMM.

        CVV2 is service code ``"000"``, iCVV ``"999"``.
        """
        cvk_key = self._key("402", cvk)
        if cvk_key.aes or len(cvk_key.value) != 16:
            raise KeyLengthError("CVK must be a double-length TDES key (CVK A || CVK B)")
        _check_card_data(pan, expiry, service_code)
        return visa_cvv(cvk_key.value, pan, expiry, service_code)

    def verify_cvv(self, cvk: str, pan: str, expiry: str, service_code: str, cvv: str) -> bool:
        """CY: verify a CVV / CVV2 / iCVV."""
        if len(cvv) != 3 or not cvv.isdigit():
            raise InvalidInputError("CVV must be 3 digits")
        return hmac.compare_digest(self.generate_cvv(cvk, pan, expiry, service_code), cvv)
    # ---------------------------------------------------------------------------------------- EMV

    def verify_arqc(
        self,
        mk_ac: str,
        cvn: int,
        pan: str,
        psn: str,
        atc: str,
        data: bytes,
        arqc: str,
        *,
        unpredictable_number: str | None = None,
        padded: bool = False,
    ) -> bool:
        """KQ / KW mode 0: verify an ARQC (or TC/AAC).

        ``cvn`` 10 (Visa: ICC MK as AC key, zero padding), 18 (Visa: EMV common session key), 16 or 17
        (Mastercard M/Chip: session key from ATC and ``unpredictable_number``). ICC master key by EMV option A
        from ``mk_ac`` (type ``"109"``) and PAN || PSN. ``atc`` 4H; ``data`` the CDOL data the card MACed; when
        ``padded`` the host already added the scheme padding (as KQ sends it).
        """
        prof = emv.profile(cvn)
        icc_mk = emv.icc_master_key(self._mk_ac(mk_ac), pan, psn)
        session = emv.ac_session_key(cvn, icc_mk, atc, unpredictable_number)
        expected = emv.application_cryptogram(session, data, 0 if padded else prof.padding)
        return hmac.compare_digest(expected, hex_field("ARQC", arqc, 8))

    def generate_arpc(
        self,
        mk_ac: str,
        cvn: int,
        pan: str,
        psn: str,
        atc: str,
        arqc: str,
        *,
        arc: str | None = None,
        csu: str | None = None,
        proprietary_data: bytes = b"",
        unpredictable_number: str | None = None,
    ) -> str:
        """KQ / KW modes 1-2: ARPC.

        Method 1 (CVN 10, 16, 17; ``arc`` 4H): 8-byte ARPC = TDES(key, ARQC xor ARC||00..), key = ICC MK.
        Method 2 (CVN 18; ``csu`` 8H, ``proprietary_data`` 0-8 bytes): 4-byte ARPC, alg-3 MAC under the
        session key.
        """
        prof = emv.profile(cvn)
        icc_mk = emv.icc_master_key(self._mk_ac(mk_ac), pan, psn)
        arqc_raw = hex_field("ARQC", arqc, 8)
        if prof.arpc_method == 1:
            if arc is None:
                raise InvalidInputError("ARPC method 1 needs the authorisation response code")
            return emv.arpc_method1(icc_mk, arqc_raw, hex_field("ARC", arc, 2)).hex().upper()
        if csu is None:
            raise InvalidInputError("ARPC method 2 needs the card status update")
        session = emv.ac_session_key(cvn, icc_mk, atc, unpredictable_number)
        return emv.arpc_method2(session, arqc_raw, hex_field("CSU", csu, 4), proprietary_data).hex().upper()
    def _mk_ac(self, mk_ac: str) -> bytes:
        key = self._key("109", mk_ac)
        if key.aes or len(key.value) != 16:
            raise KeyLengthError("MK-AC must be a double-length TDES key")
        return key.value


def _check_card_data(pan: str, expiry: str, service_code: str) -> None:
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise AccountError("PAN must be 12 to 19 digits")
    if len(expiry) != 4 or not expiry.isdigit():
        raise InvalidInputError("expiry date must be 4 digits")
    if len(service_code) != 3 or not service_code.isdigit():
        raise InvalidInputError("service code must be 3 digits")
