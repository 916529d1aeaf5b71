"""Mastercard through a real node, both directions, against a small Mastercard host written here.

By Mastercard's rules: a group sign-on (0800, DE 70 061, the institution in DE 2) and echo (270); a generic
acquirer's purchase out to the Mastercard connector (EBCDIC on the wire, the switch's own STAN and DE 7, DE 48 with a
TCC and DE 61 POS data added, the PIN under the link's zone key) and its answer with DE 63 and DE 15 (journaled for
settlement); a decline and an unknown code; a partial reversal (DE 95 in Mastercard's layout, DE 90 naming what the
network saw); a request the network leaves unanswered stood in for, its advice (0120) delivered by store-and-forward;
a key change from each side (the key in DE 48 sub-element 11); a malformed request from the network answered 30; a
purchase the network originates for a card of the bank's, routed to the issuer and answered with DE 63 and DE 48
echoed, the CVC 2 (DE 48.92) neither echoed nor journaled; the group sign-off (062) as the node stops. Run with the
reference code page (cp500) and with cp037.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from sqlalchemy import select

from schemes.mastercard import NETWORK
from schemes.mastercard.fields import banknet_reference, parse_de48, parse_de61
from schemes.mastercard.link import codec_for
from switch.contracts.network import NetMgmt
from switch.infra.db.engine import make_engine
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.storage.models import JOURNAL
from switch.storage.saf import SafStore
from switch.wire.framing import Framer, LengthFraming
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

ZMK = HSM.generate_key("000").under_lmk
ZPK1 = HSM.generate_key_exported("001", ZMK)  # the zone PIN key the link starts with
ZPK2 = HSM.generate_key_exported("001", ZMK)  # sent by the network
ZPK3 = HSM.generate_key_exported("001", ZMK)  # asked for by the node
PAN = "5413330000000019"
SILENT_PAN = "5413330000000027"  # the network never answers its requests (but acknowledges its advices)
ISSUED_PAN = "5200000000000007"  # a card of the bank's: the Mastercard host sends requests for it
GROUP = "12345"
NETWORK_DATA = "MCCABC123"


@dataclass
class MastercardHost:
    """The network's side of the link: answers and originates by Mastercard's rules, in one code page."""

    code_page: str
    port: int = 0
    sent_by_node: list[bytes] = field(default_factory=list)  # bodies as on the wire
    answers: dict[str, Message] = field(default_factory=dict)  # the node's answers to our requests, by STAN
    stream: trio.SocketStream | None = None
    got_answer: trio.Event = field(default_factory=trio.Event)

    def framer(self) -> Framer:
        options = TomlTable({"code_page": self.code_page}, "test", "options")
        return NETWORK.link_options(None, options).framer()

    def wire(self, mti: str) -> list[dict[int, str]]:
        """What the node sent with this MTI, as the link's code page reads the wire bytes."""
        codec = codec_for(self.code_page)
        found = [codec.decode(body) for body in self.sent_by_node]
        return [fields for m, fields in found if m == mti]

    async def send(self, msg: Message) -> None:
        assert self.stream is not None
        await self.stream.send_all(self.framer().encode(NETWORK.encode(msg)))

    async def send_raw(self, data: bytes) -> None:
        assert self.stream is not None
        await self.stream.send_all(data)

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        framer = self.framer()
        raw = LengthFraming().framer()  # the same frames, untranslated: what the node put on the wire
        while data := await stream.receive_some(65536):
            framer.receive_data(data)
            raw.receive_data(data)
            while (frame := framer.next_frame()) is not None:
                wire_frame = raw.next_frame()
                assert wire_frame is not None
                if frame.keepalive:
                    continue
                self.sent_by_node.append(wire_frame.body)
                msg = NETWORK.decode(frame.body)
                if msg.is_response:
                    self.answers[str(msg.stan)] = msg
                    self.got_answer.set()
                    continue
                if msg.pan == SILENT_PAN and msg.mti[1] in "12" and not msg.is_advice:
                    continue
                reply = self.decide(msg)
                mti, fields = NETWORK.from_canonical(reply)
                if msg.amount is not None and msg.amount > 200_000:
                    fields[39] = "Q9"  # a code Mastercard's table does not know
                await stream.send_all(framer.encode(NETWORK.codec.encode(mti, fields)))

    @staticmethod
    def decide(msg: Message) -> Message:
        if msg.mti == "0800":
            reply = NETWORK.make_response(msg, "00")
            if msg[70] == "161":  # the node asks for a new key: DE 48 sub-element 11, key and check value
                reply[48] = "11" + f"{len(ZPK3.under_zmk) + 6:02d}" + ZPK3.under_zmk + ZPK3.kcv[:6]
            return reply
        amount = msg.amount or 0
        reply = NETWORK.make_response(msg, "00" if amount <= 100_000 or msg.is_reversal else "51")
        if msg.mti_class in "12" and not msg.is_advice:
            reply[38] = "A12345"
            reply[63] = NETWORK_DATA  # the Authorization Platform's network data: the Banknet reference
            reply[15] = "1208"  # the settlement date
        return reply


