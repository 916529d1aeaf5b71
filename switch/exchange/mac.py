"""Message authentication codes on network links, through the HSM (payShield M6 / M8 with a ZAK, key type 008).

Which bytes are MACed: the message as the link's network encodes it, from the MTI up to but excluding the MAC
field (the public default of ISO 8583 implementations; jPOS and the UnionPay member samples MAC the same span).
The MAC field is the message's last field: DE 64 when the message has a primary bitmap only, DE 128 when it has a
secondary one (``mac_field = "auto"``; a link or network may fix 64 or 128: UnionPay puts its MAC in DE 128). The
field's bit is set in the bitmap before MACing, so the MACed bytes are exactly what the receiver gets.

The algorithm is a link option (``mac_algorithm``): ISO 9797-1 algorithm 3, the ANSI X9.19 retail MAC, by default
(the usual ISO 8583 message MAC; reference hsm.md section 4.6 has its vectors), or algorithm 1; ISO 9797-1 padding
method 1 (zeros) by default, or 2 (``mac_padding``).

A message framed by a transcoding dialect (a VISA link whose code page differs from the reference's) is MACed as
the network encodes it, before the framer transcodes it: both sides of such a link must agree on that.
"""

from __future__ import annotations

from hsm.api import Hsm
from switch.config.links import MacConfig
from switch.contracts.network import Network
from switch.model.message import Message

ZAK_TYPE = "008"  # payShield key type code of a zone MAC key (variant LMK pair 26-27; hsm.md section 3)
TAK_TYPE = "003"  # and of a terminal authentication key (the bank's own ATMs: switch.runtime.atmhost)
MAC_FIELDS = (64, 128)
_MAC_BYTES = 8
_PLACEHOLDER = bytes(_MAC_BYTES)


def mac_field_for(msg: Message, where: str) -> int:
    """The field the MAC of ``msg`` goes in: ``where`` (``"64"``, ``"128"``) or, for ``"auto"``, DE 128 when the
    message has a secondary bitmap (a field above 64), DE 64 otherwise."""
    if where != "auto":
        return int(where)
    return 128 if any(n > 64 and n != 128 for n in msg.fields) else 64


def mac_of(msg: Message) -> bytes | None:
    """The MAC ``msg`` carries (DE 128, else DE 64), or None."""
    for number in (128, 64):
        value = msg.fields.get(number)
        if value is not None:
            return value if isinstance(value, bytes) and len(value) == _MAC_BYTES else None
    return None


def mac_input(body: bytes, mac: bytes) -> bytes | None:
    """The bytes ``mac`` covers in ``body``: everything before the MAC field, which ends the message (8 binary bytes,
    or 16 hex characters on an all-text network). None when ``body`` does not end with that MAC."""
    if body.endswith(mac):
        return body[:-len(mac)]
    text = mac.hex().upper().encode("ascii")
    if body.endswith(text):
        return body[:-len(text)]
    return None


async def sign(hsm: Hsm, cfg: MacConfig, key: str, network: Network, msg: Message, *,
               key_type: str = ZAK_TYPE) -> bytes:
    """Put the MAC of ``msg`` under ``key`` in its MAC field and return the message encoded: one encode, with a
    placeholder MAC whose bytes are then replaced (the MAC field is the last, fixed-length)."""
    fields = msg.fields
    for number in MAC_FIELDS:
        fields.pop(number, None)
    number = mac_field_for(msg, cfg.field)
    fields[number] = _PLACEHOLDER
    body = network.encode(msg)
    data = mac_input(body, _PLACEHOLDER)
    if data is None:  # a network whose MAC field is not the last: not one this engine can MAC
        raise ValueError(f"{network.name}: DE {number} does not end the encoded message")
    mac = bytes.fromhex(await hsm.generate_mac(key_type, key, data, algorithm=cfg.algorithm, padding=cfg.padding))
    fields[number] = mac
    tail = mac if len(body) - len(data) == _MAC_BYTES else mac.hex().upper().encode("ascii")
    return data + tail


async def verify(hsm: Hsm, cfg: MacConfig, keys: tuple[str, ...], msg: Message, body: bytes, *,
                 key_type: str = ZAK_TYPE) -> bool:
    """Whether ``msg`` (decoded from ``body``) carries a MAC that verifies under one of ``keys``, tried in order.
    No MAC, or one that does not end the message, is a MAC that does not verify."""
    mac = mac_of(msg)
    if mac is None:
        return False
    data = mac_input(body, mac)
    if data is None:
        return False
    text = mac.hex().upper()
    for key in keys:
        if await hsm.verify_mac(key_type, key, data, text, algorithm=cfg.algorithm, padding=cfg.padding):
            return True
    return False


def strip(msg: Message) -> None:
    """Remove the MAC fields of ``msg`` (a verified request routed on: its MAC belongs to the link it came on)."""
    fields = msg.fields
    for number in MAC_FIELDS:
        fields.pop(number, None)
