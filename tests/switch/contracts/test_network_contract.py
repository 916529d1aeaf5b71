"""The network contract, proved with a network registered from inside the test suite.

``testnet`` (tests/switch/contracts/testnet.py) has its own framing, ISO 8583:1993 MTIs and action codes, network
management by DE 24 function codes, a reject form, a key exchange in DE 96 and a secret DE 48 sub-element. It is
registered through the ``bulkhead.schemes`` entry-point group (a distribution's metadata written here), and a real
node runs sign-on, echo, requests, a reject, key exchanges and a cutover with it: nothing in ``switch/`` knows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import iso8583
import pytest
import trio
from sqlalchemy import select

from bench.ports import free_port
from switch.config import parse_config
from switch.contracts import registry
from switch.contracts.network import NetMgmt
from switch.infra.db.engine import make_engine
from switch.model.errors import ConfigError
from switch.model.message import Message
from switch.storage.models import JOURNAL
from switch.storage.saf import SafStore
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
from tests.switch.contracts.testnet import NETWORK, SPEC, TestnetFramer

ZMK = HSM.generate_key("000").under_lmk
ZPK1 = HSM.generate_key_exported("001", ZMK)  # the zone PIN key the link starts with
ZPK2 = HSM.generate_key_exported("001", ZMK)  # sent by the network (key exchange it starts)
ZPK3 = HSM.generate_key_exported("001", ZMK)  # asked for by the node (key exchange the node starts)
PAN = "4761739001010010"
REJECTED_PAN = "4761739999999996"


@pytest.fixture
def testnet_registered(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``testnet`` in the ``bulkhead.schemes`` entry-point group: an installed distribution's metadata on sys.path."""
    site = tmp_path_factory.mktemp("site")
    info = site / "bulkhead_testnet-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bulkhead-testnet\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[bulkhead.schemes]\ntestnet = tests.switch.contracts.testnet:NETWORK\n")
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


@dataclass
class Peer:
    """The network's side of the link: answers, rejects and starts requests by testnet's rules."""

    port: int = 0
    bodies: list[bytes] = field(default_factory=list)  # every message the node sent, as on the wire
    answers: dict[str, Message] = field(default_factory=dict)  # the node's answers to our requests, by STAN
    raw_frames: list[bytes] = field(default_factory=list)  # keep-alives and other raw frames the node sent
    stream: trio.SocketStream | None = None
    framer: TestnetFramer = field(default_factory=lambda: TestnetFramer(8192, True))
    got_answer: trio.Event = field(default_factory=trio.Event)
    key_for_node: tuple[str, str] = (ZPK3.under_zmk, ZPK3.kcv)

    def wire(self, mti_prefix: bytes) -> list[dict[str, str]]:
        """What the node sent with this MTI, decoded by the reference decoder from the wire bytes."""
        return [iso8583.decode(body, SPEC)[0] for body in self.bodies if body.startswith(mti_prefix)]

    async def send(self, msg: Message) -> None:
        assert self.stream is not None
        await self.stream.send_all(self.framer.encode(NETWORK.encode(msg)))

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        framer = TestnetFramer(8192, True)
        while data := await stream.receive_some(65536):
            framer.receive_data(data)
            while (frame := framer.next_frame()) is not None:
                if frame.keepalive:
                    self.raw_frames.append(b"keepalive")
                    continue
                self.bodies.append(frame.body)
                msg = NETWORK.decode(frame.body)
                if msg.is_response:
                    self.answers[str(msg.stan)] = msg
                    self.got_answer.set()
                    continue
                reply = self.decide(msg)
                if reply is None:  # reject: the request goes back under a reject header
                    await stream.send_all(framer.reject(frame.body, "12"))
                    continue
                mti, fields = NETWORK.from_canonical(reply)
                if msg.amount is not None and msg.amount > 200_000:
                    fields[39] = "999"  # an action code the network's table does not know
                await stream.send_all(framer.encode(NETWORK.codec.encode(mti, fields)))

    def decide(self, msg: Message) -> Message | None:
        if msg.mti == "0800":
            reply = NETWORK.make_response(msg, "00")
            if msg[70] == "161":  # the node asks for a new key
                reply[96] = self.key_for_node[0] + self.key_for_node[1]
            return reply
        if msg.pan == REJECTED_PAN:
            return None
        amount = msg.amount or 0
        reply = NETWORK.make_response(msg, "00" if amount <= 100_000 else "51")
        reply[38] = "A12345"
        return reply


@asynccontextmanager
async def peer() -> AsyncIterator[Peer]:
    p = Peer()
    p.port = free_port()  # a connector's host: see tests/integration/harness.issuer()
    listeners = await trio.open_tcp_listeners(p.port, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, p.handle, listeners)
        yield p
        nursery.cancel_scope.cancel()


EXTRA = NETWORK_TOML_HEAD + """
[[connectors]]
name = "net"
hosts = ["127.0.0.1:{net}"]
scheme = "testnet"
framing = {{ kind = "tn2" }}
timeout_ms = 2000
echo_interval_s = 30
backoff_initial_ms = 50
backoff_max_ms = 200
zmk = "{zmk}"
pin_key = {{ type = "ZPK", key = "{zpk}" }}
""" + ISSUER_CONNECTOR_TOML

ROUTES = network_routes("net", "network-originated", "520000")




