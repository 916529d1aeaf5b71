"""VISA card verification values: CVV (magnetic stripe), CVV2 (service code 000), iCVV (service code 999).

VISA CVV method (as published by VISA and implemented by every payment HSM's CW/CY): PAN || expiry ||
service code, right-padded with zeros to 32 digits, is split in two 8-byte blocks. Block 1 is DES-encrypted
under CVK A, XORed with block 2, and the result TDES-encrypted under CVK A/B; the first 3 digits of its VISA
decimalisation are the CVV.
"""

from __future__ import annotations

from hsm.cipher import tdes_encrypt
from hsm.errors import InvalidInputError
from hsm.pinverify import decimalise_visa


def visa_cvv(cvk: bytes, pan: str, expiry: str, service_code: str) -> str:
    """VISA CVV / CVV2 / iCVV (3 digits) with the CVK pair A/B (VISA card verification value method)."""
    data = f"{pan}{expiry}{service_code}".ljust(32, "0")
    if len(data) != 32 or not data.isdigit():
        raise InvalidInputError("PAN, expiry and service code must be digits, 32 in all at most")
    first = tdes_encrypt(cvk[:8], bytes.fromhex(data[:16]))
    second = tdes_encrypt(cvk, bytes(a ^ b for a, b in zip(first, bytes.fromhex(data[16:]), strict=True)))
    return decimalise_visa(second.hex().upper(), 3)
