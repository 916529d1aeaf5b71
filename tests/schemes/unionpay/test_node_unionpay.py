"""UnionPay through a real node, both ways, against a tiny UnionPay host on loopback: the same checks the test-only
network passes (tests/switch/contracts/test_network_contract.py), by UnionPay's rules.

The node signs on (0820, DE 70 001) under the 46-byte header with its member ids; a generic acquirer's purchase
routed to the connector with ``scheme = "unionpay"`` goes out with its PIN under the link's zone key and is
answered (approved, declined, an unknown code read as 05); UnionPay rejecting a request (its header's reject code)
answers the acquirer at once and queues nothing; UnionPay's key reset (0800, DE 70 101, the key in DE 48 NK) and a
key exchange the node asks for change the zone PIN key; UnionPay's cutover notification moves the business date; a
request UnionPay sends for one of the bank's cards reaches the node's routing and is answered under the reply
header; heartbeats are not answered; the node signs off as it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import iso8583
import trio
from sqlalchemy import select

from hsm.software import ExportedKey
from schemes.unionpay import SCHEME, SPEC
from schemes.unionpay.framing import UnionPayFramer, UnionPayFraming
from schemes.unionpay.header import CupsHeader
from switch.contracts.network import NetMgmt
from switch.infra.db.engine import make_engine
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

ZMK = HSM.generate_key("000").under_lmk
ZPK1 = HSM.generate_key_exported("001", ZMK, zmk_scheme="X")  # the zone PIN key the link starts with
ZPK2 = HSM.generate_key_exported("001", ZMK, zmk_scheme="X")  # UnionPay's key reset
ZPK3 = HSM.generate_key_exported("001", ZMK, zmk_scheme="X")  # asked for by the node
PAN = "6226010562885479"  # another bank's UnionPay card: out to UnionPay
REJECTED_PAN = "6226019999999996"
BANK_PAN = "6200000000000007"  # one of the bank's cards: UnionPay sends requests for it
BANK_ID, CUPS_ID = "48020000", "00010000"


def nk(key: ExportedKey) -> str:
    """DE 48 of a key reset: usage NK, the key's 16 bytes under the ZMK, then its 3-byte check value."""
    assert key.under_zmk.startswith("X")
    return "NK" + key.under_zmk[1:] + key.kcv[:6]


@dataclass
class Host:
    """UnionPay's side of the link: answers, rejects and starts requests by UnionPay's rules."""

    port: int = 0
    frames: list[tuple[CupsHeader, bytes]] = field(default_factory=list)  # every frame the node sent
    answers: dict[str, Message] = field(default_factory=dict)  # the node's answers to our requests, by STAN
    prefixes: list[bytes] = field(default_factory=list)  # the 4-digit length of each frame, as received
    heartbeats: int = 0  # 0000 frames the node sent
    stream: trio.SocketStream | None = None
    framer: UnionPayFramer = field(default_factory=lambda: UnionPayFraming(
        source_id=CUPS_ID, destination_id=BANK_ID).framer())
    got_answer: trio.Event = field(default_factory=trio.Event)
    key_for_node: str = field(default_factory=lambda: nk(ZPK3))

    def wire(self, mti: bytes) -> list[dict[str, str]]:
        """What the node sent with this MTI, decoded by pyiso8583 on UnionPay's spec from the wire bytes."""
        return [iso8583.decode(body, SPEC)[0] for _, body in self.frames if body.startswith(mti)]

    async def send(self, msg: Message) -> None:
        assert self.stream is not None
        await self.stream.send_all(self.framer.encode(SCHEME.encode(msg)))

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        framer = UnionPayFraming(source_id=CUPS_ID, destination_id=BANK_ID).framer()
        while data := await stream.receive_some(65536):
            framer.receive_data(data)
            self.prefixes.append(bytes(data[:4]))
            while (frame := framer.next_frame()) is not None:
                if frame.keepalive:
                    self.heartbeats += 1
                    continue
                self.frames.append((CupsHeader.parse(frame.header), frame.body))
                msg = SCHEME.decode(frame.body)
                if msg.is_response:
                    self.answers[str(msg.stan)] = msg
                    self.got_answer.set()
                    continue
                if msg.pan == REJECTED_PAN:  # sent back under a reject header: destination id refused
                    await stream.send_all(framer.reject(frame, "00045"))
                    continue
                mti, fields = SCHEME.from_canonical(self.decide(msg))
                if msg.amount is not None and msg.amount > 200_000:
                    fields[39] = "Q1"  # a code UnionPay's table does not know
                await stream.send_all(framer.encode(SCHEME.codec.encode(mti, fields), reply_to=frame))

    def decide(self, msg: Message) -> Message:
        reply = SCHEME.make_response(msg, "00")
        if msg.is_network:
            if msg[70] == "101":  # the node asks for a new key: this host answers with it
                reply[53], reply[48] = msg[53], self.key_for_node
            return reply
        amount = msg.amount or 0
        reply = SCHEME.make_response(msg, "00" if amount <= 100_000 else "51")
        reply[38] = "A12345"
        return reply


