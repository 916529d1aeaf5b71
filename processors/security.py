"""Cardholder and card verification through the HSM: PIN (VISA PVV), CVV / iCVV from track 2, EMV ARQC/ARPC.

Everything here awaits :class:`hsm.api.Hsm` and touches no cell state: the engine runs these checks
first and then decides synchronously. Keys are LMK cryptograms from the product's key set; clear PANs go to
the HSM only and never into an exception or a log line.

A check's answer is ``True``/``False`` (verified or not) or :class:`HsmUnavailable` when the HSM could not
give one (down, timed out, or refusing a key: the cell answers 96 and changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hsm.api import Hsm
from hsm.errors import HsmError, HsmUnavailableError
from processors import emvtlv
from processors.catalog import KeySet
from switch.model.errors import BulkheadError

ZPK_TYPE = "001"  # DE 52 arrives under the zone PIN key between the switch and the cells
ISO_FORMAT_0 = "01"  # Thales PIN block format code of ISO 9564-1 format 0
ICVV_SERVICE_CODE = "999"  # VISA: the iCVV is the CVV computed with service code 999

# payShield error codes that mean "this PIN block is wrong", not "the HSM cannot work": 01 verification
# failure, 20 PIN block does not contain valid values, 23 invalid PIN block format, 24 PIN length.
_BAD_PIN_CODES = frozenset({"01", "20", "23", "24"})


class HsmUnavailable(BulkheadError):
    """The HSM gave no usable answer; ``reason`` names the HSM error code, never card data."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Track2:
    """ISO 7813 track 2 equivalent data: PAN ``=`` YYMM service-code discretionary-data."""

    pan: str = field(repr=False)
    expiry: str
    service_code: str
    discretionary: str = field(repr=False)  # holds the PVV and CVV

    @property
    def cvv(self) -> str:
        """Bulkhead's discretionary layout (our own issuance): PVKI 1, PVV 4, CVV 3."""
        return self.discretionary[5:8]


def parse_track2(track2: str) -> Track2 | None:
    """Track 2 (DE 35) split into its parts; None when it is not track 2 shaped."""
    for sep in ("=", "D", "d"):
        pan, found, rest = track2.partition(sep)
        if found:
            rest = rest.rstrip("F?")
            if len(rest) < 7 or not rest[:7].isdigit() or not pan.isdigit():
                return None
            return Track2(pan, rest[:4], rest[4:7], rest[7:])
    return None


async def verify_pin(hsm: Hsm, keys: KeySet, pan: str, pin_block: bytes, pvki: int, pvv: str) -> bool:
    """VISA PVV check of an ISO format 0 PIN block under the key set's ZPK (Thales EC).

    A block that does not decode to a PIN under the key is a wrong PIN, not an HSM failure."""
    try:
        return await hsm.verify_pin_pvv(
            ZPK_TYPE, keys.zpk, keys.pvk, pin_block.hex().upper(), ISO_FORMAT_0, pan, pvki, pvv)
    except HsmError as exc:
        if exc.code in _BAD_PIN_CODES and not _unavailable(exc):
            return False
        raise HsmUnavailable(f"PIN verification: HSM error {exc.code}") from None
    except OSError:
        raise HsmUnavailable("PIN verification: HSM connection failed") from None


async def new_pin_pvv(hsm: Hsm, keys: KeySet, pan: str, pin_block: str, pvki: int) -> str | None:
    """The VISA PVV of the PIN in ``pin_block`` (16H, ISO format 0 under the key set's ZPK: a PIN change's new
    PIN, DE 125), from the HSM (Thales FW). None when the block holds no PIN under that key and PAN (payShield
    20/23/24: a garbled block, another PAN, a PIN of the wrong length): the cardholder's new PIN cannot be read.
    The PIN never leaves the HSM; only its PVV does."""
    try:
        return await hsm.generate_pvv(ZPK_TYPE, keys.zpk, keys.pvk, pin_block.upper(), ISO_FORMAT_0, pan, pvki)
    except HsmError as exc:
        if exc.code in _BAD_PIN_CODES and not _unavailable(exc):
            return None
        raise HsmUnavailable(f"PVV generation: HSM error {exc.code}") from None
    except OSError:
        raise HsmUnavailable("PVV generation: HSM connection failed") from None


async def verify_track_cvv(hsm: Hsm, keys: KeySet, pan: str, track: Track2, *, chip: bool) -> bool:
    """CVV (magnetic stripe) or iCVV (chip track 2 equivalent, service code 999) from track 2 (Thales CY)."""
    cvv = track.cvv
    if len(cvv) != 3 or not cvv.isdigit():
        return False
    service_code = ICVV_SERVICE_CODE if chip else track.service_code
    try:
        return await hsm.verify_cvv(keys.cvk, pan, track.expiry, service_code, cvv)
    except HsmError as exc:
        if exc.code == "01" and not _unavailable(exc):
            return False
        raise HsmUnavailable(f"CVV verification: HSM error {exc.code}") from None
    except OSError:
        raise HsmUnavailable("CVV verification: HSM connection failed") from None


# -- EMV ------------------------------------------------------------------------------------------------

# CDOL1 data a Visa VIS / Mastercard M/Chip card MACs for the ARQC, in order (EMV Book 2 §8.1.1 recommended
# minimum set): amount, other amount, terminal country, TVR, currency, date, type, UN, AIP, ATC; then the
# card's own verification data from the IAD (below).
ARQC_TAGS = ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36")
_FIXED_LENGTH = {"9F02": 6, "9F03": 6, "9F1A": 2, "95": 5, "5F2A": 2, "9A": 3, "9C": 1, "9F37": 4, "82": 2,
                 "9F36": 2}


