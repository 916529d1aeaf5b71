"""Masking of card data for logs, exceptions, journal rows and CLI output.

PCI DSS allows at most the first six and last four digits of a PAN to be shown. Track data, PIN blocks,
CVVs, EMV cryptograms and keys are never shown at all: only their length.
"""

from __future__ import annotations

import hashlib
import hmac

# Fields that are never shown, only their length (ISO 8583:1987 numbering). 126/127 are private fields where
# schemes carry CVV2 and similar (Visa 126.10); 48 stays readable until each scheme adapter says
# which of its subelements are secret (Mastercard DE 48 may carry CVC2).
SECRET_FIELDS = frozenset({14, 35, 36, 45, 52, 53, 55, 64, 96, 125, 126, 127, 128})
# Fields that contain a PAN (2) or may embed one (34 extended PAN, 102/103 account ids).
PAN_FIELDS = frozenset({2, 34, 102, 103})
# Text values mask_field changes; every other text value is shown as it is.
MASKED_TEXT_FIELDS = SECRET_FIELDS | PAN_FIELDS


def mask_pan(pan: str) -> str:
    """First six and last four digits; everything between as '*'. Short values, and values that are not all
    digits (a malformed field 2 may carry anything), are fully hidden."""
    if len(pan) < 13 or not pan.isdigit():
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def pan_hash(pan: str, key: bytes) -> str:
    """Keyed hash of a PAN (HMAC-SHA256, hex) so that a card can be found without storing the number."""
    return hmac.new(key, pan.encode("ascii"), hashlib.sha256).hexdigest()


class PanHasher:
    """:func:`pan_hash` under one key, with the keyed HMAC state prepared once (RFC 2104: the inner and outer
    key pads are hashed once, then copied per PAN instead of recomputed: about a third cheaper per call)."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "<PanHasher (key hidden)>"

    def __call__(self, pan: str) -> str:
        mac = self._base.copy()
        mac.update(pan.encode("ascii"))
        return mac.hexdigest()


def mask_field(number: int, value: str | bytes) -> str:
    """The form of a field value that may appear in a log line, a journal row or CLI output."""
    if number in SECRET_FIELDS:
        return f"<{len(value)} {'bytes' if isinstance(value, bytes) else 'chars'} hidden>"
    if number in PAN_FIELDS and isinstance(value, str):
        return mask_pan(value)
    if isinstance(value, bytes):
        return value.hex().upper()
    return value
