"""The network simulator over loopback, with a tiny bank written here: what it originates in each network's
dialect (its own STAN, DE 32/33, VISA DE 62/63 and the STIP reason in 63.4, UnionPay DE 60, Mastercard DE 48, 61,
63 and its STIP advice's DE 60/121) under its own header, how it matches the bank's answers (a reversal of an
approved request, a partial one, a repeat), how it answers a malformed message in the network's reject form (or, on
Mastercard, with a 30), and the CLI's ``--once`` against a bank that connects to it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import trio

from bench.ports import free_port
from schemes.mastercard.fields import parse_de48, parse_de61
from schemes.mastercard.fields import parse_de63 as parse_mc63
from schemes.unionpay.framing import UnionPayFraming
from schemes.unionpay.header import CupsHeader
from schemes.visa.fields import parse_de62, parse_de63
from schemes.visa.framing import VisaFraming
from schemes.visa.header import Base1Header, is_reject, reject_code
from switch.contracts.network import LinkOptions
from switch.contracts.registry import network
from switch.model.message import Message
from switch.sim.issuer import REJECT_CODES, IssuerConfig, IssuerStats, serve_issuer
from switch.sim.originate import OriginateConfig
from switch.wire.framing import Frame, Framer

LIMIT = 15
PAN = "4761730010000019"

# The bank's side (framing as the demo's connectors) and the network's.
SIDES: dict[str, tuple[LinkOptions, LinkOptions]] = {
    "visa": (VisaFraming(source_station="123456", destination_station="400000"),
             VisaFraming(source_station="400000", destination_station="123456")),
    "unionpay": (UnionPayFraming(source_id="04071234", destination_id="00010000"),
                 UnionPayFraming(source_id="00010000", destination_id="04071234")),
    "mastercard": (network("mastercard").link_options(None, None), network("mastercard").link_options(None, None)),
    "amex": (network("amex").link_options(None, None), network("amex").link_options(None, None)),
}
SIGNON_MTI = {"unionpay": "0820"}


async def next_frame(stream: trio.SocketStream, framer: Framer) -> Frame:
    while (frame := framer.next_frame()) is None:
        data = await stream.receive_some(65536)
        assert data, "the simulator closed the connection"
        framer.receive_data(bytes(data))
    return frame


async def bank(scheme: str, port: int, answer: Callable[[Message], str], frames: list[tuple[Frame, Message]],
               until: int) -> None:
    """Connect as the bank, sign on, and answer what the network sends with ``answer``'s code until ``until``
    requests were seen."""
    adapter = network(scheme)
    framer = SIDES[scheme][0].framer()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        signon = Message(SIGNON_MTI.get(scheme, "0800"), {7: "0101000000", 11: "000001", 70: "001"})
        await stream.send_all(framer.encode(adapter.encode(signon)))
        while len(frames) < until:
            frame = await next_frame(stream, framer)
            msg = adapter.decode(frame.body)
            if msg.is_response:
                continue
            frames.append((frame, msg))
            response = adapter.make_response(msg, answer(msg))
            await stream.send_all(framer.encode(adapter.encode(response), reply_to=frame))


@pytest.mark.parametrize("scheme", ["visa", "unionpay", "mastercard", "amex"])
async def test_originated_requests_in_the_networks_dialect_and_their_reversal_and_repeat(scheme: str) -> None:
    partial = 400 if scheme == "mastercard" else None
    originate = OriginateConfig(cards=(PAN, "4761730010000027"), count=3, reversal_every=1, repeat_every=2,
                                stip_every=3, stip_repeat=True, partial_amount=partial)
    stats = IssuerStats()
    frames: list[tuple[Frame, Message]] = []
    done = trio.Event()
    config = IssuerConfig(scheme=scheme, framing=SIDES[scheme][1], originate=originate, start_after_s=5)
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(lambda task_status: serve_issuer(config, stats=stats, on_done=done.set,
                                                                        task_status=task_status))
            nursery.start_soon(bank, scheme, port, lambda m: "51" if m.pan.endswith("27") else "00", frames, 7)
            await done.wait()
            nursery.cancel_scope.cancel()
    mtis = [m.mti for _, m in frames]
    # 1: approved, reversed (every approval; American Express reverses by advice, 1420); 2: 51; 3: a STIP advice,
    # repeated.
    assert mtis == ["0200", "0420" if scheme == "amex" else "0400", "0200", "0120", "0121"]
    assert dict(stats.originated.answered) == {"00": 4, "51": 1}
    stans = [m[11] for _, m in frames]
    assert len(set(stans[:4])) == 4 and stans[4] == stans[3]  # the network's own STANs; a repeat keeps its own
    first, reversal = frames[0][1], frames[1][1]
    de90 = "0200" + "".join(str(first[n]).zfill(w) for n, w in ((11, 6), (7, 10), (32, 11), (33, 11)))
    # American Express's DE 56 names no forwarding institution: its DE 90 ends in zeros.
    assert reversal[90] == (de90[:31] + "0" * 11 if scheme == "amex" else de90)
    advice = frames[3][1]
    if scheme == "visa":
        assert (first[32], first[33], first[19]) == ("432109", "400000", "840")
        assert parse_de62(first[62]).get(1) == "Y" and len(parse_de62(first[62]).get(2) or "") == 15
        assert parse_de63(first[63]).get(1) == "0002"
        assert parse_de63(advice[63]).get(4) == "9020" and (advice[38], advice[39]) == ("S00003", "00")
        visa_header = Base1Header.parse(frames[0][0].header)
        assert (visa_header.destination, visa_header.source) == ("123456", "400000")  # towards the bank
    elif scheme == "mastercard":
        assert (first[32], first[33]) == ("005037", "200154")
        assert parse_de48(str(first[48])).tcc == "R" and parse_de61(str(first[61])).country == "840"
        assert parse_mc63(str(first[63])).network_code == "MCC" and len(str(first[15])) == 4
        assert reversal[63] == first[63] and reversal[48] == first[48]  # the reversal names the network data
        assert (reversal[39], reversal[95]) == ("32", "000000000400" * 2 + "0" * 18)  # a partial reversal
        assert (advice[60], advice[121], advice[38], advice[39]) == ("1410000", "200154", "S00003", "00")
        assert frames[0][0].header == b""  # no header: the 2-byte length alone
    elif scheme == "amex":
        assert (first[32], first[19]) == ("06370100", "840")
        assert (advice[38], advice[39]) == ("S00003", "00")
        assert frames[0][0].header == b""
    else:
        assert (first[32], first[33], first[60]) == ("92010000", "00010000", "000006000300000000000012000")
        header = CupsHeader.parse(frames[0][0].header)
        assert (header.destination_id, header.source_id) == ("04071234", "00010000")


@pytest.mark.parametrize("scheme", ["visa", "unionpay"])
async def test_a_malformed_message_is_sent_back_in_the_networks_reject_form(scheme: str) -> None:
    config = IssuerConfig(scheme=scheme, framing=SIDES[scheme][1], reject_code=REJECT_CODES[scheme])
    stats = IssuerStats()
    framer = SIDES[scheme][0].framer()
    garbage = b"0200" + bytes(3)  # an MTI and a bitmap cut short
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(lambda task_status: serve_issuer(config, stats=stats, task_status=task_status))
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(framer.encode(garbage))
                frame = await next_frame(stream, framer)
            nursery.cancel_scope.cancel()
    assert stats.rejected == 1 and stats.malformed == 1
    assert network(scheme).classify(frame).kind.value == "reject"
    if scheme == "visa":
        assert is_reject(frame.header) and reject_code(frame.header) == "0001"
        assert frame.body == garbage  # the message goes back as it came
    else:
        header = CupsHeader.parse(frame.header)
        assert header.reject_code == "00035" and (header.destination_id, header.source_id) == ("04071234", "00010000")
        assert frame.body == garbage


async def test_mastercard_answers_a_malformed_request_30_as_its_links_do() -> None:
    adapter = network("mastercard")
    config = IssuerConfig(scheme="mastercard", framing=SIDES["mastercard"][1], refuse=True)
    stats = IssuerStats()
    framer = SIDES["mastercard"][0].framer()
    request = adapter.encode(Message("0100", {2: PAN, 3: "000000", 4: "000000001000", 11: "000042", 63: "MCC1234567"}))
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(lambda task_status: serve_issuer(config, stats=stats, task_status=task_status))
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(framer.encode(request[:-3]))  # DE 63 cut short
                frame = await next_frame(stream, framer)
            nursery.cancel_scope.cancel()
    answer = adapter.decode(frame.body)
    assert (answer.mti, answer.stan, answer.response_code) == ("0110", "000042", "30")
    assert stats.rejected == 1 and stats.malformed == 1


def test_cli_once_originates_one_purchase_and_prints_the_answer_summary() -> None:
    port = free_port()
    command = [sys.executable, "-m", "switch.cli", "sim", "network", "visa", "--port", str(port), "--once",
               "--card", PAN, "--amount", "2500"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        frames: list[tuple[Frame, Message]] = []

        async def main() -> None:
            with trio.fail_after(LIMIT * 2):
                while True:
                    try:
                        await bank("visa", port, lambda m: "00", frames, 1)
                        return
                    except OSError:
                        await trio.sleep(0.1)

        trio.run(main)
        out, err = process.communicate(timeout=LIMIT)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert frames[0][1].mti == "0200" and frames[0][1][4] == "000000002500"
    assert "originated 0200: 1; answered 00: 1; rejected by the bank 0; timeouts 0" in out
    assert PAN not in out and PAN not in err
