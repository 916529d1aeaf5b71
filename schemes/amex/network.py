"""American Express behind the network contract: ISO 8583:1993 messages in EBCDIC, translated to and from the
canonical ISO 8583:1987 message (:mod:`schemes.amex.fields` lists the correspondence).

- Framing: a 2-byte length that counts itself, no header (:mod:`schemes.amex.link`). American Express has no reject
  form in the public sources: a malformed request is answered 904 (format error), anything else only logged.
- MTIs: 1100/1110, 1120/1130, 1200/1210, 1220/1230, 1420/1430 (a canonical 0400 goes out as 1420), 1804/1814;
  the canonical message has 0100 ... 0800.
- DE 39: three-digit action codes (:mod:`schemes.amex.codes`); DE 24: function codes (authorization 100, inquiry
  108, financial 200, reversal 400, partial reversal 401 with DE 30 the original amounts, network management 801
  sign-on, 802 sign-off, 831 echo); DE 25: message reason codes of reversals and advices.
- A field the canonical message carries with no American Express counterpart (ISO 8583:1987 fees DE 28-31, the
  message security code DE 96, DE 56-59 reserved) is refused: the sender is answered 30, nothing is sent. ISO
  8583:1987's DE 24 (a network international identifier, meaningful on its own hop only) and DE 26 (PIN capture
  code) give way to the function code and the business code.
- Match key: the STAN alone (answers in the public sources do not all echo DE 41), reversals and their answers
  folded together (a canonical 0400 is answered 1430).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import iso8583

from schemes.amex.codes import NETMGMT_ACCEPTED, REVERSAL_ACCEPTED
from schemes.amex.fields import (
    ADVICE_REASON,
    EXTRA,
    PARTIAL_REVERSAL,
    de90_of,
    entry_mode,
    function_code,
    local_datetime,
    original_data,
    pos_data_code,
    reason_39,
    reversal_reason,
)
from schemes.amex.link import AmexLink, read_link
from schemes.iso87 import Iso87Network, Iso87Session
from switch.contracts.network import LinkOptions, NetworkSession
from switch.model.codes import ResponseCode
from switch.model.errors import DecodeError, EncodeError, RemoteProtocolError, UnknownMtiError
from switch.model.message import Message, match_mti
from switch.model.toml import TomlTable
from switch.wire.codec import WireFields

# Canonical fields that mean the same in ISO 8583:1987 and in American Express's 1993 layout: carried as they are.
PASS = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16, 17, 19, 20, 21, 23, 27, 32, 33, 34, 35, 36, 37, 38,
                  41, 42, 43, 44, 45, 47, 48, 49, 50, 51, 52, 53, 54, 55, 60, 61, 62, 63, 64, 100, 102, 103, 104,
                  126, 127, 128})
# Canonical fields the translation handles (or, for 24 and 26, replaces: see the module docstring).
_TRANSLATED = frozenset({12, 13, 18, 22, 24, 25, 26, 39, 70, 90, 95, 125})
# What an answer echoes of its request's American Express fields (kept beside the canonical request).
_ECHOED = (EXTRA + "12", EXTRA + "24")
# A response echoes the identifying fields (the public interface's answers: 2, 3, 4, 7, 11, 12, 24, 32, 37, 41, 42,
# 49), the settlement amount and currency, DE 33, 70 of network management and DE 90/95 of reversals.
ECHO_FIELDS: tuple[int, ...] = (2, 3, 4, 5, 7, 11, 12, 13, 19, 32, 33, 37, 41, 42, 49, 50, 70, 90, 95)
_REQUESTS = "024"


def canonical_mti(mti: str) -> str:
    """0xxx for a 1xxx (18x4: 08x0)."""
    if mti[1] == "8":
        return "08" + mti[2] + "0"
    return "0" + mti[1:]


def wire_mti(mti: str) -> str:
    """American Express's MTI for a canonical one: 1xxx, reversals as advices (0400 -> 1420, 0410 -> 1430), network
    management from 'other' (0800 -> 1804, 0810 -> 1814)."""
    if mti[1] == "8":
        return "18" + mti[2] + "4"
    if mti[1] == "4" and mti[2] in "01":
        return "14" + str(int(mti[2]) + 2) + mti[3]
    return "1" + mti[1:]


def defines_1993(mti: str, classes: frozenset[str]) -> bool:
    return (len(mti) == 4 and mti.isdigit() and mti[0] == "1" and mti[1] in classes and mti[2] <= "5"
            and (mti[1] != "8" or mti[3] in "04"))


@dataclass
class AmexNetwork(Iso87Network):
    """American Express over its ISO 8583:1993 EBCDIC spec (see the module docstring)."""

    match_fields: tuple[int, ...] = (11,)
    # The switch numbers what it sends to the network itself (its own STAN, DE 7; switch.exchange.identity).
    own_identity: bool = True

    # -- link options and network management -------------------------------------------------------------
    def link_options(self, framing: TomlTable | None, options: TomlTable | None) -> LinkOptions:
        return read_link(framing, options, self.name)

    def session(self, options: LinkOptions) -> NetworkSession:
        return Iso87Session(self.make_response, options if isinstance(options, AmexLink) else AmexLink())

    # -- MTIs and matching ----------------------------------------------------------------------------------
    def _check_mti(self, mti: str) -> None:
        if not defines_1993(mti, self.mti_classes):
            raise UnknownMtiError(mti)

    def match_key(self, msg: Message, match_fields: tuple[int, ...] | None = None) -> tuple[str, ...]:
        mti = msg.mti
        key = [mti[:2] + "0" if mti[1] == "4" else match_mti(mti)]
        for number in match_fields or self.match_fields:
            value = msg.fields.get(number)
            key.append(value if isinstance(value, str) else "")
        return tuple(key)

    def matcher(self, match_fields: tuple[int, ...] | None) -> Callable[[Message], Hashable]:
        if match_fields is None or match_fields == self.match_fields:
            return self.match_key
        return lambda msg: self.match_key(msg, match_fields)

    def make_response(self, request: Message, code: ResponseCode | str) -> Message:
        response = super().make_response(request, code)
        extra = request.meta.extra
        for key in _ECHOED:
            value = extra.get(key)
            if value is not None:
                response.meta.extra[key] = value
        return response

    # -- wire -> canonical -----------------------------------------------------------------------------------
    def to_canonical(self, mti: str, fields: WireFields) -> Message:
        canonical, out, extra = _from_1993(mti, fields)
        msg = super().to_canonical(canonical, out)
        msg.meta.extra.update(extra)
        return msg

    # -- canonical -> wire -----------------------------------------------------------------------------------
    def from_canonical(self, msg: Message) -> tuple[str, WireFields]:
        if 48 in msg.fields and msg.meta.scheme not in ("", self.name):
            # DE 48 is private use: another network's layout means nothing here.
            raise EncodeError(f"DE 48 from {msg.meta.scheme} is not in American Express's format", "48")
        mti87, out87 = super().from_canonical(msg)
        out: WireFields = {}
        for number, value in out87.items():
            if number in PASS:
                out[number] = value
            elif number not in _TRANSLATED:
                raise EncodeError("no American Express counterpart", str(number))
        try:
            _to_1993(msg, mti87, out87, out)
        except ValueError as exc:
            raise EncodeError(str(exc), "1993") from None
        return wire_mti(mti87), out

    def salvage(self, body: bytes) -> Message | None:
        """The MTI and identity of a body that failed to decode, to answer it 904 (the reference decoder keeps the
        fields before the bad one)."""
        try:
            doc, _ = iso8583.decode(bytes(body), self.codec.spec)
        except iso8583.DecodeError as exc:
            doc = {k: v for k, v in exc.doc_dec.items() if k != exc.field}
        except Exception:
            return None
        mti = doc.get("t")
        if not isinstance(mti, str) or not defines_1993(mti, self.mti_classes) or mti[2] not in _REQUESTS:
            return None
        fields = {int(k): v for k, v in doc.items() if k.isdigit() and k != "1"}
        try:
            msg = self.to_canonical(mti, fields)
        except RemoteProtocolError:
            msg = Message(canonical_mti(mti), {n: v for n, v in fields.items() if n in (2, 3, 4, 7, 11, 32, 37, 41)})
        msg.meta.scheme = self.name
        msg.meta.masking = self.masking
        return msg


def _from_1993(mti: str, fields: WireFields) -> tuple[str, WireFields, dict[str, str]]:
    """The canonical MTI, fields (still wire values for codes and bytes) and what is kept beside them."""
    canonical = canonical_mti(mti)
    cls = canonical[1]
    f = dict(fields)
    extra: dict[str, str] = {}
    for number in (13, 28, 31, 22, 24, 25, 30):  # American Express's own meaning: kept beside the message
        value = f.pop(number, None)
        if value is not None:
            extra[EXTRA + str(number)] = value
    de12 = f.pop(12, None)
    if de12 is not None:
        if len(de12) != 12 or not de12.isdigit():
            raise DecodeError("date and time is not YYMMDDhhmmss", "12", 0)
        f[12], f[13] = de12[6:], de12[2:6]
        extra[EXTRA + "12"] = de12
    code = extra.get(EXTRA + "24")
    if cls == "8" and code is not None:
        f[70] = code
    pos = extra.get(EXTRA + "22")
    if pos is not None:
        try:
            f[22], condition = entry_mode(pos)
        except ValueError:
            raise DecodeError("not a POS data code", "22", 0) from None
        f[25] = condition
    reason = extra.get(EXTRA + "25")
    if cls == "4" and reason is not None and 39 not in f:
        found = reason_39(reason)
        if found is not None:
            f[39] = found
    mcc = f.pop(26, None)
    if mcc is not None:
        f.setdefault(18, mcc)
    original = extra.get(EXTRA + "30")
    if cls == "4" and code == PARTIAL_REVERSAL and original is not None and 4 in f:
        if len(original) != 24 or not original.isdigit():
            raise DecodeError("original amounts are not 24 digits", "30", 0)
        actual = f[4]
        f[4] = original[:12]
        f[95] = actual + actual + "0" * 18
    de56 = f.pop(56, None)
    if de56 is not None:
        f[90] = de90_of(de56)
    key = f.pop(96, None)
    if key is not None:
        f[125] = key
    for number in [n for n in f if n not in PASS and n not in _TRANSLATED]:  # no canonical counterpart
        extra[EXTRA + str(number)] = f.pop(number)
    return canonical, f, extra


def _to_1993(msg: Message, mti87: str, out87: WireFields, out: WireFields) -> None:
    """The American Express fields of ``msg`` into ``out`` (its carried fields are there already)."""
    fields, extra = msg.fields, msg.meta.extra
    cls, function = mti87[1], mti87[2]
    response = function in "13579"
    for number in (95, 125):  # translated only where American Express has them: reversals, network management
        if number in out87 and cls != ("4" if number == 95 else "8"):
            raise ValueError(f"DE {number} has no American Express counterpart in an {mti87}")
    code = out87.get(39)
    if code is not None and (response or cls != "4"):  # an answer's action code; an advice's (a reversal: DE 25)
        out[39] = code
    out[12] = extra.get(EXTRA + "12") or _de12(fields)
    if cls == "8":
        management = fields.get(70)
        if isinstance(management, str):
            out[24] = management
        if response and out87.get(39) == "000":
            out[39] = NETMGMT_ACCEPTED
        key = out87.get(125)
        if key is not None:
            out[96] = key
        return
    mcc = out87.get(18)
    if mcc is not None:
        out[26] = mcc
    partial = _partial(out87) if cls == "4" else None
    if not response:
        entry, condition = out87.get(22), out87.get(25)
        out[22] = extra.get(EXTRA + "22") or pos_data_code(entry, condition, 52 in fields)
    out[24] = extra.get(EXTRA + "24") or function_code(mti87, out87.get(3), partial is not None)
    if cls == "4":
        if response:
            if out87.get(39) == "000":
                out[39] = REVERSAL_ACCEPTED
        else:
            reason = fields.get(39)
            out[25] = extra.get(EXTRA + "25") or reversal_reason(reason if isinstance(reason, str) else None)
            out.pop(39, None)  # a reversal's reason travels in DE 25
        if partial is not None:
            original, actual = partial
            out[4] = actual
            # The original amounts as received, else the original amount (its reconciliation amount not known here).
            out[30] = extra.get(EXTRA + "30") or original + "0" * 12
    elif not response and function == "2":  # an advice: why it is sent
        out[25] = extra.get(EXTRA + "25") or ADVICE_REASON
    de90 = out87.get(90)
    if de90 is not None:
        out[56] = original_data(de90, out87.get(32))


def _partial(out87: WireFields) -> tuple[str, str] | None:
    """(original amount, actual amount) of a reversal whose DE 95 leaves part of DE 4 in place; None when full."""
    de95, de4 = out87.get(95), out87.get(4)
    if de95 is None or de4 is None or len(de95) < 12 or not de95[:12].isdigit():
        return None
    actual = de95[:12]
    return (de4, actual) if 0 < int(actual) < int(de4) else None


def _de12(fields: Mapping[int, object]) -> str:
    """DE 12 of a message the canonical side built: from DE 13 and 12, else from DE 7 (UTC), else now."""
    time, day = fields.get(12), fields.get(13)
    if isinstance(time, str) and isinstance(day, str):
        return local_datetime(day, time)
    when = fields.get(7)
    if isinstance(when, str) and len(when) == 10:
        return local_datetime(when[:4], when[4:])
    return datetime.now(UTC).strftime("%y%m%d%H%M%S")
