"""VISA through a real node, both directions, against a tiny VISA host written here.

The same checks the contract's test network passes (tests/switch/contracts/test_network_contract.py), by VISA's
rules: sign-on (0800, DE 70 = 071 in two BCD bytes) and echo; a generic acquirer's purchase out to the VISA
connector (its PIN under the link's zone key, BCD and EBCDIC on the wire, the transaction identifier back); a
decline, an unknown code, a reject (the request sent back under a reject header: answered 96, journaled as
rejected, nothing reversed); key exchanges started by each side; a cutover; a request the VISA host originates,
routed by the node to an issuer and answered back (the journal showing its transaction identifier and never its
CVV2); a poll and a heartbeat answered and not routed; sign-off (072) as the node stops. Run with the reference
dialect and with a link dialect that differs in everything a dialect can.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from sqlalchemy import select

from schemes.visa import NETWORK
from schemes.visa.dialect import Transcoder, codec_for
from schemes.visa.fields import build_de62, build_de126, parse_de62
from schemes.visa.framing import VisaFramer
from schemes.visa.header import Base1Header
from schemes.visa.spec import DEFAULT_DIALECT, Dialect
from switch.config import parse_config
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

ZMK = HSM.generate_key("000").under_lmk
ZPK1 = HSM.generate_key_exported("001", ZMK)  # the zone PIN key the link starts with
ZPK2 = HSM.generate_key_exported("001", ZMK)  # sent by the network
ZPK3 = HSM.generate_key_exported("001", ZMK)  # asked for by the node
PAN = "4761739001010010"
REJECTED_PAN = "4761739999999996"
ISSUED_PAN = "5200000000000007"  # a card of the bank's: the VISA host sends requests for it
TID = "381234567890123"
NODE_STATION, VISA_STATION = "400050", "000002"

DIALECTS = {
    "reference": ("", DEFAULT_DIALECT),
    "dialect": ('code_page = "cp037", odd_pad = "right", fee_amounts = "ebcdic", de60_length = "digits", ',
                Dialect(code_page="cp037", odd_pad="right", fee_amounts="ebcdic", de60_length="digits")),
}


@dataclass
class VisaHost:
    """The network's side of the link: answers, rejects and originates by VISA's rules."""

    dialect: Dialect
    port: int = 0
    sent_by_node: list[tuple[bytes, bytes]] = field(default_factory=list)  # (header, body) as on the wire
    answers: dict[str, Message] = field(default_factory=dict)  # the node's answers to our requests, by STAN
    session_replies: list[bytes] = field(default_factory=list)  # keep-alive and heartbeat answers, raw
    stream: trio.SocketStream | None = None
    got_answer: trio.Event = field(default_factory=trio.Event)
    key_for_node: tuple[str, str] = (ZPK3.under_zmk, ZPK3.kcv)

    def framer(self) -> VisaFramer:
        transcoder = None if self.dialect == DEFAULT_DIALECT else Transcoder(self.dialect)
        return VisaFramer(source_station=VISA_STATION, destination_station=NODE_STATION, transcoder=transcoder)

    def wire(self, mti: str) -> list[dict[int, str]]:
        """What the node sent with this MTI, as the link's own codec reads the wire bytes."""
        codec = codec_for(self.dialect)
        found = [codec.decode(body) for _, body in self.sent_by_node]
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
        raw = VisaFramer()  # the same frames, untranslated: what the node put on the wire
        while data := await stream.receive_some(65536):
            framer.receive_data(data)
            raw.receive_data(data)
            while (frame := framer.next_frame()) is not None:
                wire_frame = raw.next_frame()
                assert wire_frame is not None
                if frame.keepalive:
                    self.session_replies.append(frame.header + frame.body)
                    continue
                self.sent_by_node.append((wire_frame.header, wire_frame.body))
                msg = NETWORK.decode(frame.body)
                if msg.is_response:
                    self.answers[str(msg.stan)] = msg
                    self.got_answer.set()
                    continue
                if msg.pan == REJECTED_PAN:
                    await stream.send_all(framer.reject(frame, "0501"))
                    continue
                reply = self.decide(msg)
                mti, fields = NETWORK.from_canonical(reply)
                if msg.amount is not None and msg.amount > 200_000:
                    fields[39] = "Q9"  # a code VISA's table does not know
                body = NETWORK.codec.encode(mti, fields)
                await stream.send_all(framer.encode(body, reply_to=frame))

    def decide(self, msg: Message) -> Message:
        if msg.mti == "0800":
            reply = NETWORK.make_response(msg, "00")
            if msg[70] == "163":  # the node asks for a new key
                reply[125] = self.key_for_node[0] + self.key_for_node[1]
            return reply
        amount = msg.amount or 0
        reply = NETWORK.make_response(msg, "00" if amount <= 100_000 else "51")
        reply[38] = "A12345"
        reply[62] = build_de62({1: "E", 2: TID})  # V.I.P. assigns the transaction identifier
        return reply


