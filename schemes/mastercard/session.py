"""Mastercard network management: ISO 8583:1987's 0800/0810 by DE 70 (:class:`schemes.iso87.Iso87Session`), with
what Mastercard does differently:

- a link with institution ids signs on and off by group: DE 70 ``group_signon_code`` / ``group_signoff_code``
  (061 / 062), one request per institution, the id in ``institution_field`` (DE 2); without institution ids the
  plain sign-on and sign-off (001 / 002). A group sign-on or sign-off from the network names its institution there
  too; one this link does not serve is answered 15 (no such issuer);
- echo is DE 70 270;
- a key exchange (DE 70 161, or ``mac_key_exchange_code`` for the MAC key) carries the new key in DE 48 sub-element
  ``key_subelement`` (11): the key under the zone master key in Thales notation, then its 6-character check value.

Every code and the key's place are link options (:mod:`schemes.mastercard.link`); the README lists them as values
that stand in for facts no public source confirms.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from schemes.iso87 import Iso87Session
from schemes.mastercard.fields import AdditionalData, build_de48, parse_de48
from schemes.mastercard.link import MastercardLink
from switch.contracts.network import KeyChange, NetMgmt, NetworkEvent
from switch.model.codes import ResponseCode
from switch.model.errors import FieldError
from switch.model.message import Message

_KCV_LEN = 6
_GROUPED = {NetMgmt.SIGN_ON: "group_signon_code", NetMgmt.SIGN_OFF: "group_signoff_code"}


class MastercardSession(Iso87Session):
    """Network management with one Mastercard link's options (sans-I/O: the link sends what this builds)."""

    def __init__(self, respond: Callable[[Message, ResponseCode], Message], link: MastercardLink) -> None:
        super().__init__(respond, link)
        self.mc = link
        self._groups = {link.group_signon_code: NetMgmt.SIGN_ON, link.group_signoff_code: NetMgmt.SIGN_OFF}

    def requests(self, kind: NetMgmt, stan: Callable[[], str], now: datetime) -> list[Message]:
        attribute = _GROUPED.get(kind)
        if attribute is None or not self.mc.institutions:
            return super().requests(kind, stan, now)
        code: str = getattr(self.mc, attribute)
        when = now.strftime("%m%d%H%M%S")
        return [Message("0800", {7: when, 11: stan(), self.mc.institution_field: institution, 70: code})
                for institution in self.mc.institutions]

    def inbound(self, request: Message) -> NetworkEvent:
        code = request.text(70) or ""
        group = self._groups.get(code)
        if group is not None:
            institution = request.get(self.mc.institution_field)
            return NetworkEvent(group, institution=institution if isinstance(institution, str) else "")
        if code == self.mac_key_code:
            return NetworkEvent(NetMgmt.KEY_EXCHANGE, key=self._key_in(request, "ZAK"))
        if self._kinds.get(code) is NetMgmt.KEY_EXCHANGE:
            return NetworkEvent(NetMgmt.KEY_EXCHANGE, key=self._key_in(request, "ZPK"))
        if self._kinds.get(code) in _GROUPED:  # the plain sign-on or sign-off, whatever institutions the link has
            return NetworkEvent(self._kinds[code])
        return super().inbound(request)

    def key_change(self, response: Message) -> KeyChange | None:
        mac = self.mac_key_code is not None and response.get(70) == self.mac_key_code
        return self._key_in(response, "ZAK" if mac else "ZPK")

    def _key_in(self, msg: Message, key_type: str) -> KeyChange | None:
        text = msg.get(48)
        if not isinstance(text, str):
            return None
        try:
            value = parse_de48(text, tcc=False).get(self.mc.key_subelement)
        except FieldError:
            return None
        if value is None or len(value) <= _KCV_LEN:
            return None
        return KeyChange(key_type, value[:-_KCV_LEN], value[-_KCV_LEN:])

    def put_key(self, msg: Message, change: KeyChange) -> None:
        """Put ``change`` in ``msg`` where this link reads a new key (the network simulator's side of a key
        exchange: switch.sim.simkeys)."""
        value = change.under_zmk + change.check_value[:_KCV_LEN]
        existing = msg.get(48)
        data = parse_de48(existing, tcc=False) if isinstance(existing, str) else AdditionalData()
        msg[48] = build_de48(data.with_subelement(self.mc.key_subelement, value))
