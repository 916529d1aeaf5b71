"""Acquirer simulator against issuer simulator over real loopback sockets (port 0, fail_after)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from bench.ports import free_port
from schemes.unionpay.framing import UnionPayFraming
from schemes.visa.framing import VisaFraming
from switch.contracts.network import LinkOptions
from switch.contracts.registry import network
from switch.model.message import Message
from switch.sim.acquirer import AcquirerConfig, AcquirerReport, SimulatorError, run_acquirer
from switch.sim.issuer import IssuerConfig, IssuerStats, serve_issuer
from switch.sim.requests import RequestTemplate
from switch.sim.rules import IssuerRules, Rule
from switch.wire.framing import Frame, Framer, LengthFraming

LIMIT = 15  # seconds: a hang fails the test instead of blocking the suite
RULES = IssuerRules(
    rules=(
        Rule("decline", bin="400000", code="05"),
        Rule("decline", amount_over=100_000, code="61"),
        Rule("delay", bin="455555", ms=150),
        Rule("drop", bin="422222"),
    ),
    balance=150_000,
)


@asynccontextmanager
async def issuer(config: IssuerConfig) -> AsyncIterator[tuple[int, IssuerStats]]:
    stats = IssuerStats()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: serve_issuer(config, stats=stats, task_status=task_status))
        yield port, stats
        nursery.cancel_scope.cancel()


async def run(port: int, framing: LinkOptions | None = None, **kwargs: Any) -> AcquirerReport:
    config = AcquirerConfig(port=port, framing=framing or LengthFraming("binary2"), **kwargs)
    return await run_acquirer(config)


async def test_many_requests_over_several_connections() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, stats):
            report = await run(port, count=300, connections=3, inflight=20)
    assert (report.sent, report.received, report.timeouts, report.late, report.errors) == (300, 300, 0, 0, 0)
    assert report.codes == Counter({"00": 300})
    assert len(report.latencies) == 300 and report.elapsed > 0 and report.tps > 0
    assert report.percentile(50) <= report.percentile(99) <= max(report.latencies)
    assert stats.received == Counter({"0200": 300})
    assert stats.answered == Counter({"00": 300})
    assert stats.connections == 3


@pytest.mark.parametrize(
    ("template", "code"),
    [
        (RequestTemplate(pan="4000001234567899"), "05"),
        (RequestTemplate(amount=100_001), "61"),
        (RequestTemplate(amount=100_000), "00"),
        (RequestTemplate(mti="0100", pan="4000001234567899"), "05"),
    ],
    ids=["decline-bin", "decline-amount", "at-threshold", "auth-decline-bin"],
)
async def test_rules_decide_the_code(template: RequestTemplate, code: str) -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):
            report = await run(port, count=10, inflight=5, template=template)
    assert report.codes == Counter({code: 10})


async def test_approve_all_overrides_rules() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES, approve_all=True)) as (port, _):
            report = await run(port, count=5, template=RequestTemplate(pan="4000001234567899"))
    assert report.codes == Counter({"00": 5})


async def test_delay_rule_delays_the_answer() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):
            report = await run(port, count=4, inflight=4, template=RequestTemplate(pan="4555550000000001"))
    assert report.codes == Counter({"00": 4})
    assert min(report.latencies) >= 0.15


async def test_dropped_requests_time_out() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, stats):
            report = await run(port, count=6, inflight=3, timeout_s=0.2,
                               template=RequestTemplate(pan="4222220000000000"))
    assert (report.sent, report.received, report.timeouts, report.errors) == (6, 0, 6, 0)
    assert stats.dropped == 6 and stats.received == Counter({"0200": 6})


async def test_balance_inquiry_and_approval_code() -> None:
    seen: list[Message] = []
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):
            config = AcquirerConfig(port=port, count=2, template=RequestTemplate(processing_code="301000"))
            await run_acquirer(config, lambda index, msg, latency: seen.append(msg))
    assert [m.mti for m in seen] == ["0210", "0210"]
    for msg in seen:
        assert msg[39] == "00"
        approval = msg.text(38)
        assert approval is not None and len(approval) == 6
        assert msg[54] == "1001840C000000150000" "1002840C000000150000"
    assert seen[0][38] != seen[1][38]


async def test_network_management_and_reversals_from_file(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(
        '{"mti": "0800", "fields": {"70": "001"}}\n'
        '{"mti": "0400", "fields": {"2": "4000001234567899", "3": "000000", "4": "000000000500"}}\n'
        '{"mti": "0420", "fields": {"2": "4761739001010010", "3": "000000", "4": "000000000500"}}\n'
        '{"mti": "0421", "fields": {"2": "4761739001010010", "3": "000000", "4": "000000000500"}}\n',
        encoding="utf-8",
    )
    seen: list[Message] = []
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, stats):
            config = AcquirerConfig(port=port, requests_file=path, inflight=1)
            report = await run_acquirer(config, lambda index, msg, latency: seen.append(msg))
    assert report.received == 4
    assert [(m.mti, m[39]) for m in seen] == [("0810", "00"), ("0410", "00"), ("0430", "00"), ("0430", "00")]
    assert seen[0][70] == "001"
    assert stats.received == Counter({"0800": 1, "0400": 1, "0420": 1, "0421": 1})


async def test_missing_mandatory_field_is_answered_with_format_error() -> None:
    adapter = network("generic")
    framer = LengthFraming("binary2").framer()
    request = Message("0200", {2: "4761739001010010", 4: "000000000500", 11: "000123", 41: "T0000001"})
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig()) as (port, _):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(framer.encode(adapter.encode(request)))
                frame = await _next_frame(stream, framer)
    response = adapter.decode(frame.body)
    assert (response.mti, response[39], response[11]) == ("0210", "30", "000123")


@pytest.mark.parametrize(
    "framing",
    [
        LengthFraming("bcd2", tpdu=True),
        LengthFraming("ascii4", length_includes_prefix=True),
        VisaFraming(source_station="123456"),
        UnionPayFraming(length_prefix=False, source_id="48020000", destination_id="00010000"),
        UnionPayFraming(length_prefix=True),
    ],
    ids=["bcd2-tpdu", "ascii4-incl", "visa", "unionpay", "unionpay-prefix"],
)
async def test_every_framing_end_to_end(framing: LinkOptions) -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(framing=framing)) as (port, _):
            report = await run(port, framing, count=40, connections=2, inflight=8)
    assert report.codes == Counter({"00": 40})


async def test_reply_header_is_swapped_on_the_wire() -> None:
    adapter = network("generic")
    config = LengthFraming("binary2", tpdu=True, tpdu_default=bytes.fromhex("6000030005"))
    framer = config.framer()
    request = Message("0800", {7: "0101120000", 11: "000001", 70: "301"})
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(framing=LengthFraming("binary2", tpdu=True))) as (port, _):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(framer.encode(adapter.encode(request)))
                frame = await _next_frame(stream, framer)
    assert frame.header == bytes.fromhex("6000050003")
    assert adapter.decode(frame.body).mti == "0810"


async def test_malformed_input_does_not_stop_the_issuer() -> None:
    adapter = network("generic")
    framer = LengthFraming("binary2").framer()
    echo = framer.encode(adapter.encode(Message("0800", {7: "0101120000", 11: "000777", 70: "301"})))
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig()) as (port, stats):
            # 1. An undecodable message is skipped; the same connection keeps working.
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"\x00\x07garbage" + b"\x00\x03\xff\xfe\xfd" + echo)
                frame = await _next_frame(stream, framer)
                assert adapter.decode(frame.body)[11] == "000777"
            # 2. A keep-alive is echoed.
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"\x00\x00")
                assert await stream.receive_some(10) == b"\x00\x00"
            # 3. An oversized length closes that connection only.
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"\xff\xff" + b"x" * 100)
                assert await _read_to_eof(stream) == b""
            # 4. A peer that vanishes mid-frame.
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(echo[:5])
            await stream.aclose()
            # The server still answers a normal run.
            report = await run(port, count=20, inflight=10)
    assert report.codes == Counter({"00": 20})
    assert stats.malformed == 3  # two undecodable bodies, one framing error
    assert stats.keepalives == 1


async def test_acquirer_reports_unreachable_issuer() -> None:
    with trio.fail_after(LIMIT), pytest.raises(SimulatorError, match="cannot connect"):
        await run(free_port(), count=1)  # reserved for this run: nothing listens there


async def test_acquirer_counts_requests_lost_with_the_connection() -> None:
    async def close_after_first_read(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some(10)

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, close_after_first_read, 0)
            port = listeners[0].socket.getsockname()[1]
            report = await run(port, count=10, inflight=4, timeout_s=5)
            nursery.cancel_scope.cancel()
    assert report.received == 0 and report.timeouts == 0
    assert report.errors == 10


async def _next_frame(stream: trio.SocketStream, framer: Framer) -> Frame:
    while True:
        frame = framer.next_frame()
        if frame is not None:
            return frame
        data = await stream.receive_some(65536)
        assert data, "connection closed before a frame arrived"
        framer.receive_data(data)


async def _read_to_eof(stream: trio.SocketStream) -> bytes:
    out = b""
    try:
        while data := await stream.receive_some(65536):
            out += data
    except trio.BrokenResourceError:
        pass
    return out


async def test_answers_after_the_timeout_are_counted_late() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):  # 455555: answered after 150 ms
            report = await run(port, count=3, inflight=3, timeout_s=0.05,
                               template=RequestTemplate(pan="4555550000000001"))
    assert (report.sent, report.received, report.timeouts, report.late, report.unmatched) == (3, 0, 3, 3, 0)


async def test_late_answers_are_waited_for_only_as_long_as_told() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):  # 422222: never answered
            report = await run(port, count=2, inflight=2, timeout_s=0.05, late_wait_s=0.2,
                               template=RequestTemplate(pan="4222220000000000"))
    assert (report.timeouts, report.late, report.errors) == (2, 0, 0)
    assert report.elapsed >= 0.25  # the timeout, then the wait for answers owed


def test_the_default_timeout_is_above_the_demo_switchs() -> None:
    # The demo's issuer destination times out after 5 s and the switch then answers 91: the simulator must
    # still be waiting, or the README's slow-issuer cards would show a timeout or a 91 at random.
    assert AcquirerConfig().timeout_s >= 2 * 5.0


async def test_rate_paces_the_requests() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):
            report = await run(port, count=10, inflight=4, connections=2, rate=40.0)
    assert (report.sent, report.received) == (10, 10)
    assert report.elapsed >= 9 / 40  # the 10th request leaves 9 intervals after the first


async def test_duration_sends_until_the_time_is_up() -> None:
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):
            paced = await run(port, duration_s=0.3, rate=50.0, inflight=4)
            flat_out = await run(port, duration_s=0.2, inflight=8, connections=2)
    assert 5 <= paced.sent <= 15 and paced.received == paced.sent and paced.elapsed >= 0.3
    assert flat_out.sent > 0 and flat_out.received == flat_out.sent and flat_out.errors == 0


async def test_a_count_and_a_duration_are_refused_together() -> None:
    with pytest.raises(SimulatorError, match="a count or a duration"):
        await run(9, count=1, duration_s=1.0)


async def test_a_request_file_keeps_its_stan_and_rrn_and_can_leave_them_out(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(
        '{"mti": "0200", "fields": {"2": "4761739001010010", "3": "000000", "4": "000000000500", '
        '"11": "123456", "37": "RRN000000042"}}\n'
        '{"mti": "0200", "fields": {"2": "4761739001010010", "3": "000000", "4": "000000000500", "11": null}}\n',
        encoding="utf-8",
    )
    seen: list[Message] = []
    with trio.fail_after(LIMIT):
        async with issuer(IssuerConfig(rules=RULES)) as (port, _):
            config = AcquirerConfig(port=port, requests_file=path, inflight=1)
            report = await run_acquirer(config, lambda index, msg, latency: seen.append(msg))
    assert report.received == 2
    assert (seen[0][39], seen[0][11], seen[0][37]) == ("00", "123456", "RRN000000042")
    assert seen[1][39] == "30" and 11 not in seen[1].fields
