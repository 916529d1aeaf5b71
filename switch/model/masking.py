"""Masking of card data for logs, exceptions, journal rows and CLI output.

PCI DSS allows at most the first six and last four digits of a PAN to be shown. Track data, PIN blocks,
CVVs, EMV cryptograms and keys are never shown at all: only their length.

Which fields (and which parts of a field) are secret depends on the network: a :class:`Masking` is the network's
declaration (switch.contracts.network), carried by every message it decoded (``MessageMeta.masking``), so logs
and the journal follow the network without the core knowing its private fields. :data:`DEFAULT_MASKING` holds
for messages no network declared anything for.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

# Fields that are never shown, only their length (ISO 8583:1987 numbering). 126/127 are private fields where
# networks carry CVV2 and similar (Visa 126.10); 48 stays readable unless a network's Masking says which of its
# sub-elements are secret (Mastercard DE 48 may carry CVC2).
SECRET_FIELDS = frozenset({14, 35, 36, 45, 52, 53, 55, 64, 96, 125, 126, 127, 128})
# Fields that contain a PAN (2) or may embed one (34 extended PAN, 102/103 account ids).
PAN_FIELDS = frozenset({2, 34, 102, 103})

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


# A field whose value is partly secret: the network's function shows the rest (sub-elements, tags) and hides the
# secret parts, never failing on a malformed value (it hides the whole value then).
SubfieldMask = Callable[[str | bytes], str]


class Masking:
    """What one network declares secret: whole fields (shown as their length), PAN fields (first 6 / last 4),
    and fields masked part by part (``subfields``). Immutable and shared by every message of the network."""

    __slots__ = ("masked_text", "pan_fields", "secret_fields", "subfields")

    def __init__(self, secret_fields: frozenset[int] = SECRET_FIELDS, pan_fields: frozenset[int] = PAN_FIELDS,
                 subfields: Mapping[int, SubfieldMask] | None = None) -> None:
        self.secret_fields = secret_fields
        self.pan_fields = pan_fields
        self.subfields: Mapping[int, SubfieldMask] = dict(subfields or {})
        # Text values this masking changes; every other text value is shown as it is (the fast path).
        self.masked_text = secret_fields | pan_fields | frozenset(self.subfields)

    def __repr__(self) -> str:
        return (f"Masking(secret={sorted(self.secret_fields)}, pan={sorted(self.pan_fields)}, "
                f"subfields={sorted(self.subfields)})")

    def with_secret(self, fields: frozenset[int] = frozenset(), subfields: Mapping[int, SubfieldMask] | None = None,
                    ) -> Masking:
        """This masking with more secret fields and sub-field maskers (a network's additions to the default)."""
        return Masking(self.secret_fields | fields, self.pan_fields, {**self.subfields, **(subfields or {})})

    def field(self, number: int, value: str | bytes) -> str:
        """The form of a field value that may appear in a log line, a journal row or CLI output."""
        if number in self.secret_fields:
            return f"<{len(value)} {'bytes' if isinstance(value, bytes) else 'chars'} hidden>"
        sub = self.subfields.get(number)
        if sub is not None:
            try:
                return sub(value)
            except Exception:  # a malformed value: hide it whole rather than show what the parser did not see
                return f"<{len(value)} {'bytes' if isinstance(value, bytes) else 'chars'} hidden>"
        if number in self.pan_fields and isinstance(value, str):
            return mask_pan(value)
        if isinstance(value, bytes):
            return value.hex().upper()
        return value


DEFAULT_MASKING = Masking()
