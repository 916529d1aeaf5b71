"""Hostile and broken peers (issue 11, items 7-9) over real loopback sockets: idle and trickling connections
cannot lock a legitimate client out, one address cannot take every slot, a peer's garbage costs it its
connection and not the log, and MTIs the network does not define are dropped without an answer.

Loopback is all of 127.0.0.0/8 on Linux, so "other peers" are connections bound to 127.0.0.2 and 127.0.0.3.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from prometheus_client import generate_latest

from schemes.generic import SCHEME
from switch.ops.metrics import registry_for
from tests.integration.harness import client, issuer, port_of, purchase, running_node
from tests.integration.test_links import conf_for, framed, listener_toml, read_frame, read_until_closed, wait_until

HOSTILE, TRICKLER = "127.0.0.2", "127.0.0.3"


async def _open(port: int, local: str) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port, local_address=local)


async def _answer(port: int) -> str:
    """A legitimate client from 127.0.0.1: connect, send a purchase, return its field 39."""
    async with client(port) as c:
        return str((await c.call(purchase()))[39])


async def test_thousands_of_idle_and_trickling_connections_do_not_lock_out_a_new_client(tmp_path: Path) -> None:
    # The silent connections' first-frame deadline is long enough for all 2,000 to be opened while the first 15
    # still hold their slots (the cap refuses the rest), even on a loaded machine; the trickled frames' deadline
    # is short.
    options = ("max_connections = 40\nmax_connections_per_peer = 15\nfirst_frame_timeout_ms = 10000\n"
               "frame_timeout_ms = 300\nidle_timeout_s = 600")
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=listener_toml("acq", options))) \
            as node:
        acq, port = node.listeners["acq"], port_of(node, "acq")
        idle = [await _open(port, HOSTILE) for _ in range(2000)]  # never send a byte
        tricklers = [await _open(port, TRICKLER) for _ in range(30)]
        await wait_until(lambda: acq.refused == 2000 - 15 + 30 - 15)
        body = framed(purchase())

        async def trickle(stream: trio.SocketStream) -> None:
            for byte in body:  # a byte every 50 ms: never a whole frame within 300 ms
                try:
                    await stream.send_all(bytes([byte]))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            for stream in tricklers:
                nursery.start_soon(trickle, stream)
            # The hostile addresses hold what their cap lets them; the legitimate client still gets its answer.
            assert len(acq.active) == 30
            assert await _answer(port) == "00"
            # The trickled frames are dropped at their deadline, the silent connections at the first-frame one.
            await wait_until(lambda: acq.closes.get("frame timeout") == 15)
            assert acq.closes == {"frame timeout": 15}
            await wait_until(lambda: not acq.active, timeout=20)
        for stream in idle + tricklers:
            await stream.aclose()
        assert acq.refusals == {"per-peer": 2000 - 15 + 30 - 15}
        assert acq.closes == {"first-frame timeout": 15, "frame timeout": 15}
        assert await _answer(port) == "00"
        assert iss.stats.received["0200"] == 2


async def test_idle_connections_filling_the_limit_are_let_go_at_the_first_frame_deadline(tmp_path: Path) -> None:
    options = "max_connections = 20\nmax_connections_per_peer = 20\nfirst_frame_timeout_ms = 300"
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=listener_toml("acq", options))) \
            as node:
        acq, port = node.listeners["acq"], port_of(node, "acq")
        idle = [await _open(port, HOSTILE) for _ in range(20)]
        await wait_until(lambda: len(acq.active) == 20)
        refused = await trio.open_tcp_stream("127.0.0.1", port)  # every slot taken: refused
        async with refused:
            await refused.send_all(framed(purchase()))
            assert await read_until_closed(refused) == b""
        assert acq.refusals == {"limit": 1}
        with trio.fail_after(3):  # the slots free up at the first-frame deadline, not the idle timeout (300 s)
            await wait_until(lambda: not acq.active)
            assert await _answer(port) == "00"
        for stream in idle:
            await stream.aclose()
        assert acq.closes == {"first-frame timeout": 20}


async def test_one_address_cannot_take_more_than_its_cap(tmp_path: Path) -> None:
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=listener_toml(
            "acq", "max_connections_per_peer = 2"))) as node:
        acq, port = node.listeners["acq"], port_of(node, "acq")
        first, second, third = [await _open(port, HOSTILE) for _ in range(3)]
        async with first, second, third:
            assert await read_until_closed(third) == b""
            await first.send_all(framed(purchase(stan=1)))
            assert SCHEME.decode((await read_frame(first)).body)[39] == "00"  # the two within the cap are served
            assert await _answer(port) == "00"  # another address is not affected
            assert acq.refusals == {"per-peer": 1}
            scraped = generate_latest(registry_for(node)).decode()  # what Prometheus sees
            assert 'bulkhead_listener_refused_total{listener="acq",reason="per-peer"} 1.0' in scraped
            # Admission's figures beside them (switch.runtime.links.admission): nothing shed, nothing waiting.
            assert 'bulkhead_listener_shed_total{listener="acq",reason="waited"} 0.0' in scraped
            assert 'bulkhead_listener_backlog{listener="acq"} 0.0' in scraped
        await wait_until(lambda: not acq.active)
        async with await _open(port, HOSTILE) as again:  # the address's slots are free once its connections close
            await again.send_all(framed(purchase(stan=2)))
            assert SCHEME.decode((await read_frame(again)).body)[39] == "00"


async def test_the_format_error_budget_closes_the_connection_and_the_log_stays_short(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bulkhead")
    options = "format_error_budget = 5\nformat_error_window_s = 60"
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=listener_toml("acq", options))) \
            as node:
        acq, port = node.listeners["acq"], port_of(node, "acq")
        wire = SCHEME.encode(purchase(stan=5))
        cut = wire.index(b"000000000005")  # field 37 (the RRN): the message ends inside it
        garbage = binary2(wire[:cut + 3])
        async with await _open(port, HOSTILE) as bad:
            await bad.send_all(garbage * 200)
            answered = await read_until_closed(bad)
        # A 30 for each frame up to and including the one over the budget (5), then the connection is closed.
        answers = [SCHEME.decode(body) for body in decode_all(answered)]
        assert [(a.mti, a.stan, a[39]) for a in answers] == [("0210", "000005", "30")] * 6
        assert acq.format_errors == 6 and acq.closes == {"format-error budget": 1}
        assert await _answer(port) == "00"
    lines = [r for r in caplog.records if "format error" in r.getMessage() or "undecodable" in r.getMessage()]
    assert 1 <= len(lines) <= 2  # one line for the peer (and the count), not one per frame


async def test_an_address_that_keeps_reconnecting_to_flood_is_refused_for_the_window(tmp_path: Path) -> None:
    options = "format_error_budget = 3\nformat_error_window_s = 60\nformat_error_ban_after = 2"
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=listener_toml("acq", options))) \
            as node:
        acq, port = node.listeners["acq"], port_of(node, "acq")
        garbage = binary2(b"0200" + b"\xff" * 30)
        for _ in range(2):  # each connection is closed past its budget; the second close bans the address
            async with await _open(port, HOSTILE) as bad:
                await bad.send_all(garbage * 10)
                await read_until_closed(bad)
        async with await _open(port, HOSTILE) as again:  # refused at once, before it can send anything
            assert await read_until_closed(again) == b""
        assert acq.refusals == {"format-error budget": 1} and acq.closes == {"format-error budget": 2}
        assert await _answer(port) == "00"  # another address is not affected


async def test_unsolicited_responses_count_against_the_budget(tmp_path: Path) -> None:
    options = "format_error_budget = 3\nformat_error_window_s = 60\nformat_error_ban_after = 0"
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=listener_toml("acq", options))) \
            as node:
        acq, port = node.listeners["acq"], port_of(node, "acq")
        response = SCHEME.make_response(purchase(stan=9), "00")  # an answer to nothing the node sent
        async with await _open(port, HOSTILE) as bad:
            await bad.send_all(framed(response) * 50)
            assert await read_until_closed(bad) == b""
        assert acq.closes == {"format-error budget": 1} and acq.refusals == {}
        async with await _open(port, HOSTILE) as again:  # no ban with format_error_ban_after = 0
            await again.send_all(framed(purchase(stan=10)))
            assert SCHEME.decode((await read_frame(again)).body)[39] == "00"


@pytest.mark.parametrize("mti", ["0000", "0500", "0900", "1200", "9200", "0300"])
async def test_an_mti_the_network_does_not_define_is_dropped_not_answered(tmp_path: Path, mti: str) -> None:
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=listener_toml("acq"))) as node:
        port = port_of(node, "acq")
        body = SCHEME.encode(purchase(stan=7))
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(binary2(mti.encode() + body[4:]))
            await stream.send_all(framed(purchase(stan=8)))
            answer = SCHEME.decode((await read_frame(stream)).body)
            # The first thing back is the purchase's answer: nothing at all for the undefined MTI.
            assert (answer.mti, answer.stan, answer[39]) == ("0210", "000008", "00")
            with trio.move_on_after(0.3):
                extra = await stream.receive_some(65536)
                raise AssertionError(f"unexpected bytes after the answer: {len(extra)}")
        assert node.listeners["acq"].format_errors == 1
        assert iss.stats.received["0200"] == 1


def binary2(body: bytes) -> bytes:
    """``body`` behind a 2-byte binary length, whatever it holds (framed() encodes a message)."""
    return len(body).to_bytes(2, "big") + body


def decode_all(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out