@asynccontextmanager
async def mastercard_host(code_page: str) -> AsyncIterator[MastercardHost]:
    host = MastercardHost(code_page)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    host.port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, host.handle, listeners)
        yield host
        nursery.cancel_scope.cancel()


EXTRA = NETWORK_TOML_HEAD + """
[[connectors]]
name = "mastercard"
hosts = ["127.0.0.1:{mc}"]
scheme = "mastercard"
framing = {{ kind = "binary2" }}
options = {{ code_page = "{code_page}", institutions = ["{group}"] }}
timeout_ms = 1500
echo_interval_s = 30
backoff_initial_ms = 50
backoff_max_ms = 200
zmk = "{zmk}"
pin_key = {{ type = "ZPK", key = "{zpk}" }}
acquiring_institution = "412345"
forwarding_institution = "412345"
""" + ISSUER_CONNECTOR_TOML

ROUTES = network_routes("mastercard", "on-us", "520000").replace(
    '[destinations.mastercard]\nlinks = ["mastercard"]',
    '[destinations.mastercard]\nlinks = ["mastercard"]\n'
    'stand_in = { max_amount = 5000, mti = ["0100", "0200"], processing_codes = ["00"], currency = "840" }')


async def _answered(host: MastercardHost, stan: str) -> Message:
    with trio.fail_after(5):
        while stan not in host.answers:
            await host.got_answer.wait()
            host.got_answer = trio.Event()
    return host.answers[stan]


async def _sent(host: MastercardHost, mti: str, count: int) -> list[dict[int, str]]:
    with trio.fail_after(8):
        while len(host.wire(mti)) < count:
            await trio.sleep(0.02)
    return host.wire(mti)


