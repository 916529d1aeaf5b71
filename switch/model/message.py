"""The canonical message: one type for every scheme inside the switch.

Fields use ISO 8583:1987 numbering. Values are normalised: numeric and text fields are ``str`` (digits kept
as digit strings, so leading zeros survive), binary fields (PIN block 52, ICC data 55, MACs 64/128, ...)
are ``bytes``. Scheme adapters in :mod:`schemes` convert each network's dialect to and from this form.

``repr``/``str`` mask card data (:mod:`switch.model.masking`); the clear value of a field is only reachable through
the explicit accessors (``msg[2]``, :attr:`Message.pan`, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from switch.model.codes import ResponseCode
from switch.model.masking import DEFAULT_MASKING, Masking, mask_pan

FieldValue = str | bytes

# Fields a response echoes from its request unless the scheme says otherwise (ISO 8583:1987 practice:
# the identifying and amount fields of the request come back unchanged so the acquirer can match them).
DEFAULT_ECHO_FIELDS: tuple[int, ...] = (
    2, 3, 4, 5, 6, 7, 11, 12, 13, 15, 18, 19, 22, 23, 24, 25, 28, 32, 33, 37, 41, 42, 43, 49, 50, 51,
    70, 90, 95, 100, 102, 103,
)

# Field numbers as the text keys of Message.masked (ISO 8583 numbers run to 128, 192 with a tertiary bitmap).
_KEYS: tuple[str, ...] = tuple(str(number) for number in range(193))


@dataclass(slots=True)
class MessageMeta:
    """Where a message came from; never sent on the wire."""

    source_link: str = ""
    scheme: str = ""
    received_ns: int = 0
    trace_id: str = ""
    # Framing header of the frame that carried this message (TPDU, BASE I, CUPS); replies reuse it.
    header: bytes | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # What the network that decoded (or built) this message declares secret: logs and the journal follow it.
    masking: Masking = DEFAULT_MASKING
    # The frame body as received, kept only where a MAC is checked over it (switch.exchange.mac); card data.
    wire: bytes | None = field(default=None, repr=False)


class Message:
    """An ISO 8583 message in canonical form."""

    __slots__ = ("fields", "meta", "mti")

    def __init__(
        self,
        mti: str,
        fields: dict[int, FieldValue] | None = None,
        meta: MessageMeta | None = None,
    ) -> None:
        self.mti = mti
        self.fields: dict[int, FieldValue] = fields if fields is not None else {}
        self.meta = meta if meta is not None else MessageMeta()

    # -- field access -------------------------------------------------------------------------------
    def __getitem__(self, number: int) -> FieldValue:
        return self.fields[number]

    def __setitem__(self, number: int, value: FieldValue) -> None:
        self.fields[number] = value

    def __delitem__(self, number: int) -> None:
        del self.fields[number]

    def __contains__(self, number: object) -> bool:
        return number in self.fields

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self.fields))

    def get(self, number: int, default: FieldValue | None = None) -> FieldValue | None:
        return self.fields.get(number, default)

    def text(self, number: int) -> str | None:
        """A text field's value, or None when absent. Raises TypeError on a binary field."""
        value = self.fields.get(number)
        if value is None or isinstance(value, str):
            return value
        raise TypeError(f"field {number} is binary")

    def binary(self, number: int) -> bytes | None:
        value = self.fields.get(number)
        if value is None or isinstance(value, bytes):
            return value
        raise TypeError(f"field {number} is text")

    # -- typed accessors ----------------------------------------------------------------------------
    @property
    def pan(self) -> str | None:
        """Field 2, or the PAN part of track 2 (field 35, before the '=' or 'D' separator)."""
        pan = self.text(2)
        if pan:
            return pan
        track2 = self.text(35)
        if track2:
            for sep in ("=", "D", "d"):
                if sep in track2:
                    return track2.split(sep, 1)[0]
        return None

    @property
    def masked_pan(self) -> str | None:
        pan = self.pan
        return mask_pan(pan) if pan else None

    @property
    def processing_code(self) -> str | None:
        return self.text(3)

    @property
    def transaction_type(self) -> str | None:
        code = self.text(3)
        return code[:2] if code else None

    @property
    def amount(self) -> int | None:
        """Field 4 in minor units of field 49's currency."""
        value = self.text(4)
        return int(value) if value and value.isdigit() else None

    @property
    def currency(self) -> str | None:
        return self.text(49)

    @property
    def stan(self) -> str | None:
        return self.text(11)

    @property
    def rrn(self) -> str | None:
        return self.text(37)

    @property
    def terminal_id(self) -> str | None:
        return self.text(41)

    @property
    def response_code(self) -> str | None:
        return self.text(39)

    @property
    def network_code(self) -> str | None:
        return self.text(70)

    # -- MTI helpers (ISO 8583 MTI digits: version, class, function, origin) ------------------------
    @property
    def mti_class(self) -> str:
        return self.mti[1]

    @property
    def is_request(self) -> bool:
        """Requests, advices and notifications (function digit even) as opposed to their responses."""
        return int(self.mti[2]) % 2 == 0

    @property
    def is_response(self) -> bool:
        return not self.is_request

    @property
    def is_financial(self) -> bool:
        return self.mti[1] == "2"

    @property
    def is_authorization(self) -> bool:
        return self.mti[1] == "1"

    @property
    def is_reversal(self) -> bool:
        return self.mti[1] == "4"

    @property
    def is_network(self) -> bool:
        return self.mti[1] == "8"

    @property
    def is_advice(self) -> bool:
        return self.mti[2] in "23"

    # -- building answers ---------------------------------------------------------------------------
    def make_response(
        self,
        code: ResponseCode | str,
        echo: Iterable[int] = DEFAULT_ECHO_FIELDS,
    ) -> Message:
        """The response to this request: MTI function digit + 1, repeat origin folded to the original
        (0401 -> 0410, 0221 -> 0230), the echo fields copied, field 39 set."""
        mti = response_mti(self.mti)
        # One pass over the request's fields against a set (about 20 lookups), not over every echo field
        # (about 32, each a lookup and, when present, a second one): about 2 µs less per response.
        echo_set = _echo_set(echo)
        fields: dict[int, FieldValue] = {n: v for n, v in self.fields.items() if n in echo_set}
        fields[39] = code.value if isinstance(code, ResponseCode) else code
        meta = MessageMeta(
            source_link=self.meta.source_link,
            scheme=self.meta.scheme,
            trace_id=self.meta.trace_id,
            header=self.meta.header,
            masking=self.meta.masking,
        )
        return Message(mti, fields, meta)

    def copy(self) -> Message:
        meta = MessageMeta(
            self.meta.source_link, self.meta.scheme, self.meta.received_ns, self.meta.trace_id,
            self.meta.header, dict(self.meta.extra), self.meta.masking,
        )
        return Message(self.mti, dict(self.fields), meta)

    # -- masked views -------------------------------------------------------------------------------
    def masked(self, masking: Masking | None = None) -> dict[str, str]:
        """Every field in its masked form, keyed by field number as text (for logs and the journal), by
        ``masking`` or else by what the message's network declares (``meta.masking``)."""
        # Called twice per exchange for the journal: plain text fields (most of them) skip Masking.field, and the
        # keys are not formatted each time (Message.masked + the field masking were 8% of the event loop's samples).
        policy = masking if masking is not None else self.meta.masking
        masked_text = policy.masked_text
        out = {"mti": self.mti}
        fields = self.fields
        for number in sorted(fields):
            value = fields[number]
            key = _KEYS[number] if 0 <= number < len(_KEYS) else str(number)
            if type(value) is str and number not in masked_text:
                out[key] = value
            else:
                out[key] = policy.field(number, value)
        return out

    def __repr__(self) -> str:
        body = " ".join(f"{k}={v}" for k, v in self.masked().items() if k != "mti")
        return f"<Message {self.mti} {body}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.mti == other.mti and self.fields == other.fields

    __hash__ = None  # type: ignore[assignment]


