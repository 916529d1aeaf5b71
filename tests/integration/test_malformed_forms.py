"""Malformed messages from each network, through a real node: the bytes each network gets back.

UnionPay and VISA send a malformed message back the way the network itself refuses one (UnionPay: under the
message's own header, ids swapped, a reject code in F10; VISA: a reject header with the reject code, then the
message's header and the message), with the link's configured code for what is wrong: a header that breaks its
layout, an MTI the network does not define, a field that does not decode. The generic acquirer, Mastercard and
American Express (no reject form in the public sources) answer a request whose identity can be read with a format
error (30; American Express's action code 904), and nothing for an MTI the network does not define or an answer. The
connection stays up and in step: the next request on it is answered as usual; each malformed frame is counted per
link and answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from schemes.amex import NETWORK as AMEX
from schemes.generic import SCHEME as GENERIC
from schemes.mastercard import NETWORK as MASTERCARD
from schemes.unionpay import SCHEME as UNIONPAY
from schemes.unionpay.framing import UnionPayFraming
from schemes.unionpay.header import CupsHeader
from schemes.visa import NETWORK as VISA
from schemes.visa.dialect import Transcoder
from schemes.visa.framing import VisaFramer
from schemes.visa.header import BASE1_HEADER_LEN, build_base1_header, is_reject, original_header, reject_code
from schemes.visa.spec import Dialect
from switch.model.toml import TomlTable
from switch.runtime.node import Node
from switch.wire.framing import Frame, Framer, LengthFraming
from tests.integration.harness import ROUTES_ONE, issuer, purchase, running_node, write_config

BANK_ID, CUPS_ID = "48020000", "00010000"
NODE_STATION, VISA_STATION = "400050", "000002"
CP037 = Dialect(code_page="cp037")

LISTENERS = """
[[listeners]]
name = "cups"
port = 0
scheme = "unionpay"
[listeners.framing]
kind = "unionpay"
source_id = "{bank}"
destination_id = "{cups}"
reject_codes = {{ mti = "00077", field = "00088" }}

[[listeners]]
name = "visa"
port = 0
scheme = "visa"
[listeners.framing]
kind = "visa"
source_station = "{node}"
destination_station = "{visa}"
reject_codes = {{ header = "0701", mti = "0702", field = "0703" }}

[[listeners]]
name = "mastercard"
port = 0
scheme = "mastercard"
framing = {{ kind = "binary2" }}
options = {{ code_page = "cp037" }}

[[listeners]]
name = "amex"
port = 0
scheme = "amex"
framing = {{ kind = "binary2" }}

[[listeners]]
name = "visa-cp037"
port = 0
scheme = "visa"
framing = {{ kind = "visa", source_station = "{node}", destination_station = "{visa}" }}
options = {{ code_page = "cp037" }}
"""


@asynccontextmanager
async def node_with_network_listeners(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"issuer": iss.port}, ROUTES_ONE.format(link="issuer"),
                            extra=LISTENERS.format(bank=BANK_ID, cups=CUPS_ID, node=NODE_STATION, visa=VISA_STATION))
        async with running_node(conf) as node:
            yield node


class Peer:
    """A network's side of one connection to a node listener: raw bytes out, frames back through ``framer``."""

    def __init__(self, stream: trio.SocketStream, framer: Framer) -> None:
        self.stream, self.framer = stream, framer

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def frame(self) -> Frame:
        with trio.fail_after(5):  # never a hung exchange
            while (frame := self.framer.next_frame()) is None:
                data = await self.stream.receive_some(65536)
                assert data, "the node closed the connection"
                self.framer.receive_data(data)
        return frame

    async def nothing(self) -> None:
        """Nothing comes back for a while (the frame was only counted and logged)."""
        with trio.move_on_after(0.3):
            data = await self.stream.receive_some(65536)
            raise AssertionError(f"unexpected answer of {len(data)} bytes")


@asynccontextmanager
async def peer(node: Node, listener: str, framer: Framer) -> AsyncIterator[Peer]:
    port = node.listeners[listener].port
    assert port is not None
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        yield Peer(stream, framer)
    finally:
        await stream.aclose()


def cups_frame(header: bytes, body: bytes) -> bytes:
    return b"%04d" % (len(header) + len(body)) + header + body


def cups_header(body: bytes) -> bytes:
    """The header UnionPay sends ``body`` under (to the bank, F3 for its length)."""
    return UnionPayFraming(source_id=CUPS_ID, destination_id=BANK_ID).framer().encode(body)[4:50]


