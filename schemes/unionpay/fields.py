"""UnionPay private fields: their wire bytes and canonical text, their structure, and what of them is secret.

Wire <-> canonical (used by :class:`schemes.unionpay.network.UnionPayNetwork` for every message):

- DE 48, additional data: a 2-character usage tag, then the usage's content. Usage ``NK`` (new key) carries the key
  as binary bytes: canonical ``"NK"`` + the bytes in upper-case hex. Every other usage is GBK text (reference
  section 7.2: usages ``AA``, ``AO``, ``AS``, ``BC``, ``CB``, ``IN``, ``IP``, ``NK``, ``ON``, ``PB``, ``PZ``,
  ``RA``, ``RP``). Usage ``AS`` holds sub-elements of 2-character tag, 3-digit byte length and value (public sample:
  ``ASON040`` + a 40-character order number).
- DE 63, financial network data: entries of 2-character usage, 3-digit byte length and value (alatka ``ULV``).
  Usage ``SM`` (a PIN block encrypted under SM4: public samples) is binary: canonical usage + length + the bytes in
  hex, the length still counting bytes. Other usages are GBK text.

Both forms are exact: the canonical text goes back to the same bytes, and it is ASCII or GBK text, so the message
can cross to a network that carries the field as text. Anything that does not follow the layout is a
:class:`ValueError` the network turns into a typed decode or encode error.

Structures (for processors, settlement and tests): DE 48 (:func:`parse_additional_data`), DE 53
(:class:`SecurityControl`), DE 54 balances (:func:`parse_balances`), DE 90 (:class:`OriginalData`).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from switch.model.errors import FieldError

GBK = "gbk"
NEW_KEY = "NK"  # DE 48 usage: a new working key (key reset)
SERVICE = "AS"  # DE 48 usage with tag-length-value sub-elements
SM4_PIN = "SM"  # DE 63 usage: the PIN block encrypted under SM4
BINARY_48_USAGES = frozenset({NEW_KEY})
BINARY_63_USAGES = frozenset({SM4_PIN})


# -- DE 48 -----------------------------------------------------------------------------------------------------
def de48_from_wire(raw: bytes) -> str:
    """Canonical text of a DE 48 (ValueError when a text usage is not GBK)."""
    usage = raw[:2]
    if usage == b"NK":
        return NEW_KEY + raw[2:].hex().upper()
    return raw.decode(GBK)


def de48_to_wire(text: str) -> bytes:
    """The wire bytes of a canonical DE 48 (ValueError when it cannot be carried)."""
    if text[:2] == NEW_KEY:
        return b"NK" + _unhex(text[2:])
    return text.encode(GBK)


@dataclass(frozen=True, slots=True)
class AdditionalData:
    """DE 48 read by its usage: ``content`` is what follows the tag (hex for ``NK``); ``elements`` the ``AS``
    sub-elements as (tag, value) in order, ``()`` for other usages."""

    usage: str
    content: str
    elements: tuple[tuple[str, str], ...] = ()

    @property
    def key_bytes(self) -> bytes:
        """The bytes an ``NK`` usage carries."""
        if self.usage != NEW_KEY:
            raise ValueError(f"usage {self.usage} carries no key")
        return _unhex(self.content)


def parse_additional_data(text: str) -> AdditionalData:
    """DE 48 as :class:`AdditionalData`; :class:`FieldError` when it breaks its usage's layout."""
    if len(text) < 2:
        raise FieldError(48, "shorter than its usage tag")
    usage, content = text[:2], text[2:]
    if usage == SERVICE:
        try:
            elements = tuple(_tlv(content.encode(GBK), 2))
        except ValueError as exc:
            raise FieldError(48, f"usage {usage}: {exc}") from None
        return AdditionalData(usage, content, elements)
    if usage == NEW_KEY:
        try:
            _unhex(content)
        except ValueError:
            raise FieldError(48, "usage NK: the key is not hex") from None
    return AdditionalData(usage, content)


def build_additional_data(usage: str, content: str = "", elements: tuple[tuple[str, str], ...] = ()) -> str:
    """A canonical DE 48: ``usage`` + ``content``, or for ``AS`` + its sub-elements (byte lengths in GBK)."""
    if len(usage) != 2 or not usage.isascii():
        raise ValueError("a usage tag is 2 ASCII characters")
    if usage == SERVICE:
        content = "".join(_element(tag, value) for tag, value in elements)
    return usage + content


