"""A network simulator's zone keys: the key exchange it answers and the key changes it starts (issue 12).

The simulator shares a zone master key (``zmk``, a cryptogram under the LMK) with the bank. A key exchange the bank
starts (``bulkhead links rekey``) is answered 00 with a freshly generated zone PIN key (ZPK), or zone MAC key (ZAK)
when the request asks for the MAC key, in the network's form; with ``key_every`` the simulator starts a key change
itself. From the moment the bank has the new ZPK, the PIN blocks the simulator originates are under it. Without a
``zmk`` it has nothing to give: a key exchange is answered 96 (system malfunction), and the bank keeps its key.

Demo and tests only: the simulator always uses the software HSM under the public Thales test LMK (hsm.lmk), so
``zmk`` and every key it holds are cryptograms under that LMK. Keys are never logged, only their check values.

Where the key travels (what the bank's link reads, switch.contracts.network.NetworkSession):

- ISO 8583:1987 and VISA: DE 70 the key-exchange code (VISA 163; a generic link's ``key_exchange_code``; a MAC key:
  ``mac_key_exchange_code``), DE 125 the key under the ZMK in Thales notation (variant ``U``) followed by its
  6-hex check value.
- UnionPay: DE 70 101, DE 53 = 53.1 (1 PIN key, 2 MAC key) + 53.2 6 (double length), DE 48 usage ``NK``: the key's
  16 bytes under the ZMK (ANSI X9.17, Thales ``X``) followed by ``nk_check_value_bytes`` bytes of check value.
- A network whose session can put a key where its links read one (``put_key``: Mastercard's DE 48 sub-element)
  carries it that way.

The simulator's ``options`` (the network's link options, as on the bank's connector) say which codes it knows and
how many check-value bytes follow a UnionPay key: the key is put in the first form its own session reads back, so
the simulator speaks exactly what a link configured like it reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from hsm.errors import HsmError
from hsm.lmk import Lmk
from hsm.software import ExportedKey, SoftwareHsm
from switch.contracts.network import KeyChange, NetMgmt, NetworkSession
from switch.model.codes import ResponseCode
from switch.model.message import Message

log = logging.getLogger("bulkhead.sim.keys")

_TYPE_CODES = {"ZPK": "001", "ZAK": "008"}  # Thales key type codes (hsm.keys)
_ISO_KEY_FIELDS = (125, 45)  # ISO 8583:1987 and VISA: the key field's default (125), and VISA's other choice
_UNIONPAY_CHECK_BYTES = (3, 4, 5, 6, 7, 8, 0)  # nk_check_value_bytes the link may have (3 first: the demo's)
_DE53 = {"ZPK": "1600000000000000", "ZAK": "2600000000000000"}  # UnionPay DE 53: key type, double length

Respond = Callable[[Message, ResponseCode | str], Message]


def _test_hsm() -> SoftwareHsm:
    return SoftwareHsm(Lmk.thales_test())  # demo only: the public test LMK (module docstring)


def zmk_problem(zmk: str) -> str | None:
    """Why ``zmk`` is no zone master key under the test LMK, or None."""
    try:
        _test_hsm().key_check_value("000", zmk)
    except HsmError as exc:
        return f"not a zone master key under the test LMK ({exc})"
    return None


class SimKeys:
    """One simulator's zone keys. ``zpk`` is the zone PIN key its originated PIN blocks are under (None: it
    originates none); ``zmk`` the zone master key it shares with the bank (None: it answers a key exchange 96)."""

    def __init__(self, scheme: str, session: NetworkSession, respond: Respond, *, zmk: str | None,
                 zpk: str | None) -> None:
        self.scheme = scheme
        self.session = session
        self.respond = respond
        self.zmk = zmk
        self.zpk = zpk
        self.last_kcv = ""  # the check value of the last key given the bank (6 hex)
        self._hsm = _test_hsm()
        problem = zmk_problem(zmk) if zmk is not None else None
        if problem is not None:
            raise ValueError(f"zmk: {problem}")
        key_requests = getattr(session, "key_requests", None)  # as switch.runtime.links.outbound asks
        now = datetime.now(UTC)
        self._mac_request = (key_requests("mac", lambda: "000000", now) or [None])[0] if key_requests else None

    def is_key_exchange(self, request: Message) -> bool:
        """``request`` (network management from the bank) asks for a new key."""
        return self.session.inbound(request).kind is NetMgmt.KEY_EXCHANGE

    def key_type(self, request: Message) -> str:
        """ZAK when ``request`` is what the bank's link sends for the MAC key (its DE 70 and DE 53), else ZPK."""
        mac = self._mac_request
        if mac is not None and all(request.get(f) == mac.get(f) for f in (53, 70)):
            return "ZAK"
        return "ZPK"

    def answer(self, request: Message) -> Message:
        """The answer to the bank's key exchange: 00 with a new key in the network's form, or 96 without one."""
        key_type = self.key_type(request)
        if self.zmk is None:
            log.warning("network simulator: key exchange answered 96: no zmk to give a key under")
            return self.respond(request, ResponseCode.SYSTEM_MALFUNCTION)
        key = self._generate(key_type)
        response = self.respond(request, ResponseCode.APPROVED)
        if not self._carry(response, key_type, key, lambda m: self.session.key_change(m)):
            log.warning("network simulator: no key form its options read back: key exchange answered 96")
            return self.respond(request, ResponseCode.SYSTEM_MALFUNCTION)
        # The bank installs the key on this answer (its requests wait for it meanwhile): what we originate from
        # now on is under it.
        self._given(key_type, key)
        return response

    def change(self, stan: str) -> tuple[Message, ExportedKey] | None:
        """A key change the network starts (a new ZPK): the request and the key, to use once the bank answers 00;
        None when the simulator's options give it no key exchange (or no ``zmk``)."""
        if self.zmk is None:
            return None
        now = datetime.now(UTC)
        key_requests = getattr(self.session, "key_requests", None)
        templates = key_requests("pin", lambda: stan, now) if key_requests else \
            self.session.requests(NetMgmt.KEY_EXCHANGE, lambda: stan, now)
        if not templates:
            return None
        request = templates[0]
        request.mti = "0800"  # the network's own request (UnionPay's key reset is an 0800, public samples)
        key = self._generate("ZPK")
        if not self._carry(request, "ZPK", key, lambda m: self.session.inbound(m).key):
            return None
        return request, key

    def sent(self, key: ExportedKey) -> str | None:
        """Our key change has left: what we originate after it is under the new key (the convention the bank's node
        reads keys by: a network uses a new key for what it sends after the message that carried it,
        switch.exchange.keywindow). The key in use before, to go back to if the bank refuses it."""
        previous = self.zpk
        self._given("ZPK", key)
        return previous

    def refused(self, key: ExportedKey, previous: str | None) -> None:
        """The bank refused our key change (``key``): back to the key it still has, unless a key exchange since
        (the bank's own) gave it another, which stays."""
        if self.zpk == key.under_lmk:
            self.zpk = previous

    def _generate(self, key_type: str) -> ExportedKey:
        # UnionPay carries the key X9.17-encrypted ("X"); ISO 8583:1987 and VISA as a Thales variant cryptogram.
        assert self.zmk is not None
        return self._hsm.generate_key_exported(_TYPE_CODES[key_type], self.zmk,
                                               zmk_scheme="X" if self.scheme == "unionpay" else "U")

    def _given(self, key_type: str, key: ExportedKey) -> None:
        self.last_kcv = key.kcv[:6]
        if key_type == "ZPK":
            self.zpk = key.under_lmk
        log.info("network simulator: new zone %s key given (kcv %s)", "PIN" if key_type == "ZPK" else "MAC",
                 key.kcv[:6])

    def _carry(self, msg: Message, key_type: str, key: ExportedKey,
               read: Callable[[Message], KeyChange | None]) -> bool:
        """Put ``key`` in ``msg`` in the first of the network's forms that ``read`` (the simulator's session)
        reads back as this key; False when none is."""
        put_key = getattr(self.session, "put_key", None)
        if put_key is not None:  # the network's own form (Mastercard: a DE 48 sub-element)
            put_key(msg, KeyChange(key_type, key.under_zmk, key.kcv[:6]))
            return self._reads(read(msg), key)
        if self.scheme == "unionpay":
            msg[53] = _DE53[key_type]
            for count in _UNIONPAY_CHECK_BYTES:
                msg[48] = "NK" + key.under_zmk[1:] + key.kcv[:2 * count]
                if self._reads(read(msg), key):
                    return True
            del msg[48]
            return False
        for field in _ISO_KEY_FIELDS:  # where the link's options put it (VISA allows DE 45 or 125)
            msg[field] = key.under_zmk + key.kcv[:6]
            if self._reads(read(msg), key):
                return True
            del msg[field]
        return False

    @staticmethod
    def _reads(change: KeyChange | None, key: ExportedKey) -> bool:
        # The whole cryptogram, its scheme letter included: a UnionPay link that reads DE 48 as a variant key
        # ("U") would import our X9.17 one as another key.
        return change is not None and change.under_zmk == key.under_zmk and \
            change.check_value[:6] in ("", key.kcv[:6])