class IccDataError(BulkheadError):
    """DE 55 lacks a data object the ARQC check needs, or one has the wrong length."""


@dataclass(frozen=True, slots=True)
class ArqcRequest:
    """What verifying (and answering) an ARQC needs, taken from DE 55."""

    arqc: str  # 16H
    atc: str  # 4H
    data: bytes  # the data the card MACed, unpadded
    unpredictable_number: str  # 8H (Mastercard session keys)
    amount: int = 0  # 9F02 amount authorised (n12 BCD), what the card signed
    currency: str = ""  # 5F2A transaction currency code (n3 ISO 4217 numeric), what the card signed

    @property
    def atc_value(self) -> int:
        """The application transaction counter as a number (9F36 is 2 bytes binary, EMV Book 3 annex A)."""
        return int(self.atc, 16)


def iad_part(cvn: int, iad: bytes) -> bytes:
    """The part of the issuer application data (9F10) included in the ARQC data.

    Visa CVN 10 (IAD format 0: length, DKI, CVN, CVR 4 bytes): the CVR, bytes 4-7. Visa CVN 18 (VIS 1.6): the
    whole IAD. Mastercard CVN 16/17 (M/Chip: DKI, CVN, CVR 6 bytes, ...): the CVR, bytes 3-8."""
    if cvn == 10:
        return iad[3:7]
    if cvn in (16, 17):
        return iad[2:8]
    return iad


def arqc_data(cvn: int, objects: dict[str, bytes]) -> bytes:
    """The ARQC input built from parsed DE 55 objects (9F03 defaults to zero when absent)."""
    parts = []
    for tag in ARQC_TAGS:
        value = objects.get(tag)
        if value is None and tag == "9F03":
            value = bytes(6)
        if value is None or len(value) != _FIXED_LENGTH[tag]:
            raise IccDataError(f"DE 55 tag {tag} missing or of the wrong length")
        parts.append(value)
    iad = objects.get("9F10")
    if iad is None:
        raise IccDataError("DE 55 tag 9F10 missing")
    parts.append(iad_part(cvn, iad))
    return b"".join(parts)


def arqc_request(cvn: int, icc: bytes) -> ArqcRequest:
    """Parse DE 55 and assemble the ARQC check's inputs; raises :class:`IccDataError` / ``TlvError``."""
    objects = emvtlv.parse(icc)
    arqc = objects.get("9F26")
    if arqc is None or len(arqc) != 8:
        raise IccDataError("DE 55 tag 9F26 missing or of the wrong length")
    data = arqc_data(cvn, objects)
    amount_bcd = objects["9F02"].hex()
    if not amount_bcd.isdigit():
        raise IccDataError("DE 55 tag 9F02 is not numeric")
    # 5F2A is n3 in 2 bytes BCD with a leading zero nibble ("0840" -> "840").
    currency = objects["5F2A"].hex()[1:]
    return ArqcRequest(arqc.hex().upper(), objects["9F36"].hex().upper(), data, objects["9F37"].hex().upper(),
                       int(amount_bcd), currency)


async def verify_arqc(hsm: Hsm, keys: KeySet, cvn: int, pan: str, psn: str, request: ArqcRequest) -> bool:
    """Thales KQ/KW mode 0 on the card's ARQC."""
    try:
        return await hsm.verify_arqc(keys.imk_ac, cvn, pan, psn, request.atc, request.data, request.arqc,
                                     unpredictable_number=request.unpredictable_number)
    except HsmError as exc:
        if exc.code == "01" and not _unavailable(exc):
            return False
        raise HsmUnavailable(f"ARQC verification: HSM error {exc.code}") from None
    except OSError:
        raise HsmUnavailable("ARQC verification: HSM connection failed") from None


def _csu(approved: bool) -> str:
    """Visa card status update for ARPC method 2: byte 2 bit 8 = "issuer approves online transaction"."""
    return "00800000" if approved else "00000000"


async def arpc_field(
    hsm: Hsm, keys: KeySet, cvn: int, pan: str, psn: str, request: ArqcRequest, response_code: str,
) -> bytes:
    """DE 55 of the response: tag 91 (issuer authentication data).

    Method 1 (CVN 10/16/17): ARPC 8 bytes || ARC (the response code in ASCII, EMV Book 2 §8.2.1).
    Method 2 (CVN 18): ARPC 4 bytes || CSU 4 bytes (§8.2.2)."""
    approved = response_code == "00"
    try:
        if cvn == 18:
            csu = _csu(approved)
            arpc = await hsm.generate_arpc(keys.imk_ac, cvn, pan, psn, request.atc, request.arqc, csu=csu,
                                           unpredictable_number=request.unpredictable_number)
            value = bytes.fromhex(arpc + csu)
        else:
            arc = response_code.encode("ascii").hex().upper()
            arpc = await hsm.generate_arpc(keys.imk_ac, cvn, pan, psn, request.atc, request.arqc, arc=arc,
                                           unpredictable_number=request.unpredictable_number)
            value = bytes.fromhex(arpc + arc)
    except (HsmError, OSError) as exc:
        raise HsmUnavailable(f"ARPC generation: {type(exc).__name__}") from None
    return emvtlv.build([("91", value)])


def _unavailable(exc: HsmError) -> bool:
    """The Thales backend's "no answer" errors (connection dropped, timeout)."""
    return isinstance(exc, HsmUnavailableError)
