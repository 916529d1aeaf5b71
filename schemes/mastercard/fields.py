"""The structure inside Mastercard's private fields: DE 48 (TCC and sub-elements), DE 61 (POS data), DE 63 (network
data), DE 95 (replacement amounts), DE 112 (national use), and how logs show them.

In the canonical message these fields are text, exactly as their EBCDIC bytes decode: what is parsed here is read
out of that text and built back into it, and a field that is not changed goes back byte for byte (an unknown
sub-element is kept where it was). Layouts (reference section 6.2):

- DE 48: position 1 the transaction category code (TCC) in requests, advices and reversals and their answers (MTI
  classes 1, 2, 4), then sub-elements: 2-digit tag, 2-digit length (characters), value (rtgparser ``48.0 TCC, 48.1
  TLV2EBCDIC``; jPOS ``IFEPE_LLCHAR`` "TTLL... for MasterCard subfield 48"; a decoded public sample:
  ``P420701032107703C07``). Network management (08xx) carries sub-elements without a TCC (this project's reading:
  a key exchange's key sub-element; unconfirmed). Secret sub-elements (:data:`SECRET_SUBELEMENTS`) are hidden in
  logs and the journal and never echoed in a response.
- DE 61: positional, 26 characters at most (rtgparser): attendance, reserved, location, cardholder presence, card
  presence, card capture capability, status, security, reserved, CAT level, card data input capability,
  authorization life cycle (2), country (3), postal code (up to 10).
- DE 63: the financial network code (3) and the Banknet reference number (6) the Authorization Platform assigns,
  then what else the network put there (danil: "The receiver must retain the data element and use it in any
  response or acknowledgement message"). The Banknet reference and DE 15 identify the transaction in clearing.
- DE 95: actual transaction amount (12), actual settlement amount (12), actual cardholder billing amount (12), six
  zeros (rtgparser); a partial reversal carries what was actually dispensed or sold.
- DE 112: sub-elements of a 3-digit tag and a 3-digit length (this project's reading of "additional data, national
  use"; carried as text whether or not it parses).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from switch.model.errors import FieldError
from switch.model.message import Message

# DE 48 sub-elements never shown and never echoed: 10 encrypted PIN block key (danil's field comment), 11 key
# exchange block data (where this project's key exchange puts the new key), 43 the cardholder authentication value
# (UCAF / AAV, a cryptogram), 92 the CVC 2 value (jPOS europay.xml PDS92).
SECRET_SUBELEMENTS = frozenset({"10", "11", "43", "92"})
TCC_CLASSES = "124"  # MTI classes whose DE 48 starts with a transaction category code
# TCCs public samples show, and the one a request that came without DE 48 gets: R retail, T phone/mail/e-commerce
# (danil's samples), Z ATM cash (reference section 8.2: MCC 6011 is an ATM).
RETAIL_TCC, ATM_TCC = "R", "Z"
ATM_MCC = "6011"


@dataclass(frozen=True)
class AdditionalData:
    """DE 48: the TCC (empty for network management) and the sub-elements in wire order (tag, value)."""

    tcc: str = ""
    subelements: tuple[tuple[str, str], ...] = ()

    def get(self, tag: str) -> str | None:
        for found, value in self.subelements:
            if found == tag:
                return value
        return None

    def with_subelement(self, tag: str, value: str) -> AdditionalData:
        """This DE 48 with ``tag`` set to ``value`` (replaced where it was, else appended)."""
        if any(found == tag for found, _ in self.subelements):
            return AdditionalData(self.tcc, tuple((t, value if t == tag else v) for t, v in self.subelements))
        return AdditionalData(self.tcc, (*self.subelements, (tag, value)))

    def without(self, tags: Iterable[str]) -> AdditionalData:
        drop = frozenset(tags)
        return AdditionalData(self.tcc, tuple((t, v) for t, v in self.subelements if t not in drop))

    def __str__(self) -> str:
        return build_de48(self)

    def __repr__(self) -> str:  # never a secret sub-element's value
        tags = ",".join(t for t, _ in self.subelements)
        return f"AdditionalData(tcc={self.tcc!r}, subelements=[{tags}])"


def parse_de48(text: str, *, tcc: bool = True) -> AdditionalData:
    """DE 48 as text; ``tcc``: its first character is the TCC. :class:`FieldError` (the peer's) when a length does
    not fit; the error names the tag, never a value."""
    pos = 0
    category = ""
    if tcc:
        if not text:
            raise FieldError(48, "empty (the TCC is missing)")
        category, pos = text[0], 1
        if not (category.isascii() and (category.isalnum() or category == " ")):
            raise FieldError(48, "the TCC is not a letter or digit")
    items: list[tuple[str, str]] = []
    while pos < len(text):
        head = text[pos:pos + 4]
        if len(head) < 4 or not (head.isascii() and head.isdigit()):
            raise FieldError(48, f"sub-element header at position {pos + 1} is not 4 digits (tag, length)")
        tag, length = head[:2], int(head[2:])
        end = pos + 4 + length
        if end > len(text):
            raise FieldError(48, f"sub-element {tag} runs past the end of the field")
        items.append((tag, text[pos + 4:end]))
        pos = end
    return AdditionalData(category, tuple(items))


def build_de48(data: AdditionalData) -> str:
    """The text of ``data`` (TCC, then each sub-element with its 2-digit tag and length)."""
    parts = [data.tcc]
    for tag, value in data.subelements:
        if len(tag) != 2 or not tag.isdigit():
            raise ValueError("a DE 48 sub-element tag is 2 digits")
        if len(value) > 99:
            raise ValueError(f"DE 48 sub-element {tag} is longer than 99 characters")
        parts.append(f"{tag}{len(value):02d}{value}")
    return "".join(parts)


def message_de48(msg: Message) -> AdditionalData | None:
    """DE 48 of ``msg`` read by its MTI class (TCC or not); None when absent."""
    value = msg.get(48)
    if not isinstance(value, str):
        return None
    return parse_de48(value, tcc=msg.mti[1:2] in TCC_CLASSES)


def mask_de48(value: str | bytes) -> str:
    """DE 48 for a log line or the journal: every sub-element shown but the secret ones (``92=<3 hidden>``). A value
    that does not parse (read with or without a TCC) is hidden whole by the masking."""
    if not isinstance(value, str):
        raise TypeError("DE 48 is text")
    try:
        data = parse_de48(value)
    except FieldError:
        data = parse_de48(value, tcc=False)
    shown = [f"tcc={data.tcc}"] if data.tcc else []
    shown += [f"{tag}=<{len(v)} hidden>" if tag in SECRET_SUBELEMENTS else f"{tag}={v}" for tag, v in data.subelements]
    return " ".join(shown)


def echo_de48(text: str, mti: str) -> str | None:
    """What a response echoes of a request's DE 48: everything but the secret sub-elements, unknown ones unchanged
    and in place (None when it does not parse: nothing is echoed then)."""
    try:
        data = parse_de48(text, tcc=mti[1:2] in TCC_CLASSES)
    except FieldError:
        return None
    return build_de48(data.without(SECRET_SUBELEMENTS))


# -- DE 61 --------------------------------------------------------------------------------------------------------
DE61: tuple[tuple[str, int], ...] = (
    ("terminal attendance", 1), ("reserved", 1), ("terminal location", 1), ("cardholder presence", 1),
    ("card presence", 1), ("card capture capability", 1), ("transaction status", 1), ("transaction security", 1),
    ("reserved", 1), ("cardholder-activated terminal level", 1), ("card data terminal input capability", 1),
    ("authorization life cycle", 2), ("country code", 3), ("postal code", 10),
)
DE61_FIXED = 14  # 61.1-61.13: 61.14 (postal code) is optional and up to 10 characters


@dataclass(frozen=True)
class PosData:
    """DE 61 by subfield (1-based, as the tables number them); ``postal_code`` may be empty."""

    values: tuple[str, ...]

    def sub(self, number: int) -> str:
        return self.values[number - 1]

    @property
    def country(self) -> str:
        return self.sub(13)

    def __str__(self) -> str:
        return "".join(self.values)


def parse_de61(text: str) -> PosData:
    if not DE61_FIXED <= len(text) <= 26:
        raise FieldError(61, f"{len(text)} characters, POS data is {DE61_FIXED} to 26")
    values: list[str] = []
    pos = 0
    for _, width in DE61:
        values.append(text[pos:pos + width])
        pos += width
    return PosData(tuple(values))


def pos_data(*, attended: bool = True, on_premises: bool = True, cardholder_present: bool = True,
             card_present: bool = True, cat_level: str = "0", input_capability: str = "2",
             country: str = "840", postal_code: str = "") -> str:
    """DE 61 text built from the conditions a POS or ATM transaction has (61.1 0 attended / 1 unattended; 61.3 0 on
    the premises / 1 off; 61.4 0 cardholder present / 1 not; 61.5 0 card present / 1 not; 61.6 0 no capture; 61.7 0
    normal request; 61.8 0 no security concern; 61.10 CAT level; 61.11 input capability; 61.12 00)."""
    if len(country) != 3 or not country.isdigit():
        raise ValueError("DE 61.13 is a 3-digit country code")
    flags = ("0" if attended else "1") + "0" + ("0" if on_premises else "1") + \
        ("0" if cardholder_present else "1") + ("0" if card_present else "1") + "000" + "0"
    return flags + cat_level + input_capability + "00" + country + postal_code


# -- DE 63 --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkData:
    """DE 63: the financial network code (63.1), the Banknet reference number (63.2) and anything after them."""

    network_code: str
    banknet_reference: str
    rest: str = ""

    def __str__(self) -> str:
        return self.network_code + self.banknet_reference + self.rest


def parse_de63(text: str) -> NetworkData:
    if len(text) < 9:
        raise FieldError(63, f"{len(text)} characters: network code (3) and Banknet reference (6) are 9")
    return NetworkData(text[:3], text[3:9], text[9:])


def banknet_reference(msg: Message) -> str | None:
    """The Banknet reference number of ``msg`` (DE 63.2), for settlement; None without a readable DE 63."""
    value = msg.get(63)
    if not isinstance(value, str):
        return None
    try:
        return parse_de63(value).banknet_reference
    except FieldError:
        return None


# -- DE 95 --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplacementAmounts:
    """DE 95: what a partial reversal leaves in place, in the three currencies of the original."""

    transaction: str
    settlement: str = "0" * 12
    cardholder_billing: str = "0" * 12

    def __str__(self) -> str:
        return self.transaction + self.settlement + self.cardholder_billing + "0" * 6


def parse_de95(text: str) -> ReplacementAmounts:
    if len(text) != 42 or not (text.isascii() and text.isdigit()):
        raise FieldError(95, "expected 42 digits (3 amounts of 12 and 6 zeros)")
    return ReplacementAmounts(text[:12], text[12:24], text[24:36])


def de95_from_canonical(text: str) -> str:
    """The canonical DE 95 in Mastercard's layout. Its first 24 digits (actual transaction and settlement amounts)
    are the same in both; ISO 8583:1987 hosts put two fee amounts (sign and 8 digits each) where Mastercard has the
    cardholder billing amount and zeros: those become zeros (Mastercard's reversal carries no fee)."""
    if len(text) != 42:
        raise ValueError("DE 95 is 42 characters")
    if text.isascii() and text.isdigit():
        return text
    head = text[:24]
    if not (head.isascii() and head.isdigit()):
        raise ValueError("DE 95's actual amounts are not digits")
    return head + "0" * 18


# -- DE 112 -------------------------------------------------------------------------------------------------------
def parse_de112(text: str) -> tuple[tuple[str, str], ...]:
    """DE 112's sub-elements: 3-digit tag, 3-digit length, value."""
    items: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        head = text[pos:pos + 6]
        if len(head) < 6 or not (head.isascii() and head.isdigit()):
            raise FieldError(112, f"sub-element header at position {pos + 1} is not 6 digits (tag, length)")
        end = pos + 6 + int(head[3:])
        if end > len(text):
            raise FieldError(112, f"sub-element {head[:3]} runs past the end of the field")
        items.append((head[:3], text[pos + 6:end]))
        pos = end
    return tuple(items)
