"""The UnionPay (CUPS) 46-byte message header, field by field (reference section 7.1).

====== ===== =====================================================================================
offset bytes field
====== ===== =====================================================================================
0      1     F1 header length, binary 46 (0x2E); anything else is rejected with 00015
1      1     F2 flag and version: bit 0x80 = test message, low 7 bits = version (2 in every public sample)
2      4     F3 total message length, 4 ASCII digits = 46 + body length (00035 when out of range)
6      11    F4 destination id, ASCII, right space-padded (00045)
17     11    F5 source id, ASCII, right space-padded (00055)
28     3     F6 reserved (zero bytes from members; a public sample carries ``AA9``: kept as received)
31     1     F7 batch number, binary
32     8     F8 transaction information, ASCII (meaning unconfirmed: kept as received, never checked)
40     1     F9 user information, binary
41     5     F10 reject code, 5 ASCII digits; members always send ``00000``
====== ===== =====================================================================================

Sources: com.nasoft ``CUPSHeader``, ``com.easy.iso8583.MsgHead`` (reject codes, "members cannot generate but may
receive the reject code field with non-all-zero"), alatka-messages ``cups.common.iso.xml`` and the public header
samples in ``tests/schemes/unionpay/vectors.py``. A reply swaps F4 and F5; a reject sends the message back under
its header with F10 set. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from switch.model.errors import FramingError

HEADER_LEN = 46
ID_LEN = 11
TEST_FLAG = 0x80
VERSION = 2  # version 2 in the low 7 bits: every public sample (0x02 production, 0x82 test)
NO_REJECT = "00000"
MAX_TOTAL = 9999  # F3 is four digits

# Reject codes a CUPS switch sends back in F10 (com.easy.iso8583 MsgHead), by what they reject.
REJECT_HEADER_LENGTH = "00015"
REJECT_VERSION = "00025"
REJECT_MESSAGE_LENGTH = "00035"
REJECT_DESTINATION = "00045"
REJECT_SOURCE = "00055"
REJECT_REASONS: dict[str, str] = {
    REJECT_HEADER_LENGTH: "header length is not 46",
    REJECT_VERSION: "header version",
    REJECT_MESSAGE_LENGTH: "message length",
    REJECT_DESTINATION: "destination id",
    REJECT_SOURCE: "source id",
}


class HeaderError(FramingError):
    """A CUPS header that breaks its layout. ``reject_code`` is the F10 code a CUPS switch answers it with
    ("" where public sources name none); the text never carries message data."""

    def __init__(self, reason: str, reject_code: str = "") -> None:
        self.reason = reason
        self.reject_code = reject_code
        super().__init__(f"CUPS header: {reason}" + (f" (reject code {reject_code})" if reject_code else ""))


def describe_reject(code: str) -> str:
    """A reject code with what it means where public sources say (``00045 destination id``)."""
    reason = REJECT_REASONS.get(code)
    return f"{code} {reason}" if reason else code


def pad_id(value: str) -> str:
    """An institution id as the 11-character, right space-padded field (ValueError when it cannot be one)."""
    if len(value) > ID_LEN or not value.isascii() or not value.isprintable():
        raise ValueError(f"a CUPS institution id is at most {ID_LEN} printable ASCII characters")
    return value.ljust(ID_LEN)


def _digits(raw: bytes, what: str, code: str) -> str:
    if not (raw.isascii() and raw.isdigit()):
        raise HeaderError(f"{what} is not {len(raw)} ASCII digits", code)
    return raw.decode("ascii")


def _ident(raw: bytes, what: str, code: str) -> str:
    text = raw.decode("ascii", "replace")
    if not raw.isascii() or not text.isprintable():
        raise HeaderError(f"{what} is not printable ASCII", code)
    return text


@dataclass(frozen=True, slots=True)
class CupsHeader:
    """One header. ``destination`` and ``source`` are the 11-character fields as on the wire (padding kept, so
    a parsed header is rebuilt byte for byte); :attr:`destination_id` and :attr:`source_id` drop the padding."""

    destination: str
    source: str
    total_length: int = HEADER_LEN
    version: int = VERSION
    test: bool = False
    reserved: bytes = bytes(3)
    batch: int = 0
    transaction_info: bytes = b"00000000"
    user_info: int = 0
    reject_code: str = NO_REJECT

    def __post_init__(self) -> None:
        # Refuse what cannot go on the wire at construction: a header built wrong is our bug, not the peer's.
        for name, value in (("destination", self.destination), ("source", self.source)):
            if len(value) != ID_LEN or not value.isascii() or not value.isprintable():
                raise ValueError(f"{name} must be {ID_LEN} printable ASCII characters")
        if not HEADER_LEN <= self.total_length <= MAX_TOTAL:  # 46 alone: not yet set (to_bytes sets it)
            raise ValueError(f"total length must be {HEADER_LEN} to {MAX_TOTAL}")
        if not 0 <= self.version < TEST_FLAG:
            raise ValueError("version must be 0 to 127")
        if len(self.reserved) != 3 or not 0 <= self.batch <= 255 or not 0 <= self.user_info <= 255:
            raise ValueError("reserved is 3 bytes, batch and user information one byte each")
        if len(self.transaction_info) != 8:
            raise ValueError("transaction information is 8 bytes")
        if len(self.reject_code) != 5 or not self.reject_code.isdigit():
            raise ValueError("reject code must be 5 digits")

    @property
    def destination_id(self) -> str:
        return self.destination.rstrip(" ")

    @property
    def source_id(self) -> str:
        return self.source.rstrip(" ")

    @property
    def rejected(self) -> bool:
        return self.reject_code != NO_REJECT

    @classmethod
    def originated(cls, destination_id: str, source_id: str, *, test: bool = False, batch: int = 0,
                   transaction_info: bytes = b"00000000", user_info: int = 0) -> CupsHeader:
        """The header of a message we originate (ids padded; the total length is set by :meth:`to_bytes`)."""
        return cls(pad_id(destination_id), pad_id(source_id), test=test, batch=batch,
                   transaction_info=transaction_info, user_info=user_info)

    @classmethod
    def parse(cls, data: bytes) -> CupsHeader:
        """The header at the start of ``data``; :class:`HeaderError` (with the CUPS reject code) when malformed."""
        if len(data) < HEADER_LEN:
            raise HeaderError(f"{len(data)} bytes, a header is {HEADER_LEN}", REJECT_HEADER_LENGTH)
        if data[0] != HEADER_LEN:
            raise HeaderError(f"length byte is {data[0]}, not {HEADER_LEN}", REJECT_HEADER_LENGTH)
        total = int(_digits(data[2:6], "total length", REJECT_MESSAGE_LENGTH))
        if total <= HEADER_LEN:
            raise HeaderError(f"total length {total} leaves no room for a message", REJECT_MESSAGE_LENGTH)
        return cls(
            destination=_ident(data[6:17], "destination id", REJECT_DESTINATION),
            source=_ident(data[17:28], "source id", REJECT_SOURCE),
            total_length=total,
            version=data[1] & 0x7F,
            test=bool(data[1] & TEST_FLAG),
            reserved=bytes(data[28:31]),
            batch=data[31],
            transaction_info=bytes(data[32:40]),
            user_info=data[40],
            reject_code=_digits(data[41:46], "reject code", ""),
        )

    def to_bytes(self, body_length: int | None = None) -> bytes:
        """The 46 bytes; ``body_length`` sets F3 to 46 + it (else F3 as held)."""
        total = self.total_length if body_length is None else HEADER_LEN + body_length
        if not HEADER_LEN < total <= MAX_TOTAL:
            raise ValueError(f"total length {total} is not {HEADER_LEN + 1} to {MAX_TOTAL}")
        return b"".join((
            bytes((HEADER_LEN, self.version | (TEST_FLAG if self.test else 0))),
            b"%04d" % total,
            self.destination.encode("ascii"),
            self.source.encode("ascii"),
            self.reserved,
            bytes((self.batch,)),
            self.transaction_info,
            bytes((self.user_info,)),
            self.reject_code.encode("ascii"),
        ))

    def reply(self) -> CupsHeader:
        """The header of the answer to this one: ids swapped, no reject code (the rest as received)."""
        return replace(self, destination=self.source, source=self.destination, reject_code=NO_REJECT)

    def rejecting(self, code: str) -> CupsHeader:
        """The header that sends this message back rejected: ids swapped, F10 = ``code``."""
        return replace(self, destination=self.source, source=self.destination, reject_code=code)
