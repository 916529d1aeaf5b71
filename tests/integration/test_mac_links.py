"""MAC links through a real node, against a network host written here that
verifies the MAC of everything the node sends it (as a MAC-checking network does) and follows the node's documented
key convention (switch.exchange.keywindow: a key the network sends applies to what it sends after the message that
carried it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import trio

from schemes.generic import SCHEME
from switch.config.links import MacConfig
from switch.exchange import mac
from switch.model.message import Message
from switch.wire.framing import LengthFraming
from tests.integration.harness import client, issuer, port_of, purchase, running_node, write_config
from tests.integration.netkit import HSM, ISSUER_CONNECTOR_TOML, NETWORK_TOML_HEAD, TPK, network_routes
from tests.integration.test_keys_mac import BACKEND, ZAKS, ZMK, ZPKS

PAN = "4761739001010010"

NET = NETWORK_TOML_HEAD + """
[[connectors]]
name = "net"
hosts = ["127.0.0.1:{net}"]
options = {{ key_exchange_code = "161", mac_key_exchange_code = "160" }}
timeout_ms = {timeout_ms}
backoff_initial_ms = 50
backoff_max_ms = 200
zmk = "{zmk}"
pin_key = {{ type = "ZPK", key = "{zpk}" }}
mac = true
mac_key = {{ type = "ZAK", key = "{zak}" }}
""" + ISSUER_CONNECTOR_TOML


@dataclass
class MacNetwork:
    zak: str = field(default_factory=lambda: ZAKS[0].under_lmk)
    old_zak: str | None = None
    port: int = 0
    hold_purchases: bool = False
    held: list[Message] = field(default_factory=list)
    received: list[tuple[str, bool]] = field(default_factory=list)  # (MTI, MAC verified) of what the node sent
    answers: list[tuple[Message, bytes]] = field(default_factory=list)  # the node's answers to our requests
    stream: trio.SocketStream | None = None
    framer = LengthFraming("binary2").framer()

    def keys(self) -> tuple[str, ...]:
        return (self.zak,) if self.old_zak is None else (self.zak, self.old_zak)

    async def signed(self, msg: Message) -> bytes:
        return self.framer.encode(await mac.sign(BACKEND, MacConfig(self.zak), self.zak, SCHEME, msg))

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        framer = LengthFraming("binary2").framer()
        while data := await stream.receive_some(65536):
            framer.receive_data(bytes(data))
            while (frame := framer.next_frame()) is not None:
                msg = SCHEME.decode(frame.body)
                if msg.is_response:
                    self.answers.append((msg, frame.body))
                    continue
                if msg.mti == "0800":
                    await self._netmgmt(stream, msg)
                    continue
                verified = await mac.verify(BACKEND, MacConfig(self.zak), self.keys(), msg, frame.body)
                self.received.append((msg.mti, verified))
                if msg.mti == "0200" and self.hold_purchases:
                    self.held.append(msg)
                    continue
                # A message whose MAC does not verify is declined 63 (security violation), as the node itself does.
                code = "00" if verified else "63"
                await stream.send_all(await self.signed(SCHEME.make_response(msg, code)))

    async def _netmgmt(self, stream: trio.SocketStream, msg: Message) -> None:
        reply = SCHEME.make_response(msg, "00")
        if msg.get(70) != "160":
            await stream.send_all(self.framer.encode(SCHEME.encode(reply)))
            return
        # A new MAC key: the 0810 that carries it, and right behind it (one write) the answers it held, MACed under
        # the new key, as the network's convention says.
        new = ZAKS[2]
        reply[125] = new.under_zmk + new.kcv
        self.old_zak, self.zak = self.zak, HSM.import_key("008", ZMK, new.under_zmk).under_lmk
        wire = self.framer.encode(SCHEME.encode(reply))
        for held in self.held:
            wire += await self.signed(SCHEME.make_response(held, "00"))
        self.held.clear()
        await stream.send_all(wire)


async def _network() -> tuple[MacNetwork, list[trio.SocketListener]]:
    host = MacNetwork()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    host.port = listeners[0].socket.getsockname()[1]
    return host, listeners


def _conf(tmp_path: Path, db_url: str, host: MacNetwork, issuer_port: int, timeout_ms: int) -> Path:
    return write_config(tmp_path, db_url, {}, network_routes("net", "on-us", "520000"), saf_delay_ms=50,
                        saf_retry_ms=100, extra=NET.format(tpk=TPK, net=host.port, zmk=ZMK, zpk=ZPKS[0].under_lmk,
                                                           zak=ZAKS[0].under_lmk, issuer=issuer_port,
                                                           timeout_ms=timeout_ms))


async def test_the_reversal_the_saf_sends_to_a_mac_link_carries_a_mac(tmp_path: Path, db_url: str) -> None:
    # A purchase to a MAC link times out: the node answers 91 and queues a reversal (money may have moved). The SAF
    # forwarder sends it MACed (switch.runtime.keyring.MacSafLink), and a decline for its MAC is not an
    # acknowledgement.
    host, listeners = await _network()
    host.hold_purchases = True  # never answered
    async with trio.open_nursery() as nursery, issuer() as iss:
        nursery.start_soon(trio.serve_listeners, host.handle, listeners)
        async with running_node(_conf(tmp_path, db_url, host, iss.port, timeout_ms=400)) as node:
            async with client(port_of(node, "pinpad")) as acquirer:
                assert (await acquirer.call(purchase(PAN, stan=4711)))[39] == "91"
            with trio.fail_after(10):
                while not any(i.status != "pending" for i in node.saf.list_items()):
                    await trio.sleep(0.02)
            entries = [(i.mti, i.status, i.last_response_code) for i in node.saf.list_items()]
        nursery.cancel_scope.cancel()
    assert ("0200", True) in host.received
    # Were it sent without a MAC, the network would decline it 63 and a queue taking that as delivered would leave
    # the cardholder charged.
    assert ("0400", True) in host.received, f"the network got {host.received}; the queue says {entries}"


async def test_an_answer_macd_under_the_key_the_node_just_asked_for_is_not_thrown_away(tmp_path: Path,
                                                                                        db_url: str) -> None:
    # The node asks for a new MAC key (links rekey net --key mac). The network answers with the key and uses it for
    # what it sends after that answer, here the answer to a purchase right behind it: that answer waits for the
    # key's import (as requests do) and verifies under the new key, rather than failing under the old ones and
    # turning an approval into a 91 and a reversal.
    host, listeners = await _network()
    host.hold_purchases = True
    async with trio.open_nursery() as nursery, issuer() as iss:
        nursery.start_soon(trio.serve_listeners, host.handle, listeners)
        async with running_node(_conf(tmp_path, db_url, host, iss.port, timeout_ms=3000)) as node:
            answers: list[Message] = []
            async with client(port_of(node, "pinpad")) as acquirer, trio.open_nursery() as calls:
                async def call() -> None:
                    answers.append(await acquirer.call(purchase(PAN, stan=4712)))

                calls.start_soon(call)
                with trio.fail_after(5):
                    while not host.held:
                        await trio.sleep(0.01)
                host.hold_purchases = False
                assert await node.outbound["net"].rekey("mac") == (True, "00")
            failures = node.mac_failures["net"]
        nursery.cancel_scope.cancel()
    assert [a[39] for a in answers] == ["00"], f"answered {[a[39] for a in answers]}, MAC failures {failures}"


async def test_network_management_answers_are_not_macd(tmp_path: Path, db_url: str) -> None:
    # README: "Network management (08xx) is neither MACed nor verified, except UnionPay's key reset": the node's
    # answer to the network's echo carries no MAC.
    host, listeners = await _network()
    async with trio.open_nursery() as nursery, issuer() as iss:
        nursery.start_soon(trio.serve_listeners, host.handle, listeners)
        async with running_node(_conf(tmp_path, db_url, host, iss.port, timeout_ms=3000)):
            assert host.stream is not None
            await host.stream.send_all(host.framer.encode(SCHEME.encode(
                Message("0800", {7: "1207101010", 11: "900001", 70: "301"}))))
            with trio.fail_after(5):
                while not host.answers:
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    (answer, _), = host.answers
    assert answer.mti == "0810" and 64 not in answer.fields and 128 not in answer.fields, answer.fields.keys()