async def test_unionpay_sends_malformed_messages_back_under_their_header(tmp_path: Path, db_url: str) -> None:
    cups_side = UnionPayFraming(source_id=CUPS_ID, destination_id=BANK_ID)
    good = UNIONPAY.encode(purchase(stan=1))
    header = cups_header(good)
    async with node_with_network_listeners(tmp_path, db_url) as node, \
            peer(node, "cups", cups_side.framer()) as cups:
        # A header whose F1 is not 46: back under our header (it cannot be read), F10 00015, the message as sent.
        bad_header = b"\x2d" + header[1:]
        await cups.send(cups_frame(bad_header, good))
        back = await cups.frame()
        parsed = CupsHeader.parse(back.header)
        assert (parsed.reject_code, parsed.source_id, parsed.destination_id) == ("00015", BANK_ID, CUPS_ID)
        assert back.body == good

        # A field that does not decode (the message cut short), an MTI UnionPay does not define: back under their
        # own header with the ids swapped and the link's codes for each.
        for body, code in ((good[:-5], "00088"), (b"0900" + good[4:], "00077")):
            await cups.send(cups_frame(cups_header(body), body))
            back = await cups.frame()
            expected = CupsHeader.parse(cups_header(body)).rejecting(code).to_bytes(len(body))
            assert back == Frame(body, expected)
        # F3 that disagrees with the length prefix: 00035, the public code for the message length.
        await cups.send(cups_frame(header, good[:-5]))
        assert CupsHeader.parse((await cups.frame()).header).reject_code == "00035"

        # The answer to nobody's request that cannot be read is not sent back: its request (if any) times out.
        answer_body = b"0210" + good[4:-5]
        await cups.send(cups_frame(cups_header(answer_body), answer_body))
        await cups.nothing()

        # The stream is in step: the next request on the connection is answered as usual (F10 00000).
        next_body = UNIONPAY.encode(purchase(stan=2))
        await cups.send(cups_frame(cups_header(next_body), next_body))
        answer = await cups.frame()
        assert answer.header[41:46] == b"00000" and UNIONPAY.decode(answer.body)[39] == "00"
    assert node.malformed[("cups", "reject")] == 4 and node.malformed[("cups", "none")] == 1
    assert {"link": "cups", "answer": "reject", "count": 4} in node.status()["malformed"]


