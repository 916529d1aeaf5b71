"""The links' keys: each link's zone PIN key (ZPK) and zone MAC key (ZAK) with their two-key windows
(switch.exchange.keywindow), MAC settings (switch.exchange.mac), and a key exchange's import through the HSM.

The node owns one and its pipeline ports delegate here: which key DE 52 arrives under (by the request's receive
time once a key exchange has happened), which MAC keys to try on a message, the key a request is MACed under,
and installing a new key from a key exchange (imported from under the link's zone master key, confirmed by its
check value or, for UnionPay's MAC key reset, by the carrying message's MAC under the new key).
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import trio

from atmp.keys import TerminalKeys
from hsm.api import Hsm, PinKey
from hsm.errors import HsmError
from switch.config import NodeConfig
from switch.config.links import ConnectorConfig, ListenerConfig, MacConfig
from switch.contracts.network import KeyChange
from switch.contracts.registry import network
from switch.exchange import mac
from switch.exchange.keywindow import KeyWindow
from switch.exchange.mac import ZAK_TYPE, mac_input, mac_of
from switch.exchange.ports import Answer
from switch.model.errors import BulkheadError
from switch.model.message import Message
from switch.runtime.links.outbound import OutboundLink

log = logging.getLogger("bulkhead.node")

ZPK_TYPE = "001"  # payShield key type code of a zone PIN key
_KEY_TYPES = {"ZPK": ZPK_TYPE, "ZAK": ZAK_TYPE}  # and of a zone MAC key (hsm.md section 3)


class Keyring:
    """The keys of a node's links (see the module docstring)."""

    def __init__(self, config: NodeConfig) -> None:
        self.link_keys: dict[str, PinKey] = {x.name: x.pin_key for x in config.listeners if x.pin_key is not None}
        self.link_keys.update({c.name: c.pin_key for c in config.connectors if c.pin_key is not None})
        self.terminal_keys = TerminalKeys(self.link_keys.get)
        self.zmks: dict[str, str] = {x.name: x.zmk for x in config.listeners if x.zmk}
        self.zmks.update({c.name: c.zmk for c in config.connectors if c.zmk})
        # Dynamic key exchange: each link's current and previous zone PIN and MAC keys (switch.exchange.keywindow),
        # for the links that exchange keys (a zmk); MAC on the links configured for it (switch.exchange.mac).
        links: list[ListenerConfig | ConnectorConfig] = [*config.listeners, *config.connectors]
        self.pin_windows: dict[str, KeyWindow] = {
            x.name: KeyWindow(x.pin_key.key, int(x.key_window_s * 1e9)) for x in links
            if x.zmk and x.pin_key is not None and x.pin_key.type == "ZPK"}
        self.mac_windows: dict[str, KeyWindow] = {
            x.name: KeyWindow(x.mac_key, int(x.key_window_s * 1e9)) for x in links if x.mac_key}
        self._key_windows_s = {x.name: x.key_window_s for x in links}
        self.macs: dict[str, MacConfig] = {x.name: x.mac for x in links if x.mac is not None}
        # A request whose MAC fails is answered the link's code, else its network's (UnionPay A0, ISO 87 63).
        self.mac_failure_codes: dict[str, str] = {
            x.name: x.mac.failure_code or network(x.scheme).mac_failure_code
            for x in links if x.mac is not None}
        self.mac_failures: Counter[str] = Counter()  # per link: requests answered for a bad MAC, responses dropped
        self._key_settled: dict[str, trio.Event] = {}  # links with a key exchange under way

    def source_key(self, source: str, request: Message) -> PinKey | None:
        window = self.pin_windows.get(source)
        if window is not None and window.previous is not None:  # a key exchange happened: by receive time
            return PinKey("ZPK", window.at(request.meta.received_ns))
        return self.terminal_keys.key_for(source, request)

    def key_pending(self, link: str, received_ns: int) -> bool:
        """Whether a request received on ``link`` at ``received_ns`` waits for the key exchange under way."""
        return link in self._key_settled and any(
            w.pending_for(received_ns) for w in (self.pin_windows.get(link), self.mac_windows.get(link))
            if w is not None)

    async def key_settled(self, link: str) -> None:
        """Until the key exchange under way on ``link`` (if any) is over."""
        event = self._key_settled.get(link)
        if event is not None:
            await event.wait()

    def _windows(self, link: str, key_type: str | None) -> list[KeyWindow]:
        """The link's windows of ``key_type`` ("ZPK" or "ZAK"; None: both)."""
        kinds = (self.pin_windows, self.mac_windows) if key_type is None else \
            (self.pin_windows,) if key_type == "ZPK" else (self.mac_windows,)
        return [w for w in (windows.get(link) for windows in kinds) if w is not None]

    def key_changing(self, link: str, since_ns: int, key_type: str | None = None) -> None:
        """A key exchange of ``key_type`` (None: not known yet, say an answer not read yet) is under way on
        ``link``: requests received from ``since_ns`` on wait for its outcome."""
        for window in self._windows(link, key_type):
            if window.changing_since_ns is None:
                window.changing_since_ns = since_ns
        self._key_settled.setdefault(link, trio.Event())

    def key_done(self, link: str, key_type: str | None = None) -> None:
        """The key exchange of ``key_type`` (None: every one the node started) on ``link`` is over, installed or
        not. Its waiters go on once no exchange of the other key is still under way (a PIN key reset followed by
        a MAC key reset: the requests MACed under the new ZAK still wait for it)."""
        now = time.perf_counter_ns()
        for window in self._windows(link, key_type):
            window.changing_since_ns = None
            if window.expired(now):
                window.forget_previous()
        if any(w.changing_since_ns is not None for w in self._windows(link, None)):
            return
        event = self._key_settled.pop(link, None)
        if event is not None:
            event.set()

    def mac_keys(self, link: str, received_ns: int) -> tuple[str, ...]:
        """The MAC keys to try on a message received on ``link`` at ``received_ns`` (two-key window)."""
        return self.mac_windows[link].candidates(received_ns, time.perf_counter_ns())

    def mac_key(self, link: str) -> str:
        """The MAC key of what the node sends on ``link`` now."""
        return self.mac_windows[link].current

    def mac_failed(self, link: str) -> None:
        self.mac_failures[link] += 1

    def link_key(self, link: str) -> PinKey | None:
        return self.link_keys.get(link)

    async def install_key(self, hsm: Hsm | None, link: str, change: KeyChange, carrier: Message | None = None) -> bool:
        """A new zone PIN key (ZPK) or zone MAC key (ZAK) for ``link`` from its key exchange: imported from under
        the link's zone master key through the HSM and confirmed, by its check value when the network sends one,
        else (a MAC key, UnionPay's key reset) by the MAC of ``carrier``, the message that carried it, under the
        new key. It is current from ``carrier``'s receive time (the previous one stays in the two-key window).
        False, and the old key stays, when any of it fails. Ends the key exchange under way on the link."""
        try:
            return await self._install_key(hsm, link, change, carrier)
        finally:
            self.key_done(link, change.key_type)

    async def _install_key(self, hsm: Hsm | None, link: str, change: KeyChange, carrier: Message | None) -> bool:
        zmk = self.zmks.get(link)
        type_code = _KEY_TYPES.get(change.key_type)
        if hsm is None or zmk is None or type_code is None:
            log.warning("link %s: key exchange refused (%s)", link,
                        "no zmk on the link" if zmk is None else "no HSM" if hsm is None
                        else f"key type {change.key_type}")
            return False
        try:
            imported = await hsm.import_key(type_code, zmk, change.under_zmk)
            if change.check_value:
                proved = imported.kcv[:6].upper() == change.check_value[:6].upper()
                why = f"check value {imported.kcv[:6]}, the network says {change.check_value[:6]}"
            else:
                proved = await self._proved_by_mac(hsm, link, change, imported.under_lmk, carrier)
                why = "no check value, and the message's MAC does not verify under the new key"
        except HsmError as exc:
            log.error("link %s: new key not imported (HSM error %s)", link, exc.code)
            return False
        if not proved:
            log.error("link %s: new %s refused: %s", link, change.key_type, why)
            return False
        activated = carrier.meta.received_ns if carrier is not None and carrier.meta.received_ns else \
            time.perf_counter_ns()
        windows = self.pin_windows if change.key_type == "ZPK" else self.mac_windows
        window = windows.get(link)
        if window is None:
            windows[link] = KeyWindow(imported.under_lmk, int(self._key_windows_s.get(link, 60.0) * 1e9))
        else:
            window.install(imported.under_lmk, activated)
        if change.key_type == "ZPK":
            self.link_keys[link] = PinKey("ZPK", imported.under_lmk)
        log.info("link %s: new zone %s key in use (kcv %s)", link, "PIN" if change.key_type == "ZPK" else "MAC",
                 imported.kcv[:6])
        return True

    async def _proved_by_mac(self, hsm: Hsm, link: str, change: KeyChange, key: str,
                             carrier: Message | None) -> bool:
        """UnionPay proves a new MAC key by the key-reset message's own MAC under it (schemes.unionpay.session):
        the MAC field of ``carrier`` over the bytes before it, with the link's MAC algorithm."""
        wire = carrier.meta.wire if carrier is not None else None
        mac = mac_of(carrier) if carrier is not None else None
        if change.key_type != "ZAK" or wire is None or mac is None:
            return False
        data = mac_input(wire, mac)
        if data is None:
            return False
        cfg = self.macs.get(link) or MacConfig(key)
        return await hsm.verify_mac(ZAK_TYPE, key, data, mac.hex().upper(), algorithm=cfg.algorithm,
                                         padding=cfg.padding)


