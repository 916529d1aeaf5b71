"""VISA network management with one link's parameters (the contract's :class:`NetworkSession`; sans-I/O).

0800/0810 with the link's DE 70 codes (defaults in :mod:`schemes.visa.link`): sign-on and sign-off (one request per
institution id when the link lists several: a group sign-on), echo, key exchange (the new zone PIN key in the link's
``key_field`` under the zone master key, then its check value) and, when configured, cutover (the new settlement
date in DE 15). A request is accepted by 00.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from schemes.visa.link import VisaLink
from switch.contracts.network import KeyChange, NetMgmt, NetworkEvent
from switch.model.codes import ResponseCode
from switch.model.message import Message

_GROUPED = frozenset({NetMgmt.SIGN_ON, NetMgmt.SIGN_OFF})
_KCV_LEN = 6

Respond = Callable[[Message, ResponseCode], Message]


class VisaSession:
    """Network management for one VISA link. ``respond`` builds the network's response to a request."""

    def __init__(self, link: VisaLink, respond: Respond) -> None:
        self.link = link
        self.respond = respond
        self.codes = dict(link.netmgmt)
        self._kinds = {code: kind for kind, code in self.codes.items()}
        # The events of requests that carry nothing but their code, made once (an echo every few seconds).
        self._plain = {code: NetworkEvent(kind) for code, kind in self._kinds.items()
                       if kind not in (NetMgmt.KEY_EXCHANGE, NetMgmt.CUTOVER)
                       and not (kind in _GROUPED and link.institutions)}
        self._unknown = NetworkEvent(None)

    def requests(self, kind: NetMgmt, stan: Callable[[], str], now: datetime) -> list[Message]:
        code = self.codes.get(kind)
        if code is None:  # a kind this link does not do
            return []
        when = now.strftime("%m%d%H%M%S")
        if kind in _GROUPED and self.link.institutions:
            return [Message("0800", {7: when, 11: stan(), self.link.institution_field: institution, 70: code})
                    for institution in self.link.institutions]
        return [Message("0800", {7: when, 11: stan(), 70: code})]

    def accepted(self, kind: NetMgmt, response: Message) -> bool:
        return response.response_code == ResponseCode.APPROVED

    def key_change(self, response: Message) -> KeyChange | None:
        value = response.get(self.link.key_field)
        if not isinstance(value, str) or len(value) <= _KCV_LEN:
            return None
        return KeyChange("ZPK", value[:-_KCV_LEN], value[-_KCV_LEN:])

    def inbound(self, request: Message) -> NetworkEvent:
        code = request.text(70) or ""
        plain = self._plain.get(code)
        if plain is not None:
            return plain
        kind = self._kinds.get(code)
        if kind is NetMgmt.KEY_EXCHANGE:
            return NetworkEvent(kind, key=self.key_change(request))
        if kind is NetMgmt.CUTOVER:
            return NetworkEvent(kind, business_date=request.text(15))
        if kind is not None:  # a group sign-on or sign-off: which institution it is for
            institution = request.get(self.link.institution_field)
            return NetworkEvent(kind, institution=institution if isinstance(institution, str) else None)
        return self._unknown

    def answer(self, request: Message, event: NetworkEvent, code: ResponseCode) -> Message:
        if event.institution is not None and self.link.institutions \
                and event.institution not in self.link.institutions:
            code = ResponseCode.NO_SUCH_ISSUER  # an institution this link does not serve
        return self.respond(request, code)