async def test_a_network_registered_by_entry_point_runs_through_a_real_node(
        testnet_registered: None, tmp_path: Path, db_url: str) -> None:
    async with peer() as net, issuer() as iss:
        conf = write_config(tmp_path, db_url, {}, ROUTES,
                            extra=EXTRA.format(tpk=TPK, net=net.port, zmk=ZMK, zpk=ZPK1.under_lmk, issuer=iss.port))
        async with running_node(conf) as node:
            link = node.outbound["net"]
            # Sign-on by the network's rules: 1804 with function code 801, accepted by action code 000.
            assert [m["24"] for m in net.wire(b"1804")] == ["801"]
            assert link.state.value == "signed_on"
            assert await link.echo() == "00"
            assert [m["24"] for m in net.wire(b"1804")] == ["801", "831"]

            pinpad = node.listeners["pinpad"].port
            assert pinpad is not None
            async with client(pinpad) as acquirer:
                # A request: 1200 on the wire, its PIN under the link's zone key, action codes mapped back.
                approved = await acquirer.call(pin_request(PAN, 7001))
                assert (approved[39], approved[38]) == ("00", "A12345")
                (sent,) = net.wire(b"1200")
                assert sent["2"] == PAN and "39" not in sent
                assert pin_under(ZPK1.under_lmk, sent["52"], PAN)
                declined = await acquirer.call(purchase(PAN, amount=150_000, stan=7002))
                assert declined[39] == "51"  # action code 116
                unknown = await acquirer.call(purchase(PAN, amount=250_000, stan=7003))
                assert unknown[39] == "05"  # action code 999 is not in the table: its documented default

                # A reject: the network sends our request back under a reject header; the acquirer is answered
                # at once, the exchange is journaled as rejected, and nothing is reversed (it was not processed).
                rejected = await acquirer.call(purchase(REJECTED_PAN, stan=7004))
                assert rejected[39] == "96"
                assert link.rejected == 1

                # The network changes the zone PIN key (1804/811, the key under the ZMK in DE 96)...
                await net.send(Message("0800", {7: "1207101010", 11: "900001", 70: "161",
                                                96: ZPK2.under_zmk + ZPK2.kcv}))
                with trio.fail_after(5):
                    await net.got_answer.wait()
                assert net.answers["900001"][39] == "00"
                assert [m["24"] for m in net.wire(b"1814")] == ["811"]
                assert node.link_keys["net"].key != ZPK1.under_lmk
                # ...and the next PIN goes out under the new key.
                await acquirer.call(pin_request(PAN, 7005))
                assert pin_under(ZPK2.under_lmk, net.wire(b"1200")[-1]["52"], PAN)

                # The node asks for a new key itself: installed once its check value is confirmed.
                assert await link.manage(NetMgmt.KEY_EXCHANGE) == (True, "00")
                installed = node.link_keys["net"]
                assert HSM.key_check_value("001", installed.key)[:6] == ZPK3.kcv[:6]
                # A key whose check value does not match is refused, and the key in use stays.
                net.key_for_node = (ZPK2.under_zmk, "000000")
                assert (await link.manage(NetMgmt.KEY_EXCHANGE))[0] is False
                assert node.link_keys["net"] == installed

                # A cutover from the network: the business date moves, answered 000.
                net.got_answer = trio.Event()
                await net.send(Message("0800", {7: "1207235959", 11: "900002", 15: "1208", 70: "201"}))
                with trio.fail_after(5):
                    await net.got_answer.wait()
                assert net.answers["900002"][39] == "00"
                assert node.business_dates["net"] == "1208"

                # A request the network originates, with a secret DE 48 sub-element: routed to the issuer, and the
                # journal shows the sub-elements with the secret one hidden.
                net.got_answer = trio.Event()
                originated = purchase("5200000000000007", stan=900003)
                originated[48] = "AB03xyzCV03123"
                await net.send(originated)
                with trio.fail_after(5):
                    await net.got_answer.wait()
                assert net.answers["900003"][39] == "00"
                assert [m["39"] for m in net.wire(b"1210")] == ["000"]

            # A keep-alive from the network is echoed by the framing's rule.
            assert net.stream is not None
            await net.stream.send_all(b"\x00\x00")
            with trio.fail_after(5):
                while b"keepalive" not in net.raw_frames:
                    await trio.sleep(0.01)
        # The node signed off by the network's rules as it stopped.
        assert [m["24"] for m in net.wire(b"1804")][-1] == "802"

    engine = make_engine(db_url)
    try:
        with engine.connect() as db:
            rows = {r.stan: r for r in db.execute(select(JOURNAL))}
        assert rows["007004"].outcome == "rejected" and rows["007004"].response_code == "96"
        assert rows["007003"].response_code == "05"
        assert rows["900003"].destination == "issuer"
        assert '"48":"AB=xyz CV=***"' in rows["900003"].request
        assert "CV03123" not in rows["900003"].request
        assert SafStore(engine).pending_count(None) == 0  # the reject queued no reversal
    finally:
        engine.dispose()
    assert NETWORK.codes.unknown["999"] >= 1


def test_framing_that_is_not_the_networks_is_a_config_error(testnet_registered: None, tmp_path: Path) -> None:
    text = EXTRA.format(tpk=TPK, net=9, zmk=ZMK, zpk=ZPK1.under_lmk, issuer=9).replace(
        'framing = { kind = "tn2" }', 'framing = { kind = "binary2" }')
    with pytest.raises(ConfigError) as info:
        parse_config('[node]\nname = "x"\n' + text, tmp_path / "node.toml")
    assert info.value.key == "connectors[0].framing.kind"
    assert "does not belong to network 'testnet'" in info.value.reason


def test_the_network_is_unknown_without_its_entry_point(tmp_path: Path) -> None:
    text = EXTRA.format(tpk=TPK, net=9, zmk=ZMK, zpk=ZPK1.under_lmk, issuer=9)
    with pytest.raises(ConfigError) as info:
        parse_config('[node]\nname = "x"\n' + text, tmp_path / "node.toml")
    assert info.value.key == "connectors[0].scheme"
    assert "unknown scheme 'testnet'" in info.value.reason
