"""EMV application cryptograms: ICC master key derivation, session keys, ARQC and ARPC.

Following EMV 4.3 Book 2 (Annex A1.4 option A, A1.3 common session key, §8.1 AC, §8.2 ARPC methods 1/2), the
Visa VIS CVN 10/18 and Mastercard M/Chip CVN 16/17 profiles:

====  ======================  ==========================  ============  ===================
CVN   ICC master key          AC session key              AC padding    ARPC
====  ======================  ==========================  ============  ===================
10    option A                none (ICC MK itself)        zeros (m1)    method 1, ICC MK
18    option A                common SK, R = ATC||0..0    80 00.. (m2)  method 2, session key
16    option A                MC SKD, R = ATC||00 00||UN  80 00.. (m2)  method 1, ICC MK
17    option A                MC SKD, R = ATC||00 00||UN  80 00.. (m2)  method 1, ICC MK
====  ======================  ==========================  ============  ===================

Option B (PANs longer than 16 digits) is not needed by these profiles for PANs of 16 digits or fewer, where it
equals option A; longer PANs are refused rather than silently mis-derived.
"""

from __future__ import annotations

from dataclasses import dataclass

from hsm.cipher import force_odd_parity, tdes_encrypt, xor
from hsm.errors import AccountError, InvalidInputError
from hsm.mac import ALG3, mac_final


@dataclass(frozen=True)
class CvnProfile:
    session_key: str  # "none", "common", "mastercard"
    padding: int  # ISO 9797-1 padding method for the AC
    arpc_method: int


CVN_PROFILES: dict[int, CvnProfile] = {
    10: CvnProfile("none", 1, 1),
    18: CvnProfile("common", 2, 2),
    16: CvnProfile("mastercard", 2, 1),
    17: CvnProfile("mastercard", 2, 1),
}


def profile(cvn: int) -> CvnProfile:
    """The derivation profile of a cryptogram version number (error 15 if unsupported)."""
    try:
        return CVN_PROFILES[cvn]
    except KeyError:
        raise InvalidInputError(f"unsupported cryptogram version number {cvn}") from None


def option_a_input(pan: str, psn: str) -> bytes:
    """EMV option A input: the 16 right-most digits of PAN || PSN (PSN 00 when absent), as BCD. Both backends
    use it, so both refuse the same inputs with error 22."""
    digits = pan + (psn or "00")
    if not digits.isdigit() or len(psn) not in (0, 2):
        raise AccountError("PAN and PAN sequence number must be digits")
    if len(pan) > 16:
        raise AccountError("option A is defined for PANs of at most 16 digits")
    return bytes.fromhex(digits[-16:].rjust(16, "0"))


def icc_master_key(issuer_mk: bytes, pan: str, psn: str) -> bytes:
    """ICC master key, EMV option A: encrypt the 16 right-most digits of PAN || PSN and their complement."""
    y = option_a_input(pan, psn)
    return force_odd_parity(tdes_encrypt(issuer_mk, y) + tdes_encrypt(issuer_mk, xor(y, b"\xff" * 8)))


def common_session_key(icc_mk: bytes, r: bytes) -> bytes:
    """EMV common session key derivation (Book 2 A1.3.1): R with F0 / 0F in its third byte."""
    left = r[:2] + b"\xf0" + r[3:]
    right = r[:2] + b"\x0f" + r[3:]
    return force_odd_parity(tdes_encrypt(icc_mk, left) + tdes_encrypt(icc_mk, right))


def hex_bytes(name: str, value: str, length: int) -> bytes:
    """``value`` (hex text) as exactly ``length`` bytes, or error 15 naming the field (never its value)."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be hex") from None
    if len(raw) != length:
        raise InvalidInputError(f"{name} must be {length} bytes")
    return raw


def ac_session_key(cvn: int, icc_mk: bytes, atc: str, unpredictable_number: str | None) -> bytes:
    """The application cryptogram key for ``cvn`` (the ICC master key itself for CVN 10)."""
    kind = profile(cvn).session_key
    atc_raw = hex_bytes("ATC", atc, 2)
    if kind == "none":
        return icc_mk
    if kind == "common":
        return common_session_key(icc_mk, atc_raw + bytes(6))
    if unpredictable_number is None:
        raise InvalidInputError("Mastercard session keys need the unpredictable number")
    return common_session_key(icc_mk, atc_raw + bytes(2) + hex_bytes("UN", unpredictable_number, 4))


def application_cryptogram(session_key: bytes, data: bytes, padding: int) -> bytes:
    """ARQC / TC / AAC: ISO 9797-1 algorithm 3 MAC over the (padded) transaction data, 8 bytes."""
    return mac_final(session_key, data, ALG3, padding)


def arpc_method1(key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1 (Book 2 §8.2.1): TDES(key, ARQC xor (ARC || 00..00)), 8 bytes."""
    return tdes_encrypt(key, xor(arqc, arc + bytes(6)))


def arpc_method2(session_key: bytes, arqc: bytes, csu: bytes, proprietary: bytes) -> bytes:
    """ARPC method 2 (Book 2 §8.2.2): alg-3 MAC, padding 2, over ARQC || CSU || proprietary data; 4 bytes."""
    if len(proprietary) > 8:
        raise InvalidInputError("proprietary authentication data is at most 8 bytes")
    return mac_final(session_key, arqc + csu + proprietary, ALG3, 2)[:4]
