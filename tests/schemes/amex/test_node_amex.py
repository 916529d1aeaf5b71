"""American Express through a real node, both directions, against a small American Express host written here.

By American Express's rules (ISO 8583:1993 in EBCDIC, a length that counts itself): sign-on (1804, DE 24 801) and
echo (831), answered 800; a generic acquirer's purchase out as a 1200 with DE 12 (YYMMDDhhmmss), DE 22 (POS data
code), DE 24 (200) and DE 26, answered with three-digit action codes the acquirer gets as ISO 8583:1987 codes (116
is 51; an unknown one 05); a partial reversal out as 1420 with function code 401, DE 30 the original amounts and
DE 56 naming what the network saw; a request left unanswered stood in for, its advice delivered by
store-and-forward as a 1221; a malformed request from the network answered 904; a purchase American Express
originates for a card of the bank's, routed to the issuer and answered 1210 with DE 12 and DE 24 as they came;
sign-off (802) as the node stops. Run with the reference code page (cp500) and with cp037.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from sqlalchemy import select

from schemes.amex import NETWORK
from schemes.amex.link import codec_for
from switch.infra.db.engine import make_engine
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.storage.models import JOURNAL
from switch.storage.saf import SafStore
from switch.wire.framing import Framer, LengthFraming
from tests.integration.harness import client, issuer, purchase, running_node, write_config
from tests.integration.netkit import ISSUER_CONNECTOR_TOML, NETWORK_TOML_HEAD, TPK, network_routes, pin_request

PAN = "371449635398431"
SILENT_PAN = "340000000000009"  # the network never answers its requests (but acknowledges its advices)
ISSUED_PAN = "5200000000000007"  # a card of the bank's: the American Express host sends requests for it
ZPK = "U06B495AAAD084746B5D75349D9077F48"
RAW = LengthFraming(length_includes_prefix=True)  # the wire as it is, untranslated


@dataclass
class AmexHost:
    """The network's side of the link, in one code page."""

    code_page: str
    port: int = 0
    sent_by_node: list[bytes] = field(default_factory=list)  # bodies as on the wire
    answers: dict[str, Message] = field(default_factory=dict)
    stream: trio.SocketStream | None = None
    got_answer: trio.Event = field(default_factory=trio.Event)

    def framer(self) -> Framer:
        return NETWORK.link_options(None, TomlTable({"code_page": self.code_page}, "test", "options")).framer()

    def wire(self, mti: str) -> list[dict[int, str]]:
        codec = codec_for(self.code_page)
        return [fields for m, fields in map(codec.decode, self.sent_by_node) if m == mti]

    async def send(self, msg: Message) -> None:
        assert self.stream is not None
        await self.stream.send_all(self.framer().encode(NETWORK.encode(msg)))

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        framer, raw = self.framer(), RAW.framer()
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
                if msg.pan == SILENT_PAN and msg.mti_class in "12" and not msg.is_advice:
                    continue
                mti, fields = NETWORK.from_canonical(self.decide(msg))
                if msg.amount is not None and msg.amount > 200_000:
                    fields[39] = "Q99"  # a code American Express's table does not know
                await stream.send_all(framer.encode(NETWORK.codec.encode(mti, fields)))

    @staticmethod
    def decide(msg: Message) -> Message:
        amount = msg.amount or 0
        code = "00" if msg.is_network or msg.is_reversal or amount <= 100_000 else "51"
        reply = NETWORK.make_response(msg, code)
        if msg.mti_class in "12" and not msg.is_advice:
            reply[38] = "A12345"
        return reply


@asynccontextmanager
async def amex_host(code_page: str) -> AsyncIterator[AmexHost]:
    host = AmexHost(code_page)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    host.port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, host.handle, listeners)
        yield host
        nursery.cancel_scope.cancel()


EXTRA = NETWORK_TOML_HEAD + """
[[connectors]]
name = "amex"
hosts = ["127.0.0.1:{amex}"]
scheme = "amex"
framing = {{ kind = "binary2" }}
options = {{ code_page = "{code_page}" }}
timeout_ms = 1500
echo_interval_s = 30
backoff_initial_ms = 50
backoff_max_ms = 200
pin_key = {{ type = "ZPK", key = "{zpk}" }}
acquiring_institution = "412345"
""" + ISSUER_CONNECTOR_TOML

ROUTES = network_routes("amex", "on-us", "520000").replace(
    '[destinations.amex]\nlinks = ["amex"]',
    '[destinations.amex]\nlinks = ["amex"]\n'
    'stand_in = { max_amount = 5000, mti = ["0100", "0200"], processing_codes = ["00"], currency = "840" }')


async def _answered(host: AmexHost, stan: str) -> Message:
    with trio.fail_after(5):
        while stan not in host.answers:
            await host.got_answer.wait()
            host.got_answer = trio.Event()
    return host.answers[stan]


async def _sent(host: AmexHost, mti: str, count: int) -> list[dict[int, str]]:
    with trio.fail_after(8):
        while len(host.wire(mti)) < count:
            await trio.sleep(0.02)
    return host.wire(mti)