@asynccontextmanager
async def visa_host(dialect: Dialect) -> AsyncIterator[VisaHost]:
    host = VisaHost(dialect)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    host.port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, host.handle, listeners)
        yield host
        nursery.cancel_scope.cancel()


EXTRA = NETWORK_TOML_HEAD + """
[[connectors]]
name = "visa"
hosts = ["127.0.0.1:{visa}"]
scheme = "visa"
framing = {{ kind = "visa", source_station = "{node_station}", destination_station = "{visa_station}" }}
options = {{ {dialect}cutover_code = "201" }}
timeout_ms = 2000
echo_interval_s = 30
backoff_initial_ms = 50
backoff_max_ms = 200
zmk = "{zmk}"
pin_key = {{ type = "ZPK", key = "{zpk}" }}
""" + ISSUER_CONNECTOR_TOML

ROUTES = network_routes("visa", "on-us", "520000")





async def _answered(host: VisaHost, stan: str) -> Message:
    with trio.fail_after(5):
        while stan not in host.answers:
            await host.got_answer.wait()
            host.got_answer = trio.Event()
    return host.answers[stan]


@pytest.mark.parametrize("dialect_name", list(DIALECTS))
async def test_visa_both_ways_through_a_real_node(tmp_path: Path, db_url: str, dialect_name: str) -> None:
    options, dialect = DIALECTS[dialect_name]
    async with visa_host(dialect) as visa, issuer() as iss:
        conf = write_config(tmp_path, db_url, {}, ROUTES, extra=EXTRA.format(
            tpk=TPK, visa=visa.port, zmk=ZMK, zpk=ZPK1.under_lmk, issuer=iss.port, dialect=options,
            node_station=NODE_STATION, visa_station=VISA_STATION))
        async with running_node(conf) as node:
            link = node.outbound["visa"]
            # Sign-on by VISA's rules: 0800, DE 70 = 071 (two BCD bytes on the wire), under our BASE I header.
            assert [m[70] for m in visa.wire("0800")] == ["071"]
            header, body = visa.sent_by_node[0]
            assert body[-2:] == bytes.fromhex("0071")
            sent = Base1Header.parse(header)
            assert (sent.destination, sent.source, sent.length) == (VISA_STATION, NODE_STATION, 22)
            assert link.state.value == "signed_on"
            assert await link.echo() == "00"
            assert [m[70] for m in visa.wire("0800")] == ["071", "301"]

            pinpad = node.listeners["pinpad"].port
            assert pinpad is not None
            async with client(pinpad) as acquirer:
                # A generic acquirer's purchase goes out to VISA: BCD and EBCDIC on the wire, the PIN under the
                # link's zone key; the acquirer gets VISA's approval and its transaction identifier.
                approved = await acquirer.call(pin_request(PAN, 7001))
                assert (approved[39], approved[38]) == ("00", "A12345")
                assert parse_de62(approved[62]).get(2) == TID
                (out,) = visa.wire("0200")
                assert out[2] == PAN and out[22] == "051" and out[41] == "TERM0001" and 39 not in out
                assert pin_under(ZPK1.under_lmk, out[52], PAN)
                assert visa.sent_by_node[-1][1][:2] == bytes.fromhex("0200")  # a BCD MTI
                assert "TERM0001".encode(dialect.code_page) in visa.sent_by_node[-1][1]  # EBCDIC text
                declined = await acquirer.call(purchase(PAN, amount=150_000, stan=7002))
                assert declined[39] == "51"
                unknown = await acquirer.call(purchase(PAN, amount=250_000, stan=7003))
                assert unknown[39] == "05"  # Q9 is not in VISA's table: its documented default

                # A reject: VISA sends our request back under a reject header. The acquirer is answered at once,
                # the exchange journaled as rejected, and nothing reversed (it was not processed).
                rejected = await acquirer.call(purchase(REJECTED_PAN, stan=7004))
                assert rejected[39] == "96"
                assert link.rejected == 1

                # VISA changes the zone PIN key (0800, DE 70 = 163, the key under the ZMK in DE 125)...
                await visa.send(Message("0800", {7: "1207101010", 11: "900001", 70: "163",
                                                 125: ZPK2.under_zmk + ZPK2.kcv}))
                assert (await _answered(visa, "900001"))[39] == "00"
                assert node.link_keys["visa"].key != ZPK1.under_lmk
                # ...and the next PIN goes out under the new key.
                await acquirer.call(pin_request(PAN, 7005))
                assert pin_under(ZPK2.under_lmk, visa.wire("0200")[-1][52], PAN)

                # The node asks for a new key itself: installed once its check value is confirmed.
                assert await link.manage(NetMgmt.KEY_EXCHANGE) == (True, "00")
                assert HSM.key_check_value("001", node.link_keys["visa"].key)[:6] == ZPK3.kcv[:6]

                # A cutover (the link's configured DE 70 = 201): the business date moves.
                await visa.send(Message("0800", {7: "1207235959", 11: "900002", 15: "1208", 70: "201"}))
                assert (await _answered(visa, "900002"))[39] == "00"
                assert node.business_dates["visa"] == "1208"

                # A purchase VISA originates on a card of the bank's: routed by the node to the issuer and
                # answered back to VISA, in VISA's dialect, with VISA's own fields echoed.
                originated = purchase(ISSUED_PAN, stan=900003)
                originated[19], originated[28] = "156", "D00000150"
                originated[60] = "050000000700"
                originated[62] = build_de62({1: "Y", 2: TID})
                originated[126] = build_de126({10: "11 123"})
                await visa.send(originated)
                answer = await _answered(visa, "900003")
                assert (answer.mti, answer[39]) == ("0210", "00")
                assert parse_de62(answer[62]).get(2) == TID
                assert visa.wire("0210")[-1][39] == "00"
                assert iss.stats.received["0200"] == 1  # the issuer got it (in its own, generic, dialect)

            # A poll and a heartbeat from VISA are answered as the framing says, and routed nowhere.
            frames_before = len(visa.sent_by_node)
            await visa.send_raw(bytes(4) + bytes.fromhex("00020020C8C2"))
            with trio.fail_after(5):
                while len(visa.session_replies) < 2:
                    await trio.sleep(0.01)
            assert visa.session_replies == [b"", bytes.fromhex("00020020C8C2")]
            assert link.session_frames == 1
            assert len(visa.sent_by_node) == frames_before  # no answer, no format error: nothing else came
        # The node signed off by VISA's rules as it stopped.
        assert [m[70] for m in visa.wire("0800")][-1] == "072"

    engine = make_engine(db_url)
    try:
        with engine.connect() as db:
            rows = {r.stan: r for r in db.execute(select(JOURNAL))}
        assert rows["007004"].outcome == "rejected" and rows["007004"].response_code == "96"
        assert rows["007003"].response_code == "05"
        network_originated = rows["900003"]
        assert network_originated.destination == "issuer" and network_originated.source_link == "visa"
        # The journal shows the transaction identifier and hides the CVV2.
        assert f"62.2={TID}" in network_originated.request
        assert "126.10=<6 hidden>" in network_originated.request
        assert "11 123" not in network_originated.request and "F1F140F1F2F3" not in network_originated.request
        assert SafStore(engine).pending_count(None) == 0  # the reject queued no reversal
    finally:
        engine.dispose()



@pytest.mark.parametrize(("old", "new", "key", "reason"), [
    ('kind = "visa"', 'kind = "binary2"', "connectors[0].framing.kind", "does not belong to network 'visa'"),
    ('cutover_code = "201"', 'cutover_code = "201", code_page = "cp1"', "connectors[0].options.code_page",
     "unknown code page"),
    ('cutover_code = "201"', 'cutover_code = "2010"', "connectors[0].options.cutover_code", "3 digits"),
])
def test_node_toml_errors_name_the_key(tmp_path: Path, old: str, new: str, key: str, reason: str) -> None:
    text = EXTRA.format(tpk=TPK, visa=9, zmk=ZMK, zpk=ZPK1.under_lmk, issuer=9, dialect="",
                        node_station=NODE_STATION, visa_station=VISA_STATION)
    assert old in text
    with pytest.raises(ConfigError) as info:
        parse_config('[node]\nname = "x"\n' + text.replace(old, new), tmp_path / "node.toml")
    assert info.value.key == key
    assert reason in info.value.reason