@pytest.mark.parametrize("code_page", ["cp500", "cp037"])
async def test_mastercard_both_ways_through_a_real_node(tmp_path: Path, db_url: str, code_page: str) -> None:
    async with mastercard_host(code_page) as mc, issuer() as iss:
        conf = write_config(tmp_path, db_url, {}, ROUTES, extra=EXTRA.format(
            tpk=TPK, mc=mc.port, zmk=ZMK, zpk=ZPK1.under_lmk, issuer=iss.port, code_page=code_page, group=GROUP))
        async with running_node(conf) as node:
            link = node.outbound["mastercard"]
            # A group sign-on: 0800 (EBCDIC), DE 70 061, the group in DE 2; then an echo, DE 70 270.
            assert [(m[70], m[2]) for m in mc.wire("0800")] == [("061", GROUP)]
            assert mc.sent_by_node[0][:4] == "0800".encode(code_page)
            assert link.state.value == "signed_on"
            assert await link.echo() == "00"
            assert [m[70] for m in mc.wire("0800")] == ["061", "270"]

            pinpad = node.listeners["pinpad"].port
            assert pinpad is not None
            async with client(pinpad) as acquirer:
                # A generic acquirer's purchase goes out to Mastercard under the switch's own identity, with the
                # TCC and POS data Mastercard requires; the acquirer gets the approval and the network data.
                approved = await acquirer.call(pin_request(PAN, 7001))
                assert (approved[39], approved[38], approved[63], approved[15]) == ("00", "A12345", NETWORK_DATA,
                                                                                     "1208")
                (out,) = mc.wire("0200")
                assert out[2] == PAN and out[41] == "TERM0001" and 39 not in out
                assert out[11] != "007001" and out[32] == "412345" and len(out[7]) == 10
                assert out[48] == "R" and parse_de61(out[61]).country == "840"
                assert pin_under(ZPK1.under_lmk, out[52], PAN)
                assert "TERM0001".encode(code_page) in mc.sent_by_node[-1]
                declined = await acquirer.call(purchase(PAN, amount=150_000, stan=7002))
                assert declined[39] == "51"
                unknown = await acquirer.call(purchase(PAN, amount=250_000, stan=7003))
                assert unknown[39] == "05"  # Q9 is not in Mastercard's table: its documented default

                # A partial reversal of the approved purchase: DE 95 in Mastercard's layout (no fee fields), DE 90
                # naming the original as Mastercard saw it (the switch's STAN).
                original = pin_request(PAN, 7001)
                partial = Message("0420", {**{n: original[n] for n in (2, 3, 4, 7, 12, 13, 22, 37, 41, 42, 49)},
                                           11: "007010", 39: "32",
                                           90: "0200007001" + str(original[7]) + "0" * 22,
                                           95: "000000000400000000000400C00000000C00000000"})
                assert (await acquirer.call(partial))[39] == "00"
                (reversal,) = await _sent(mc, "0420", 1)
                assert reversal[95] == "000000000400" * 2 + "0" * 18
                assert reversal[90][:10] == "0200" + out[11] and reversal[90][10:20] == out[7]

                # Mastercard does not answer: the switch stands in (under its limit) and tells Mastercard by an
                # advice through store-and-forward, in Mastercard's dialect.
                stood_in = await acquirer.call(purchase(SILENT_PAN, amount=2_000, stan=7020), timeout=8)
                assert stood_in[39] == "00" and str(stood_in[38]).startswith("S")
                # The original went out unanswered, so the advice is its repeat (0221: the issuer may have it).
                (advice,) = await _sent(mc, "0221", 1)
                assert advice[2] == SILENT_PAN and advice[48] == "R" and advice[39] == "00"
                assert advice[90][:4] == "0200"

                # Mastercard changes the zone PIN key: 0800, DE 70 161, the key in DE 48 sub-element 11.
                key = ZPK2.under_zmk + ZPK2.kcv[:6]
                await mc.send(Message("0800", {7: "1207101010", 11: "900001", 70: "161",
                                               48: f"11{len(key):02d}{key}"}))
                assert (await _answered(mc, "900001"))[39] == "00"
                assert node.link_keys["mastercard"].key != ZPK1.under_lmk
                await acquirer.call(pin_request(PAN, 7005))
                assert pin_under(ZPK2.under_lmk, mc.wire("0200")[-1][52], PAN)
                # The node asks for one itself: installed once its check value is confirmed.
                assert await link.manage(NetMgmt.KEY_EXCHANGE) == (True, "00")
                assert HSM.key_check_value("001", node.link_keys["mastercard"].key)[:6] == ZPK3.kcv[:6]

                # A malformed request from Mastercard (cut short in DE 63) is answered 30 and the link goes on.
                bad = NETWORK.encode(Message("0100", {2: ISSUED_PAN, 3: "000000", 4: "000000001000",
                                                      7: "1207101010", 11: "900009", 63: NETWORK_DATA}))
                await mc.send_raw(LengthFraming().framer().encode(bad[:-2]))  # digits and letters: either page
                assert (await _answered(mc, "900009"))[39] == "30"

                # A purchase Mastercard originates for a card of the bank's: routed to the issuer, answered back
                # with the network data and DE 48 echoed, the CVC 2 (48.92) neither echoed nor journaled.
                originated = purchase(ISSUED_PAN, stan=900003)
                originated[15] = "1208"
                originated[48] = "R" + "9203" + "737" + "4207" + "0103210"
                originated[63] = NETWORK_DATA
                await mc.send(originated)
                answer = await _answered(mc, "900003")
                assert (answer.mti, answer[39], answer[63]) == ("0210", "00", NETWORK_DATA)
                assert answer[48] == "R42070103210"
                assert iss.stats.received["0200"] == 1
        # The node signed off by group as it stopped.
        assert [m[70] for m in mc.wire("0800")][-1] == "062"

    engine = make_engine(db_url)
    try:
        with engine.connect() as db:
            rows = {r.stan: r for r in db.execute(select(JOURNAL))}
        assert rows["007003"].response_code == "05"
        # The Banknet reference and the settlement date are journaled: DE 63 in the answer (stored as what it adds to
        # the request), DE 15 in its own column.
        answered = rows["007001"]
        assert answered.settlement_date == "1208"
        assert f'"63":"{NETWORK_DATA}"' in (answered.response or "") + (answered.response_delta or "")
        network_originated = rows["900003"]
        assert network_originated.source_link == "mastercard" and network_originated.destination == "issuer"
        assert network_originated.settlement_date == "1208"
        assert banknet_reference(Message("0200", {63: NETWORK_DATA})) == "ABC123"
        assert "92=<3 hidden>" in network_originated.request and "737" not in network_originated.request
        assert parse_de48("R42070103210").get("42") == "0103210"
        assert SafStore(engine).pending_count(None) == 0  # the advice and the reversal were acknowledged
    finally:
        engine.dispose()