class MacSafLink:
    """A MAC link as the store-and-forward forwarder sees it: what it sends is MACed under the link's current MAC
    key, an answer counts only when its MAC verifies (then it is taken as no answer: sent again later), and the
    link's MAC-failure code is not an acknowledgement (the network refused the MAC, not the reversal): without
    this a reversal refused for its missing MAC would be recorded as delivered and never applied."""

    def __init__(self, link: OutboundLink, keyring: Keyring, hsm: Hsm | None) -> None:
        self.link = link
        self.keyring = keyring
        self.hsm = hsm

    async def request(self, msg: Message, timeout: float | None = None) -> Answer:
        name, ring, hsm = self.link.name, self.keyring, self.hsm
        if hsm is None:
            raise BulkheadError(f"link {name}: no HSM to MAC with")
        cfg = ring.macs[name]
        await mac.sign(hsm, cfg, ring.mac_key(name), self.link.network, msg)
        answer = await self.link.request(msg, timeout)
        if not isinstance(answer, Message):
            return answer
        received = answer.meta.received_ns
        if ring.key_pending(name, received):
            await ring.key_settled(name)
        wire = answer.meta.wire
        if wire is None or not await mac.verify(hsm, cfg, ring.mac_keys(name, received), answer, wire):
            ring.mac_failed(name)
            log.warning("link %s: the answer to %s stan %s has a MAC that does not verify: not acknowledged", name,
                        msg.mti, msg.stan)
            return None
        mac.strip(answer)
        if answer.response_code == ring.mac_failure_codes.get(name):
            log.warning("link %s: %s stan %s refused for its MAC (%s): not acknowledged", name, msg.mti, msg.stan,
                        answer.response_code)
            return None
        return answer