_ECHO_SETS: dict[tuple[int, ...], frozenset[int]] = {}


def _echo_set(echo: Iterable[int]) -> frozenset[int] | set[int]:
    """``echo`` as a set; the sets of the (few) tuples adapters pass are kept."""
    if isinstance(echo, (frozenset, set)):
        return echo
    if isinstance(echo, tuple):
        found = _ECHO_SETS.get(echo)
        if found is None:
            if len(_ECHO_SETS) >= 64:  # adapters pass a handful of tuples; anything else is not worth keeping
                _ECHO_SETS.clear()
            found = _ECHO_SETS[echo] = frozenset(echo)
        return found
    return frozenset(echo)


_RESPONSE_MTIS: dict[str, str] = {}


def response_mti(mti: str) -> str:
    """0100 -> 0110, 0401 -> 0410, 0420 -> 0430, 0800 -> 0810 (ISO 8583 MTI function/origin digits)."""
    found = _RESPONSE_MTIS.get(mti)
    if found is not None:
        return found
    function = int(mti[2])
    if function % 2:
        raise ValueError(f"{mti} is already a response")
    origin = int(mti[3])
    found = f"{mti[:2]}{function + 1}{origin - origin % 2}"
    if len(_RESPONSE_MTIS) >= 1024:  # MTIs are four digits: a peer cycling through them only refills it
        _RESPONSE_MTIS.clear()
    _RESPONSE_MTIS[mti] = found
    return found


def match_mti(mti: str) -> str:
    """The MTI as a match key: request and response, original and repeat, fold to one value
    (jPOS QMUX maps the function digit the same way: 0/1 -> 0, 2/3 -> 2, 4/5 -> 4)."""
    found = _MATCH_MTIS.get(mti)
    if found is None:
        found = f"{mti[:2]}{int(mti[2]) & ~1}"
        if len(_MATCH_MTIS) >= 1024:  # MTIs are four digits: a peer cycling through them only refills it
            _MATCH_MTIS.clear()
        _MATCH_MTIS[mti] = found
    return found


_MATCH_MTIS: dict[str, str] = {}


def transmission_time() -> str:
    """Field 7, MMDDhhmmss in UTC (ISO 8583:1987 transmission date and time), for a message the switch sends."""
    return datetime.now(UTC).strftime("%m%d%H%M%S")