async def test_visa_sends_malformed_messages_back_under_a_reject_header(tmp_path: Path, db_url: str) -> None:
    visa_side = VisaFramer(source_station=VISA_STATION, destination_station=NODE_STATION)
    good = VISA.encode(purchase(stan=3))
    header = build_base1_header(bytes.fromhex(NODE_STATION), bytes.fromhex(VISA_STATION), len(good))

    def vmlh(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + b"\x00\x00" + data

    async with node_with_network_listeners(tmp_path, db_url) as node, \
            peer(node, "visa", VisaFramer()) as visa:
        # A header chain that breaks its layout (H1 16): a reject header (to the network) with the header code, the
        # header the message would have come under (from the network to the node), then everything that came
        # after the VMLH.
        broken = bytes((16,)) + header[1:] + good
        await visa.send(vmlh(broken))
        back = await visa.frame()
        assert is_reject(back.header) and reject_code(back.header) == "0701"
        assert back.header[5:8].hex() == VISA_STATION and back.header[8:11].hex() == NODE_STATION
        theirs = original_header(back.header)
        assert theirs[5:8].hex() == NODE_STATION and theirs[8:11].hex() == VISA_STATION
        assert back.body == broken

        # A field that does not decode, an MTI VISA does not define: the reject header (stations swapped), their
        # own header unchanged, their message as sent.
        for body, code in ((good[:-3], "0703"), (b"\x09\x00" + good[2:], "0702")):
            await visa.send(visa_side.encode(body))
            back = await visa.frame()
            assert is_reject(back.header) and reject_code(back.header) == code
            assert back.header[5:8].hex() == VISA_STATION and back.header[8:11].hex() == NODE_STATION
            assert original_header(back.header)[:BASE1_HEADER_LEN] == visa_side.encode(body)[4:26]
            assert back.body == body

        await visa.send(visa_side.encode(VISA.encode(purchase(stan=4))))
        answer = await visa.frame()
        assert not is_reject(answer.header) and VISA.decode(answer.body)[39] == "00"
    assert node.malformed[("visa", "reject")] == 3


async def test_a_visa_link_in_another_dialect_gets_its_rejects_in_its_dialect(tmp_path: Path, db_url: str) -> None:
    # cp037 on the link: an undefined MTI is read, translated, and sent back in the link's own bytes; a message
    # that cannot be read at all goes back exactly as it came.
    link_side = VisaFramer(source_station=VISA_STATION, destination_station=NODE_STATION,
                           transcoder=Transcoder(CP037))
    raw = VisaFramer()
    request = purchase(stan=5)
    request[43] = "SHOP [ONE] ^ LONDON GB".ljust(40)  # characters cp037 and cp500 place differently
    async with node_with_network_listeners(tmp_path, db_url) as node, \
            peer(node, "visa-cp037", raw) as visa:
        in_dialect = link_side.encode(VISA.encode(request))  # the bytes on a cp037 link
        unknown = in_dialect[:26] + b"\x09\x00" + in_dialect[28:]
        await visa.send(unknown)
        back = await visa.frame()
        assert is_reject(back.header) and reject_code(back.header) == "0030"  # the default, not configured here
        assert back.body == unknown[26:]

        cut = in_dialect[:-4]
        cut = (len(cut) - 4).to_bytes(2, "big") + cut[2:]
        await visa.send(cut)
        back = await visa.frame()
        assert is_reject(back.header) and back.body == cut[26:]

        await visa.send(in_dialect)
        answer = await visa.frame()
        assert not is_reject(answer.header)
        assert link_side.transcoder is not None
        assert VISA.decode(link_side.transcoder.inbound(answer.body))[39] == "00"
    assert node.malformed[("visa-cp037", "reject")] == 2


async def test_the_generic_acquirer_gets_a_30_or_nothing(tmp_path: Path, db_url: str) -> None:
    framing = LengthFraming("binary2")
    good = GENERIC.encode(purchase(stan=6))
    async with node_with_network_listeners(tmp_path, db_url) as node, \
            peer(node, "acquirer", framing.framer()) as acquirer:
        sender = framing.framer()
        # The body cut inside DE 42: DE 2-41 are read back, so it is answered 30 with its identity.
        await acquirer.send(sender.encode(good[:-8]))
        back = GENERIC.decode((await acquirer.frame()).body)
        assert (back.mti, back[39], back[11]) == ("0210", "30", "000006")
        await acquirer.send(sender.encode(b"0900" + good[4:]))  # no 0910 exists for it: nothing
        await acquirer.nothing()
        await acquirer.send(sender.encode(GENERIC.encode(purchase(stan=7))))
        assert GENERIC.decode((await acquirer.frame()).body)[39] == "00"
    assert node.malformed[("acquirer", "format_error")] == 1 and node.malformed[("acquirer", "none")] == 1


async def test_mastercard_answers_a_malformed_request_30_in_its_code_page(tmp_path: Path, db_url: str) -> None:
    link = MASTERCARD.link_options(None, None)
    request = purchase(stan=8)
    request[43] = "SHOP [ONE] ^ LONDON GB".ljust(40)  # characters cp037 and cp500 place differently
    cp037 = MASTERCARD.link_options(None, _options(code_page="cp037")).framer()
    async with node_with_network_listeners(tmp_path, db_url) as node, \
            peer(node, "mastercard", cp037) as mc:
        good = MASTERCARD.encode(request)
        sender = link.framer()
        await mc.send(sender.encode(good[:-5]))  # cut inside DE 49: the identity before it is read back
        back = MASTERCARD.decode((await mc.frame()).body)
        assert (back.mti, back[39], back[11]) == ("0210", "30", "000008")
        await mc.send(sender.encode("0900".encode("cp500") + good[4:]))  # no 0910 exists for it: nothing
        await mc.nothing()
        answer = MASTERCARD.encode(MASTERCARD.make_response(request, "00"))
        await mc.send(sender.encode(answer[:-2]))  # an answer to nobody, cut short: never answered
        await mc.nothing()
        await mc.send(cp037.encode(good))  # the same purchase, whole, in the link's code page
        ok = MASTERCARD.decode((await mc.frame()).body)
        assert ok[39] == "00" and ok[43] == request[43]
    assert node.malformed[("mastercard", "format_error")] == 1 and node.malformed[("mastercard", "none")] == 2


def _options(**values: str) -> TomlTable:
    return TomlTable(dict(values), "test", "options")


async def test_american_express_answers_a_malformed_request_904(tmp_path: Path, db_url: str) -> None:
    link = AMEX.link_options(None, None)
    request = purchase(stan=9)
    async with node_with_network_listeners(tmp_path, db_url) as node, \
            peer(node, "amex", link.framer()) as amex:
        sender = link.framer()
        good = AMEX.encode(request)
        await amex.send(sender.encode(good[:-3]))  # cut inside DE 49
        mti, fields = AMEX.codec.decode((await amex.frame()).body)
        assert (mti, fields[39], fields[11]) == ("1210", "904", "000009")
        await amex.send(sender.encode(b"\xf0\xf2" + good[2:]))  # a 1987 MTI (0200): not American Express's
        await amex.nothing()
        await amex.send(sender.encode(good))
        assert AMEX.decode((await amex.frame()).body)[39] == "00"
    assert node.malformed[("amex", "format_error")] == 1 and node.malformed[("amex", "none")] == 1