# -- DE 63 -----------------------------------------------------------------------------------------------------
def de63_from_wire(raw: bytes) -> str:
    """Canonical text of a DE 63 (ValueError when it is not usage-length-value entries)."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        usage, length = raw[i:i + 2], raw[i + 2:i + 5]
        if len(usage) != 2 or not usage.isascii() or len(length) != 3 or not length.isdigit():
            raise ValueError(f"no usage and length at byte {i}")
        n = int(length)
        value = raw[i + 5:i + 5 + n]
        if len(value) != n:
            raise ValueError(f"usage at byte {i} announces {n} bytes, {len(value)} follow")
        tag = usage.decode("ascii")
        out.append(tag + length.decode("ascii") + (value.hex().upper() if tag in BINARY_63_USAGES
                                                     else value.decode(GBK)))
        i += 5 + n
    return "".join(out)


def de63_to_wire(text: str) -> bytes:
    """The wire bytes of a canonical DE 63 (ValueError when it is not usage-length-value entries)."""
    out: list[bytes] = []
    i = 0
    while i < len(text):
        tag, length = text[i:i + 2], text[i + 2:i + 5]
        if len(tag) != 2 or not tag.isascii() or len(length) != 3 or not (length.isascii() and length.isdigit()):
            raise ValueError(f"no usage and length at character {i}")
        n, i = int(length), i + 5
        if tag in BINARY_63_USAGES:
            value = _unhex(text[i:i + 2 * n])
            i += 2 * n
        else:
            value, i = _gbk_bytes(text, i, n)
        if len(value) != n:
            raise ValueError(f"usage {tag} announces {n} bytes, {len(value)} follow")
        out.append(tag.encode("ascii") + length.encode("ascii") + value)
    return b"".join(out)


# -- DE 53, 54, 90 ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SecurityControl:
    """DE 53 (n16): key type or PIN format (1: PIN key, 2: MAC key in a key reset), encryption method (0: single
    length DES, 6: double length: com.easy.iso8583's key reset handling), 14 reserved digits."""

    key_type: str
    method: str
    reserved: str = "0" * 14

    @classmethod
    def parse(cls, text: str) -> SecurityControl:
        if len(text) != 16 or not (text.isascii() and text.isdigit()):
            raise FieldError(53, "expected 16 digits")
        return cls(text[0], text[1], text[2:])

    def __str__(self) -> str:
        return self.key_type + self.method + self.reserved


@dataclass(frozen=True, slots=True)
class Balance:
    """One DE 54 balance: account type (2), amount type (2: 01 ledger, 02 available), currency (3), sign (C/D),
    amount in minor units (12 digits)."""

    account_type: str
    amount_type: str
    currency: str
    sign: str
    amount: int

    @property
    def signed(self) -> int:
        return -self.amount if self.sign == "D" else self.amount

    def __str__(self) -> str:
        return f"{self.account_type}{self.amount_type}{self.currency}{self.sign}{self.amount:012d}"


BALANCE_LEN = 20


def parse_balances(text: str) -> tuple[Balance, ...]:
    """DE 54 as its balances; :class:`FieldError` on anything but whole, well-formed 20-character entries."""
    if not text or len(text) % BALANCE_LEN:
        raise FieldError(54, f"expected entries of {BALANCE_LEN} characters")
    out = []
    for at in range(0, len(text), BALANCE_LEN):
        entry = text[at:at + BALANCE_LEN]
        digits = entry[:7] + entry[8:]
        if not (digits.isascii() and digits.isdigit()) or entry[7] not in "CD":
            raise FieldError(54, f"balance {at // BALANCE_LEN + 1} is not 2+2+3 digits, C or D, 12 digits")
        out.append(Balance(entry[:2], entry[2:4], entry[4:7], entry[7], int(entry[8:])))
    return tuple(out)


def build_balances(balances: tuple[Balance, ...] | list[Balance]) -> str:
    for b in balances:
        if b.sign not in ("C", "D") or not 0 <= b.amount < 10**12 or not all(
                len(v) == n and v.isdigit() for v, n in ((b.account_type, 2), (b.amount_type, 2), (b.currency, 3))):
            raise ValueError(f"balance {b} cannot be carried in DE 54")
    return "".join(str(b) for b in balances)


@dataclass(frozen=True, slots=True)
class OriginalData:
    """DE 90 (n42): the original's MTI, STAN, transmission date and time (DE 7), acquiring and forwarding
    institution ids (DE 32, 33) right-justified with leading zeros to 11 digits (reference section 10.4)."""

    mti: str
    stan: str
    transmitted: str
    acquirer: str
    forwarder: str

    @classmethod
    def parse(cls, text: str) -> OriginalData:
        if len(text) != 42 or not (text.isascii() and text.isdigit()):
            raise FieldError(90, "expected 42 digits")
        return cls(text[:4], text[4:10], text[10:20], text[20:31], text[31:42])

    @classmethod
    def of(cls, mti: str, stan: str, transmitted: str, acquirer: str, forwarder: str) -> OriginalData:
        """From the original's fields, the institution ids padded to 11 digits."""
        return cls(mti, stan, transmitted, acquirer.rjust(11, "0"), forwarder.rjust(11, "0"))

    def __str__(self) -> str:
        text = self.mti + self.stan + self.transmitted + self.acquirer + self.forwarder
        if len(text) != 42 or not text.isdigit():
            raise ValueError("DE 90 is 4 + 6 + 10 + 11 + 11 digits")
        return text


# -- masking ---------------------------------------------------------------------------------------------------
def mask_de48(value: str | bytes) -> str:
    """DE 48 for logs: a new key hidden, ``AS`` sub-elements tag by tag, other usages as they are."""
    if not isinstance(value, str):
        raise TypeError("DE 48 is text")
    data = parse_additional_data(value)
    if data.usage == NEW_KEY:
        return f"NK <{len(data.key_bytes)} bytes hidden>"
    if data.elements:
        return "AS " + " ".join(f"{tag}={val}" for tag, val in data.elements)
    return value


def mask_de61(value: str | bytes) -> str:
    """DE 61 for logs: the identity document number (61.2, characters 3-22) and the card-not-present check value
    (CVN2, 61.6, characters 28-30: alatka ``F61``) hidden, the rest as it is."""
    if not isinstance(value, str):
        raise TypeError("DE 61 is text")
    return value[:2] + "*" * len(value[2:22]) + value[22:27] + "*" * len(value[27:30]) + value[30:]


def mask_de63(value: str | bytes) -> str:
    """DE 63 for logs: entry by entry, an SM4 PIN block hidden."""
    if not isinstance(value, str):
        raise TypeError("DE 63 is text")
    raw = de63_to_wire(value)
    parts: list[str] = []
    i = 0
    while i < len(raw):
        tag, n = raw[i:i + 2].decode("ascii"), int(raw[i + 2:i + 5])
        data = raw[i + 5:i + 5 + n]
        parts.append(f"{tag}=<{n} bytes hidden>" if tag in BINARY_63_USAGES else f"{tag}={data.decode(GBK)}")
        i += 5 + n
    return " ".join(parts)


# -- helpers ---------------------------------------------------------------------------------------------------
def _unhex(text: str) -> bytes:
    try:
        return binascii.a2b_hex(text)  # unlike bytes.fromhex, refuses spaces: the text is exact or wrong
    except (binascii.Error, ValueError):
        raise ValueError("not an even number of hex digits") from None


def _gbk_bytes(text: str, start: int, n: int) -> tuple[bytes, int]:
    """The characters of ``text`` from ``start`` whose GBK encoding is ``n`` bytes, and where they end."""
    out = bytearray()
    i = start
    while len(out) < n and i < len(text):
        out += text[i].encode(GBK)
        i += 1
    return bytes(out), i


def _tlv(raw: bytes, tag_len: int) -> list[tuple[str, str]]:
    """Sub-elements of ``tag_len``-character tag, 3-digit byte length and GBK value."""
    out = []
    i = 0
    while i < len(raw):
        tag, length = raw[i:i + tag_len], raw[i + tag_len:i + tag_len + 3]
        if len(tag) != tag_len or not tag.isascii() or len(length) != 3 or not length.isdigit():
            raise ValueError(f"no tag and length at byte {i}")
        n = int(length)
        start = i + tag_len + 3
        value = raw[start:start + n]
        if len(value) != n:
            raise ValueError(f"tag {tag.decode('ascii')} announces {n} bytes, {len(value)} follow")
        out.append((tag.decode("ascii"), value.decode(GBK)))
        i = start + n
    return out


def _element(tag: str, value: str) -> str:
    size = len(value.encode(GBK))
    if len(tag) != 2 or not tag.isascii() or size > 999:
        raise ValueError(f"sub-element {tag!r} cannot be carried")
    return f"{tag}{size:03d}{value}"
