"""A node on loopback, driven by a real ISO 8583 client: the answers a switch team checks first."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from sqlalchemy import text

from schemes.generic import SCHEME
from switch.storage.journal import find_exchanges
from tests.integration.harness import (
    PAN,
    ROUTES_ONE,
    client,
    issuer,
    port_of,
    purchase,
    running_node,
    write_config,
)


async def test_purchase_approved_end_to_end_and_journaled_masked(tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            req = purchase(amount=1234)
            resp = await c.call(req)
            assert resp.mti == "0210"
            assert resp[39] == "00"
            assert len(str(resp[38])) == 6
            for n in (2, 3, 4, 11, 37, 41, 49):
                assert resp[n] == req[n]
            assert iss.stats.received["0200"] == 1
            rows = await trio.to_thread.run_sync(lambda: find_exchanges(node.engine, stan=str(req[11])))
    (row,) = rows
    assert (row.mti_in, row.mti_out, row.response_code, row.outcome) == ("0200", "0210", "00", "approved")
    assert (row.source_link, row.destination, row.route) == ("acquirer", "up", "(default)")
    assert row.pan_masked == "476173******0010"
    assert row.pan_hash and len(row.pan_hash) == 64
    assert row.amount == 1234 and row.currency == "840"
    assert row.request["2"] == "476173******0010"
    assert row.upstream_us is not None and row.latency_us >= row.upstream_us


async def test_no_clear_pan_anywhere_in_the_database(tmp_path: Path, db_url: str) -> None:
    async with issuer({"rules": [{"action": "drop", "bin": "4761739001010051"}]}) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"), timeout_ms=300)
        async with running_node(conf) as node, client(port_of(node)) as c:
            await c.call(purchase())
            await c.call(purchase(pan="4761739001010051"))  # times out: a reversal is queued (sealed)
            engine = node.engine

            def dump() -> str:
                out = []
                with engine.connect() as conn:
                    for table in ("journal", "saf_entries", "route_reloads"):
                        for row in conn.execute(text(f"SELECT * FROM {table}")):
                            out.append(repr(tuple(row)))
                return "\n".join(out)

            everything = await trio.to_thread.run_sync(dump)
    assert "476173******0051" in everything
    assert PAN not in everything and "4761739001010051" not in everything


async def test_switch_answers_network_management_itself(tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            from switch.model.message import Message

            echo = Message("0800", {7: "1122101010", 11: "000777", 70: "301"})
            resp = await c.call(echo)
            assert (resp.mti, resp[39], resp[70]) == ("0810", "00", "301")
            assert iss.stats.received["0800"] == 1  # only the node's own sign-on reached the issuer


async def test_reject_rule_answers_92_without_forwarding(tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            resp = await c.call(purchase(pan="9999990000000006"))
            assert resp[39] == "92"
            assert iss.stats.received["0200"] == 0


async def test_missing_mandatory_field_gets_30(tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            req = purchase()
            del req[3]
            resp = await c.call(req)
            assert (resp.mti, resp[39]) == ("0210", "30")
            assert iss.stats.received["0200"] == 0


async def test_truncated_field_gets_30_and_connection_keeps_working(tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            bad = purchase()
            body = SCHEME.encode(bad)
            # Cut inside field 49 (the last one): 2 ... 42 are readable, so the 30 carries 11 and 41 back.
            await c.send_raw(c.framer.encode(body[:-2]))
            c.waiting.setdefault(c.key(bad), trio.Event())
            resp = await c.wait(bad)
            assert (resp.mti, resp[39]) == ("0210", "30")
            # garbage that is not even an MTI is dropped; the connection stays usable
            await c.send_raw(c.framer.encode(b"\xff\xfe garbage"))
            good = await c.call(purchase())
            assert good[39] == "00"


async def test_unanswered_financial_request_gets_91_and_is_reversed(tmp_path: Path, db_url: str) -> None:
    rules = {"rules": [{"action": "delay", "bin": "4761739001010044", "ms": 800}]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"), timeout_ms=300)
        async with running_node(conf) as node, client(port_of(node)) as c:
            start = trio.current_time()
            resp = await c.call(purchase(pan="4761739001010044"))
            assert resp[39] == "91"
            assert trio.current_time() - start < 1.0  # answered within the timeout, not after the issuer
            # The reversal is delayed as well (800 ms) but within the SAF send timeout: acknowledged once.
            with trio.fail_after(10):
                while not (iss.stats.received["0400"] + iss.stats.received["0401"]):
                    await trio.sleep(0.05)
                while await trio.to_thread.run_sync(node.saf.pending_count, None):
                    await trio.sleep(0.05)
            (item,) = await trio.to_thread.run_sync(lambda: node.saf.list_items())
            assert (item.mti, item.status, item.destination) == ("0400", "acked", "up")
            assert item.pan_masked == "476173******0044"
            assert node.late_responses >= 1  # the original's answer came late and went to the late handler


async def test_destination_down_gets_91_without_reversal(tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node:
            iss.cancel.cancel()
            with trio.fail_after(5):
                while node.outbound["up"].is_up():
                    await trio.sleep(0.01)
            async with client(port_of(node)) as c:
                resp = await c.call(purchase())
            assert resp[39] == "91"
            assert await trio.to_thread.run_sync(node.saf.pending_count, None) == 0


async def test_reversal_queue_survives_a_restart_and_repeats_as_0401(tmp_path: Path, db_url: str) -> None:
    # First life: the issuer drops everything for this card, so the original times out (91) and the reversal
    # is sent once (0400) and goes unanswered too.
    async with issuer({"rules": [{"action": "drop", "bin": "4761739001010051"}]}) as first:
        conf = write_config(tmp_path, db_url, {"up": first.port}, ROUTES_ONE.format(link="up"), timeout_ms=200,
                            saf_delay_ms=0, saf_send_timeout_ms=200)
        async with running_node(conf) as node, client(port_of(node)) as c:
            assert (await c.call(purchase(pan="4761739001010051")))[39] == "91"
            with trio.fail_after(10):
                while not first.stats.received["0400"]:
                    await trio.sleep(0.02)
            node.stop()
        port = first.port
        first.cancel.cancel()
    # Second life: a new node on the same database and data key, and an issuer that answers. The queued
    # reversal goes out again, as the repeat 0401, and is acknowledged.
    async with issuer(port=port) as second:
        conf = write_config(tmp_path, db_url, {"up": port}, ROUTES_ONE.format(link="up"), saf_delay_ms=0)
        async with running_node(conf) as node:
            with trio.fail_after(10):
                while await trio.to_thread.run_sync(node.saf.pending_count, None):
                    await trio.sleep(0.05)
            (item,) = await trio.to_thread.run_sync(lambda: node.saf.list_items())
    assert second.stats.received["0401"] == 1
    assert second.stats.received["0400"] == 0
    assert (item.status, item.attempts, item.last_response_code) == ("acked", 2, "00")  # 0400 then 0401


async def test_atm_withdrawal_and_balance_inquiry_on_the_atm_port(tmp_path: Path, db_url: str) -> None:
    from switch.sim.requests import Numbering, RequestTemplate

    numbering = Numbering(seed=7)
    withdrawal = numbering.stamp(RequestTemplate(pan=PAN, amount=5000, atm=True).build(), 0, "ATM00001")
    inquiry = numbering.stamp(RequestTemplate(pan=PAN, processing_code="301000", atm=True).build(), 1, "ATM00001")
    async with issuer({"approve": {"balance": 250000, "available": 200000}}) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node, "atm")) as c:
            w = await c.call(withdrawal)
            b = await c.call(inquiry)
            no_pin = withdrawal.copy()
            no_pin[11] = "999999"
            del no_pin[52]
            refused = await c.call(no_pin)
    assert (w.mti, w[39], w[3], w[4]) == ("0210", "00", "011000", "000000005000")
    assert (b[39], b[3]) == ("00", "301000")
    # field 54: account type, amount type (01 ledger, 02 available), currency, sign, 12-digit amount
    assert b[54] == "1001840C000000250000" + "1002840C000000200000"
    assert refused[39] == "30"  # PIN entered (22 = 021) but no PIN block: format error from the ATM rules
    assert iss.stats.received["0200"] == 2


async def test_prometheus_metrics_count_exchanges_and_show_link_state(tmp_path: Path, db_url: str) -> None:
    import urllib.request

    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"),
                            extra="\n[metrics]\nport = 0\n")
        async with running_node(conf) as node, client(port_of(node)) as c:
            await c.call(purchase())
            await c.call(purchase())
            await c.call(purchase(pan="9999990000000006"))
            url = f"http://127.0.0.1:{node.metrics_port}/metrics"
            text = await trio.to_thread.run_sync(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert ('bulkhead_exchanges_total{destination="up",mti="0200",outcome="approved",response_code="00",'
            'source="acquirer"} 2.0') in text
    assert ('bulkhead_exchanges_total{destination="",mti="0200",outcome="no_route",response_code="92",'
            'source="acquirer"} 1.0') in text
    assert 'bulkhead_exchange_latency_seconds_count{source="acquirer"} 3.0' in text
    assert 'bulkhead_link_up{link="up"} 1.0' in text
    assert "bulkhead_journal_rows_total" in text
    assert PAN not in text


POOL_ROUTES = """
default = "pool"
[destinations.pool]
links = ["primary", "secondary"]
strategy = "{strategy}"
"""


async def test_primary_secondary_pool_fails_over_and_back(tmp_path: Path, db_url: str) -> None:
    async with issuer() as primary, issuer() as secondary:
        conf = write_config(tmp_path, db_url, {"primary": primary.port, "secondary": secondary.port},
                            POOL_ROUTES.format(strategy="primary_secondary"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            assert (await c.call(purchase()))[39] == "00"
            primary.cancel.cancel()  # the primary host goes away
            with trio.fail_after(5):
                while node.outbound["primary"].is_up():
                    await trio.sleep(0.01)
            assert (await c.call(purchase()))[39] == "00"
            assert (await c.call(purchase()))[39] == "00"
    assert (primary.stats.received["0200"], secondary.stats.received["0200"]) == (1, 2)


async def test_round_robin_pool_spreads_requests(tmp_path: Path, db_url: str) -> None:
    async with issuer() as a, issuer() as b:
        conf = write_config(tmp_path, db_url, {"primary": a.port, "secondary": b.port},
                            POOL_ROUTES.format(strategy="round_robin"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            for _ in range(10):
                assert (await c.call(purchase()))[39] == "00"
    assert (a.stats.received["0200"], b.stats.received["0200"]) == (5, 5)


async def test_parked_workers_keep_no_finished_exchange(tmp_path: Path, db_url: str) -> None:
    """Card data lives no longer than its exchange: a worker parked for the next exchange holds nothing of the
    last one (its clear request with track 2 and PIN block, its connection). Workers run what cannot continue
    inline: here every request finds its destination down (91)."""
    from switch.exchange.context import Exchange

    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            iss.cancel.cancel()
            with trio.fail_after(5):
                while node.outbound["up"].is_up():
                    await trio.sleep(0.01)
            requests = [purchase(stan=7000 + n) for n in range(40)]
            for req in requests:
                await c.send(req)  # pipelined: several workers run at once, then park
            for req in requests:
                assert (await c.wait(req))[39] == "91"
            with trio.fail_after(5):
                while node.in_flight:
                    await trio.sleep(0.01)
            parked = [slot._task for slot in node.tasks._idle if slot._task is not None]
            assert parked, "no worker parked: the test would prove nothing"
            for task in parked:  # the worker coroutine's own variables, as it sits parked
                assert task.coro.cr_frame is not None
                assert not any(isinstance(v, Exchange) for v in task.coro.cr_frame.f_locals.values())


async def test_the_common_path_answers_without_a_task_and_keeps_no_finished_exchange(
        tmp_path: Path, db_url: str) -> None:
    """Forwarded and answered requests run as continuations (no worker is started), and what the node's timer
    still holds of their settled waits (upstream answer, journal commit) keeps no exchange alive."""
    import gc

    from switch.exchange.context import Exchange

    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            requests = [purchase(stan=7100 + n) for n in range(40)]
            for req in requests:
                await c.send(req)
            for req in requests:
                assert (await c.wait(req))[39] == "00"
            with trio.fail_after(5):
                while node.in_flight:
                    await trio.sleep(0.01)
            assert node.exchanges == 40 and not node.tasks._idle  # no task was needed
            assert len(node.timer) > 0  # settled entries wait for their deadlines in the heap
            assert node.awaiting_upstream == {}
            gc.collect()
            alive = [o for o in gc.get_objects() if isinstance(o, Exchange)]
            assert alive == []
    assert iss.stats.received["0200"] == 40


async def test_debug_level_logs_each_exchange_masked(tmp_path: Path, db_url: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            req = purchase(amount=1234)
            resp = await c.call(req)
            assert resp[39] == "00"
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    mine = [line for line in lines if f"stan {req[11]}" in line and line.startswith("exchange ")]
    assert len(mine) == 1
    assert "card 476173******0010 from acquirer via (default) to up: 0210 00, approved in" in mine[0]
    assert any(line.startswith("listener acquirer: connection from 127.0.0.1") for line in lines)
    assert not any(PAN in r.getMessage() for r in caplog.records)


async def test_info_level_logs_no_line_per_exchange(tmp_path: Path, db_url: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            req = purchase(amount=1234)
            assert (await c.call(req))[39] == "00"
    assert not [r for r in caplog.records if f"stan {req[11]}" in r.getMessage()]


async def test_the_acquirer_simulator_shows_a_request_without_a_stan_answered_30(tmp_path: Path,
                                                                                   db_url: str) -> None:
    """The README's example: a request file whose line sets field 11 to null is sent without a STAN."""
    from switch.sim.acquirer import AcquirerConfig, run_acquirer
    from switch.wire.framing import LengthFraming

    requests = tmp_path / "no-stan.jsonl"
    requests.write_text('{"mti": "0200", "fields": {"2": "4761739001010010", "3": "000000", '
                        '"4": "000000001000", "49": "840", "11": null}}\n', encoding="utf-8")
    seen = []
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node:
            report = await run_acquirer(
                AcquirerConfig(port=port_of(node), framing=LengthFraming("binary2"), requests_file=requests),
                lambda index, msg, latency: seen.append(msg))
            assert iss.stats.received["0200"] == 0
    assert (report.sent, report.received, report.timeouts) == (1, 1, 0)
    assert seen[0][39] == "30" and 11 not in seen[0].fields