@asynccontextmanager
async def host() -> AsyncIterator[Host]:
    h = Host()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    h.port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, h.handle, listeners)
        yield h
        nursery.cancel_scope.cancel()


EXTRA = NETWORK_TOML_HEAD + """
[[connectors]]
name = "cups"
hosts = ["127.0.0.1:{cups}"]
scheme = "unionpay"
framing = {{ kind = "unionpay", source_id = "{bank}", destination_id = "{cups_id}" }}
options = {{ institution = "{bank}", nk_check_value_bytes = 3 }}
timeout_ms = 2000
echo_interval_s = 30
backoff_initial_ms = 50
backoff_max_ms = 200
zmk = "{zmk}"
pin_key = {{ type = "ZPK", key = "{zpk}" }}
""" + ISSUER_CONNECTOR_TOML

ROUTES = network_routes("cups", "bank-cards", "620000")





async def test_unionpay_through_a_real_node_both_ways(tmp_path: Path, db_url: str) -> None:
    async with host() as cups, issuer() as iss:
        conf = write_config(tmp_path, db_url, {}, ROUTES, extra=EXTRA.format(
            tpk=TPK, cups=cups.port, bank=BANK_ID, cups_id=CUPS_ID, zmk=ZMK, zpk=ZPK1.under_lmk, issuer=iss.port))
        async with running_node(conf) as node:
            link = node.outbound["cups"]
            # Sign-on by UnionPay's rules: 0820 with DE 70 001 and the bank's institution id, under a header from
            # the bank's member id to UnionPay's, after a 4-digit length.
            (signon,) = cups.wire(b"0820")
            assert (signon["70"], signon["33"]) == ("001", BANK_ID)
            header, body = cups.frames[0]
            assert (header.source_id, header.destination_id, header.reject_code) == (BANK_ID, CUPS_ID, "00000")
            assert header.total_length == 46 + len(body) and cups.prefixes[0] == b"%04d" % (46 + len(body))
            assert link.state.value == "signed_on"
            assert await link.echo() == "00"
            assert [m["70"] for m in cups.wire(b"0820")] == ["001", "301"]

            pinpad = node.listeners["pinpad"].port
            assert pinpad is not None
            async with client(pinpad) as acquirer:
                # A generic acquirer's purchase goes out to UnionPay, its PIN under the link's zone key.
                approved = await acquirer.call(pin_request(PAN, 7001))
                assert (approved[39], approved[38]) == ("00", "A12345")
                (sent,) = cups.wire(b"0200")
                assert sent["2"] == PAN and "39" not in sent
                assert pin_under(ZPK1.under_lmk, sent["52"], PAN)
                declined = await acquirer.call(purchase(PAN, amount=150_000, stan=7002))
                assert declined[39] == "51"
                unknown = await acquirer.call(purchase(PAN, amount=250_000, stan=7003))
                assert unknown[39] == "05"  # Q1 is not in UnionPay's table: its documented default

                # UnionPay rejects a request (reject code in its header): the acquirer is answered at once, the
                # exchange is journaled as rejected, nothing is reversed (it was not processed).
                rejected = await acquirer.call(purchase(REJECTED_PAN, stan=7004))
                assert rejected[39] == "96"
                assert link.rejected == 1

                # UnionPay resets the zone PIN key: 0800, DE 70 101, DE 53 "16" (PIN key, double length), the key
                # under the ZMK in DE 48 usage NK followed here by its check value (nk_check_value_bytes = 3).
                await cups.send(Message("0800", {7: "0517094653", 11: "900001", 48: nk(ZPK2),
                                                 53: "1600000000000000", 70: "101", 100: BANK_ID}))
                with trio.fail_after(5):
                    await cups.got_answer.wait()
                assert cups.answers["900001"].mti == "0810" and cups.answers["900001"][39] == "00"
                assert node.link_keys["cups"].key != ZPK1.under_lmk
                await acquirer.call(pin_request(PAN, 7005))
                assert pin_under(ZPK2.under_lmk, cups.wire(b"0200")[-1]["52"], PAN)

                # The node asks for a new key itself; installed once its check value is confirmed.
                assert await link.manage(NetMgmt.KEY_EXCHANGE) == (True, "00")
                request = cups.wire(b"0820")[-1]
                assert (request["70"], request["53"]) == ("101", "1600000000000000")
                installed = node.link_keys["cups"]
                assert HSM.key_check_value("001", installed.key)[:6] == ZPK3.kcv[:6]
                cups.key_for_node = nk(ZPK2)[:-6] + "000000"  # a check value that does not match: refused
                assert (await link.manage(NetMgmt.KEY_EXCHANGE))[0] is False
                assert node.link_keys["cups"] == installed

                # UnionPay's cutover notification: the business date moves, answered 00.
                cups.got_answer = trio.Event()
                await cups.send(Message("0820", {7: "0517235959", 11: "900002", 15: "0518", 70: "201"}))
                with trio.fail_after(5):
                    await cups.got_answer.wait()
                assert cups.answers["900002"].mti == "0830" and cups.answers["900002"][39] == "00"
                assert cups.answers["900002"][33] == BANK_ID
                assert node.business_dates["cups"] == "0518"

                # A purchase UnionPay sends for one of the bank's cards reaches the node's routing (to the issuer)
                # and is answered under the reply header (ids swapped); its CVN2 (DE 61.6) is masked in the
                # journal, and a heartbeat before it is not routed or answered.
                assert cups.stream is not None
                await cups.stream.send_all(b"0000")
                cups.got_answer = trio.Event()
                originated = purchase(BANK_PAN, stan=900003)
                originated[61] = "00" + "0" * 20 + "  CUP" + "737" + "  "
                originated[48] = "ASON005A0001"
                frames_before = len(cups.frames)
                await cups.send(originated)
                with trio.fail_after(5):
                    await cups.got_answer.wait()
                assert cups.answers["900003"][39] == "00"
                answer_header, _ = cups.frames[frames_before]
                assert (answer_header.source_id, answer_header.destination_id) == (BANK_ID, CUPS_ID)
                # The heartbeat got nothing back (an answer to it would have come before the purchase's).
                assert len(cups.frames) == frames_before + 1 and cups.heartbeats == 0
        # The node signed off by UnionPay's rules as it stopped.
        assert [m["70"] for m in cups.wire(b"0820")][-1] == "002"

    engine = make_engine(db_url)
    try:
        with engine.connect() as db:
            rows = {r.stan: r for r in db.execute(select(JOURNAL))}
        assert rows["007004"].outcome == "rejected" and rows["007004"].response_code == "96"
        assert rows["007003"].response_code == "05"
        assert rows["900003"].destination == "issuer"
        assert '"61":"00********************  CUP***  "' in rows["900003"].request
        assert '"48":"AS ON=A0001"' in rows["900003"].request
        assert "737" not in rows["900003"].request
        assert SafStore(engine).pending_count(None) == 0  # the reject queued no reversal
    finally:
        engine.dispose()
    assert SCHEME.codes.unknown["Q1"] >= 1