@pytest.mark.parametrize("code_page", ["cp500", "cp037"])
async def test_american_express_both_ways_through_a_real_node(tmp_path: Path, db_url: str, code_page: str) -> None:
    async with amex_host(code_page) as amex, issuer() as iss:
        conf = write_config(tmp_path, db_url, {}, ROUTES, extra=EXTRA.format(
            tpk=TPK, amex=amex.port, zpk=ZPK, issuer=iss.port, code_page=code_page))
        async with running_node(conf) as node:
            link = node.outbound["amex"]
            # Sign-on: 1804 (EBCDIC), DE 24 801; the answer's 800 accepts it. Then an echo, 831.
            assert [m[24] for m in amex.wire("1804")] == ["801"]
            assert amex.sent_by_node[0][:4] == "1804".encode(code_page)
            assert link.state.value == "signed_on"
            assert await link.echo() == "00"
            assert [m[24] for m in amex.wire("1804")] == ["801", "831"]

            pinpad = node.listeners["pinpad"].port
            assert pinpad is not None
            async with client(pinpad) as acquirer:
                approved = await acquirer.call(pin_request(PAN, 7001))
                assert (approved[39], approved[38]) == ("00", "A12345")
                (out,) = amex.wire("1200")
                assert out[2] == PAN and out[24] == "200" and out[11] != "007001" and out[32] == "412345"
                assert len(out[12]) == 12 and out[12][2:6] == "1122"  # the acquirer's DE 13 and 12, with a year
                assert out[22][6:8] == "51" and out[22][11] == "1"  # chip read, PIN entered, PIN capable
                assert 13 not in out and 25 not in out and 39 not in out
                declined = await acquirer.call(purchase(PAN, amount=150_000, stan=7002))
                assert declined[39] == "51"
                unknown = await acquirer.call(purchase(PAN, amount=250_000, stan=7003))
                assert unknown[39] == "05"

                # A partial reversal: 1420, function code 401, DE 4 what stays, DE 30 the original amount, DE 56
                # naming the original as American Express saw it.
                original = pin_request(PAN, 7001)
                partial = Message("0420", {**{n: original[n] for n in (2, 3, 4, 7, 12, 13, 22, 37, 41, 42, 49)},
                                           11: "007010", 39: "32",
                                           90: "0200007001" + str(original[7]) + "0" * 22,
                                           95: "000000000400000000000400C00000000C00000000"})
                assert (await acquirer.call(partial))[39] == "00"
                (reversal,) = await _sent(amex, "1420", 1)
                assert (reversal[24], reversal[25], reversal[4]) == ("401", "4004", "000000000400")
                assert reversal[30] == "000000001000" + "0" * 12
                assert reversal[56][:10] == "1200" + out[11] and reversal[56][12:22] == out[7]

                # American Express does not answer: the switch stands in and sends the advice (1221: the original
                # went out unanswered) by store-and-forward, with its reason code.
                stood_in = await acquirer.call(purchase(SILENT_PAN, amount=2_000, stan=7020), timeout=8)
                assert stood_in[39] == "00" and str(stood_in[38]).startswith("S")
                (advice,) = await _sent(amex, "1221", 1)
                assert (advice[2], advice[24], advice[25], advice[39]) == (SILENT_PAN, "200", "1003", "000")

                # A malformed request from American Express (cut short) is answered 904.
                bad = NETWORK.encode(Message("0100", {2: ISSUED_PAN, 3: "000000", 4: "000000001000", 7: "1207101010",
                                                      11: "900009", 12: "101010", 13: "1207", 43: "SHOP"}))
                assert amex.stream is not None
                await amex.stream.send_all(RAW.framer().encode(bad[:-2]))  # digits and letters: either page
                assert (await _answered(amex, "900009")).response_code == "30"
                assert amex.wire("1110")[-1][39] == "904"

                # American Express originates a purchase for a card of the bank's: routed to the issuer, answered
                # 1210 with DE 12 and the function code as they came.
                originated = purchase(ISSUED_PAN, stan=900003)
                await amex.send(originated)
                answer = await _answered(amex, "900003")
                assert (answer.mti, answer[39]) == ("0210", "00")
                (sent,) = [m for m in amex.wire("1210") if m[11] == "900003"]
                assert sent[39] == "000" and sent[24] == "200" and sent[12][2:] == "1122101010"
                assert iss.stats.received["0200"] == 1
        # The node signed off as it stopped: 1804, DE 24 802.
        assert amex.wire("1804")[-1][24] == "802"

    engine = make_engine(db_url)
    try:
        with engine.connect() as db:
            rows = {r.stan: r for r in db.execute(select(JOURNAL))}
        assert rows["007002"].response_code == "51" and rows["007003"].response_code == "05"
        assert rows["900003"].source_link == "amex" and rows["900003"].destination == "issuer"
        assert SafStore(engine).pending_count(None) == 0  # the advice was acknowledged
    finally:
        engine.dispose()
