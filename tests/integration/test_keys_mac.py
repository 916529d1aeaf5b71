"""Key exchange under load and MAC, through a real node, against a network host written here (generic ISO 8583).

The link (``mac = true``, a ZPK and a ZAK under the link's ZMK) carries PIN purchases from a pin pad out to the
network and requests the network originates in; both sides MAC everything. While both flow, the network changes
the PIN key and the MAC key (DE 70 161 / 160) and the node asks for new ones (``rekey("pin")``, ``rekey("mac")``):
no transaction fails, on either side. A request whose MAC is wrong is answered 63 on the wire, counted, and never
routed.

The host follows the convention the node documents (switch.exchange.keywindow): a key it sends applies to what it
sends after the message that carried it; it verifies what it receives under its current key, then the previous.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import trio

from hsm.errors import HsmError
from hsm.inprocess import SoftwareBackend
from schemes.generic import SCHEME
from switch.config.links import MacConfig
from switch.exchange import mac
from switch.model.message import Message
from switch.ops.metrics import registry_for
from switch.wire.framing import LengthFraming
from tests.integration.harness import client, issuer, purchase, running_node, write_config
from tests.integration.netkit import (
    HSM,
    ISSUER_CONNECTOR_TOML,
    NETWORK_TOML_HEAD,
    TPK,
    network_routes,
    pin_request,
    pin_under,
)

BACKEND = SoftwareBackend(HSM)
ZMK = HSM.generate_key("000").under_lmk
ZPKS = [HSM.generate_key_exported("001", ZMK) for _ in range(3)]  # start, from the network, asked by the node
ZAKS = [HSM.generate_key_exported("008", ZMK) for _ in range(3)]
PAN = "4761739001010010"
ISSUED_PAN = "5200000000000007"

EXTRA = NETWORK_TOML_HEAD + """
[[connectors]]
name = "net"
hosts = ["127.0.0.1:{net}"]
options = {{ key_exchange_code = "161", mac_key_exchange_code = "160" }}
timeout_ms = 3000
backoff_initial_ms = 50
backoff_max_ms = 200
zmk = "{zmk}"
pin_key = {{ type = "ZPK", key = "{zpk}" }}
mac = true
mac_key = {{ type = "ZAK", key = "{zak}" }}
""" + ISSUER_CONNECTOR_TOML


def _pin_1234(zpk: str, block: bytes) -> bool:
    try:
        return pin_under(zpk, block.hex().upper(), PAN)
    except HsmError:  # not a PIN block under this key
        return False


@dataclass
class Keys:
    current: str
    previous: str | None = None

    def switch(self, key: str) -> None:
        self.previous, self.current = self.current, key

    def both(self) -> tuple[str, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)


@dataclass
class NetworkHost:
    zpk: Keys = field(default_factory=lambda: Keys(ZPKS[0].under_lmk))
    zak: Keys = field(default_factory=lambda: Keys(ZAKS[0].under_lmk))
    port: int = 0
    failures: list[str] = field(default_factory=list)  # what the host found wrong in what the node sent
    answers: dict[str, Message] = field(default_factory=dict)
    answer_bodies: dict[str, bytes] = field(default_factory=dict)
    got: trio.Event = field(default_factory=trio.Event)
    stream: trio.SocketStream | None = None
    framer = LengthFraming("binary2").framer()
    lock: trio.Lock = field(default_factory=trio.Lock)
    approved_out: int = 0

    async def _send(self, msg: Message, *, signed: bool = True, reply_to: object = None) -> bytes:
        assert self.stream is not None
        body = await mac.sign(BACKEND, MacConfig(self.zak.current), self.zak.current, SCHEME, msg) if signed \
            else SCHEME.encode(msg)
        await self.stream.send_all(self.framer.encode(body))
        return body

    async def send(self, msg: Message, *, signed: bool = True, tamper: bool = False) -> None:
        async with self.lock:  # one frame at a time, each under the key current when it leaves
            if tamper:
                body = bytearray(await mac.sign(BACKEND, MacConfig(self.zak.current), self.zak.current, SCHEME,
                                                msg))
                body[20] ^= 1
                assert self.stream is not None
                await self.stream.send_all(self.framer.encode(bytes(body)))
            else:
                await self._send(msg, signed=signed)

    async def change_key(self, code: str, keys: Keys, new: tuple[str, str], stan: str) -> None:
        """The network sends a new key and uses it for what it sends after (its convention)."""
        async with self.lock:
            await self._send(Message("0800", {7: "1207101010", 11: stan, 70: code, 125: new[0] + new[1]}),
                             signed=False)
            keys.switch(HSM.import_key("001" if keys is self.zpk else "008", ZMK, new[0]).under_lmk)

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        framer = LengthFraming("binary2").framer()
        while data := await stream.receive_some(65536):
            framer.receive_data(bytes(data))
            while (frame := framer.next_frame()) is not None:
                msg = SCHEME.decode(frame.body)
                if msg.is_response:
                    self.answers[str(msg.stan)] = msg
                    self.answer_bodies[str(msg.stan)] = frame.body
                    if msg.mti != "0810" and not await mac.verify(BACKEND, MacConfig(ZAKS[0].under_lmk),
                                                                  self.zak.both(), msg, frame.body):
                        self.failures.append(f"MAC of the node's {msg.mti} {msg.stan}")
                    self.got.set()
                    continue
                if msg.mti == "0800":
                    await self._answer_netmgmt(msg)
                    continue
                if not await mac.verify(BACKEND, MacConfig(ZAKS[0].under_lmk), self.zak.both(), msg, frame.body):
                    self.failures.append(f"MAC of the node's {msg.mti} {msg.stan}")
                block = msg.get(52)
                if isinstance(block, bytes) and not any(_pin_1234(k, block) for k in self.zpk.both()):
                    self.failures.append(f"PIN of the node's {msg.mti} {msg.stan}")
                reply = SCHEME.make_response(msg, "00")
                self.approved_out += 1
                await self.send(reply)

    async def _answer_netmgmt(self, msg: Message) -> None:
        reply = SCHEME.make_response(msg, "00")
        keys, new = {"161": (self.zpk, ZPKS[2]), "160": (self.zak, ZAKS[2])}.get(str(msg[70]), (None, None))
        async with self.lock:
            if keys is not None and new is not None:
                reply[125] = new.under_zmk + new.kcv
            await self._send(reply, signed=False)
            if keys is not None and new is not None:  # used from the answer on
                keys.switch(HSM.import_key("001" if keys is self.zpk else "008", ZMK, new.under_zmk).under_lmk)

    async def answered(self, stan: str) -> Message:
        with trio.fail_after(10):
            while stan not in self.answers:
                await self.got.wait()
                self.got = trio.Event()
        return self.answers[stan]


async def test_key_exchanges_under_load_fail_no_transaction_and_a_bad_mac_is_answered_63(tmp_path: Path,
                                                                                         db_url: str) -> None:
    host = NetworkHost()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    host.port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery, issuer() as iss:
        nursery.start_soon(trio.serve_listeners, host.handle, listeners)
        conf = write_config(tmp_path, db_url, {}, network_routes("net", "on-us", "520000"), extra=EXTRA.format(
            tpk=TPK, net=host.port, zmk=ZMK, zpk=ZPKS[0].under_lmk, zak=ZAKS[0].under_lmk, issuer=iss.port))
        async with running_node(conf) as node:
            link = node.outbound["net"]
            pinpad = node.listeners["pinpad"].port
            assert pinpad is not None
            results: list[str] = []
            stans = itertools.count(1)
            originated = itertools.count(800_001)

            async def acquirer_load() -> None:
                async with client(pinpad) as acquirer:
                    for _ in range(40):
                        results.append(str((await acquirer.call(pin_request(PAN, next(stans))))[39]))

            async def network_load() -> None:  # pipelined: many in flight while the keys change
                sent = []
                for _ in range(200):
                    stan = f"{next(originated):06d}"
                    await host.send(purchase(ISSUED_PAN, stan=int(stan)))
                    sent.append(stan)
                    await trio.sleep(0.001)
                for stan in sent:
                    results.append(str((await host.answered(stan))[39]))

            async def key_changes() -> None:
                await trio.sleep(0.05)
                await host.change_key("161", host.zpk, (ZPKS[1].under_zmk, ZPKS[1].kcv), "900001")
                await trio.sleep(0.05)
                await host.change_key("160", host.zak, (ZAKS[1].under_zmk, ZAKS[1].kcv), "900002")
                await trio.sleep(0.05)
                assert await link.rekey("pin") == (True, "00")
                await trio.sleep(0.05)
                assert await link.rekey("mac") == (True, "00")

            async with trio.open_nursery() as load:
                load.start_soon(acquirer_load)
                load.start_soon(acquirer_load)
                load.start_soon(network_load)
                load.start_soon(key_changes)
            assert (await host.answered("900001"))[39] == "00" and (await host.answered("900002"))[39] == "00"
            assert results == ["00"] * 280, sorted(set(results))
            assert host.failures == []
            assert node.mac_failures["net"] == 0
            # The node now uses the keys it asked for.
            assert HSM.key_check_value("001", node.link_keys["net"].key)[:6] == ZPKS[2].kcv[:6]
            assert HSM.key_check_value("008", node.mac_windows["net"].current)[:6] == ZAKS[2].kcv[:6]

            # A request whose MAC is wrong: answered 63 on the wire (MACed), counted, never routed.
            routed = iss.stats.received.get("0200", 0)
            await host.send(purchase(ISSUED_PAN, stan=899_999), tamper=True)
            answer = await host.answered("899999")
            assert answer[39] == "63"
            assert SCHEME.codec.decode(host.answer_bodies["899999"])[1][39] == "63"
            assert node.mac_failures["net"] == 1
            assert iss.stats.received.get("0200", 0) == routed
            assert next(e for e in node.status()["links"] if e["name"] == "net")["mac_failures"] == 1
            assert node.status()["mac_failures"] == [{"link": "net", "count": 1}]
            assert registry_for(node).get_sample_value("bulkhead_mac_failures_total", {"link": "net"}) == 1
        nursery.cancel_scope.cancel()
