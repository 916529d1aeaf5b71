"""Building reversals, stand-in advices and store-and-forward payloads (sans-I/O).

ISO 8583:1987: a reversal (0400, repeated as 0401) carries the original's identifying fields and, in field 90,
the original data elements: original MTI (4) + STAN (6) + transmission date/time (10) + acquiring institution
(11) + forwarding institution (11), n42. Field 39 gives the reason: 68 "response received too late" after a
timeout, 22 "suspected malfunction" when the answer could not be delivered to the acquirer.
"""

from __future__ import annotations

import json

from switch.model.message import FieldValue, Message

# Sensitive authentication data (tracks, PIN block, chip data) never goes into the SAF queue; MACs (64, 128)
# belong to one transmission and are computed afresh for each send.
_NEVER_STORED = frozenset({35, 36, 45, 52, 55, 64, 128})
# A reversal carries the original's identity, not its card-security data.
_NEVER_IN_REVERSAL = _NEVER_STORED | {14, 53}
_REVERSAL_FIELDS = (2, 3, 4, 7, 11, 12, 13, 18, 22, 32, 33, 37, 38, 41, 42, 43, 49, 102, 103)
# A stand-in advice is posted by the issuer as a transaction of its own (a reversal only names its original), so
# it also carries what prices and converts the amount: the billing amount, rate and currency (6, 10, 51; without
# them an advice in a foreign currency cannot be posted to the account), the acquirer's country (19, cross-border
# fees and limits), the POS condition (25, the channel) and the fee the acquirer disclosed (28).
_ADVICE_FIELDS = tuple(sorted({*_REVERSAL_FIELDS, 6, 10, 19, 25, 28, 51}))

REASON_TIMEOUT = "68"
REASON_UNDELIVERED = "22"


def original_data_elements(original: Message) -> str:
    def n(value: FieldValue | None, width: int) -> str:
        text = value if isinstance(value, str) else ""
        return text.rjust(width, "0")[-width:]

    return (original.mti + n(original.get(11), 6) + n(original.get(7), 10) + n(original.get(32), 11)
            + n(original.get(33), 11))


def build_reversal(original: Message, reason: str, approval_code: str | None = None,
                   transmission_time: str | None = None) -> Message:
    """The 0400 reversing ``original`` (an 0100/0200 request)."""
    fields: dict[int, FieldValue] = {n: original.fields[n] for n in _REVERSAL_FIELDS if n in original.fields}
    if 2 not in fields and original.pan:
        fields[2] = original.pan  # the PAN came in track 2, which a reversal must not carry
    if transmission_time:
        fields[7] = transmission_time
    if approval_code:
        fields[38] = approval_code
    fields[39] = reason
    fields[90] = original_data_elements(original)
    return Message("0400", fields)


def build_stand_in_advice(original: Message, approval_code: str, *, repeat: bool) -> Message:
    """The advice reporting a stand-in approval of ``original`` (an 0100 or 0200) to its issuer.

    ISO 8583:1987: an advice (MTI function digit 2) tells the receiver of something already done; it is not
    declined, only acknowledged, and the issuer applies it as authoritative. 0100 -> 0120, 0200 -> 0220, with
    the original's identifying fields, field 38 the switch's approval code and field 39 "00" (the answer the
    acquirer got), and what the issuer needs to post it as the original would have been: the billing amount and
    currency, country, POS condition and the fee the acquirer disclosed (field 28; ``_ADVICE_FIELDS``). Field 90
    names the original (MTI, STAN, transmission time, acquirer, forwarder), so an issuer that did receive and
    approve the original finds it and does not apply the amount twice.

    ``repeat``: the original was sent and not answered, so the issuer may have it. The advice then goes out
    as the repeat (0121/0221), as a held advice would, telling the issuer to check for an earlier copy.
    No proprietary stand-in indicator is added: ISO 8583:1987 has none (field 60 is reserved for national
    use and means something different on every network); the "S" approval code marks it for people.
    """
    fields: dict[int, FieldValue] = {n: original.fields[n] for n in _ADVICE_FIELDS if n in original.fields}
    if 2 not in fields and original.pan:
        fields[2] = original.pan  # the PAN came in track 2, which an advice must not carry
    fields[38] = approval_code
    fields[39] = "00"
    fields[90] = original_data_elements(original)
    mti = original.mti[:2] + "2" + ("1" if repeat else "0")
    return Message(mti, fields)


def original_key(msg: Message) -> str | None:
    """The transaction ``msg`` is about, as the store-and-forward queue orders by it: an advice, the reversal of the
    same original and their repeats share it; anything else differs.

    From field 90 when the message has one (a reversal, or a stand-in advice: the original's MTI, STAN,
    transmission time and acquirer; the forwarding institution is left out, as a forwarder may rewrite it),
    else from the message's own MTI, 11, 7 and 32 (an acquirer's advice: its repeats and its reversal, whose
    field 90 names it, find it). The MTI's last digit (origin: repeat or not) is not part of it. None when the
    message has no STAN to name a transaction by.
    """
    de90 = msg.get(90)
    if isinstance(de90, str) and len(de90) >= 20 and de90[:20].isdigit():
        mti, stan, when, acquirer = de90[:4], de90[4:10], de90[10:20], de90[20:31]
    else:
        stan_value, when_value, acquirer_value = msg.get(11), msg.get(7), msg.get(32)
        if not isinstance(stan_value, str) or not stan_value:
            return None
        mti, stan = msg.mti, stan_value.rjust(6, "0")[-6:]
        when = when_value.rjust(10, "0")[-10:] if isinstance(when_value, str) else "0" * 10
        acquirer = acquirer_value if isinstance(acquirer_value, str) else ""
    return f"{mti[:3]}0{stan}{when}{acquirer.lstrip('0')}"


def repeat_mti(mti: str) -> str:
    """0400 -> 0401, 0420 -> 0421: the repeat of a request sent again after no answer (ISO 8583 MTI origin)."""
    return mti[:3] + str(int(mti[3]) | 1)


def to_payload(msg: Message) -> bytes:
    """Serialise a message for the SAF queue (the caller seals it; this is never stored as is).

    Track data, PIN blocks, CVV-bearing and chip fields are dropped first: PCI DSS requirement 3.3 forbids
    keeping sensitive authentication data after authorisation, encrypted or not.
    """
    kept = {k: v for k, v in msg.fields.items() if k not in _NEVER_STORED}
    if 2 not in kept and msg.pan:
        kept[2] = msg.pan  # the PAN came in track 2; the destination still needs it
    data = {str(k): (v.hex() if isinstance(v, bytes) else v) for k, v in kept.items()}
    binary = [k for k, v in kept.items() if isinstance(v, bytes)]
    return json.dumps({"mti": msg.mti, "fields": data, "binary": binary}, separators=(",", ":")).encode()


def from_payload(payload: bytes) -> Message:
    data = json.loads(payload)
    binary = set(data.get("binary", []))
    fields: dict[int, FieldValue] = {
        int(k): (bytes.fromhex(v) if int(k) in binary else v) for k, v in data["fields"].items()
    }
    for k in _NEVER_STORED & fields.keys():
        del fields[k]
    return Message(data["mti"], fields)
