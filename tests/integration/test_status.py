"""``bulkhead status`` against a running node, and links that degrade honestly: a destination that accepts the
connection and never answers is shown degraded (state, status, metric, one log line per transition) until its
first answer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import pytest
import trio
from prometheus_client import generate_latest

from bench.ports import free_port
from switch.ops.metrics import registry_for
from switch.runtime.node import Node
from tests.integration.harness import ROUTES_ONE, client, issuer, port_of, purchase, running_node, write_config
from tests.integration.test_cli import Cli, cli  # noqa: F401  (the fixture, with its scan for clear PANs)


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'status.db'}"


async def test_status_shows_the_node_on_one_screen_and_as_json(tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    async with issuer() as iss:
        conf = write_config(tmp_path, _sqlite(tmp_path), {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            for _ in range(3):
                assert (await c.call(purchase()))[39] == "00"
            blocked = await c.call(purchase(pan="9999990000000001"))  # the "reject" route
            echo = await cli("links", "echo", "up")
            as_json = await cli("status", "--json")
            screen = await cli("status")
            routes_digest = node.table.digest
    assert echo.exit_code == 0
    assert as_json.exit_code == 0, as_json.output
    st = json.loads(as_json.output)
    assert st["version"] == version("bulkhead")
    assert st["config"] == {"file": str(conf), "digest": hashlib.sha256(conf.read_bytes()).hexdigest()}
    assert st["routes"]["digest"] == routes_digest
    assert st["uptime_s"] >= 0 and datetime.fromisoformat(st["started_at"]).tzinfo is not None
    assert st["processes"][0]["pid"] == os.getpid() and st["processes"][0]["state"] == "running"
    minute = st["last_minute"]
    assert minute["exchanges"] == 4 and minute["per_second"] > 0
    assert minute["response_codes"] == {"00": 3, str(blocked[39]): 1}
    journal = st["journal"]
    assert journal["rows"] >= 4 and journal["queued"] >= 0 and journal["lag_ms"] >= 0
    assert datetime.fromisoformat(journal["last_commit_at"]).tzinfo is not None
    assert st["saf"] == [] and st["saf_pending"] == 0
    links = {link["name"]: link for link in st["links"]}
    up = links["up"]
    assert (up["state"], up["in_flight"], up["degraded"], up["last_error"]) == ("signed_on", 0, None, None)
    assert up["latency_ms"] > 0 and up["unanswered_in_a_row"] == 0
    assert up["last_echo"]["response_code"] == "00" and up["last_echo"]["ms"] >= 0
    assert datetime.fromisoformat(up["since"]) <= datetime.fromisoformat(up["last_echo"]["at"])
    assert links["acquirer"]["state"] == "listening"

    assert screen.exit_code == 0, screen.output
    lines = screen.output.splitlines()
    assert lines[0].startswith(f"node itest  bulkhead {version('bulkhead')}  up ")
    assert f"sha256 {st['config']['digest'][:16]}" in screen.output
    assert f"sha256 {routes_digest[:16]}" in screen.output
    assert "4 answered" in screen.output and "codes: 00 3 (75.0%)" in screen.output
    row = next(line.split() for line in lines if line.strip().startswith("up "))
    assert row[:2] == ["up", "signed_on"]
    assert next(line.split() for line in lines if line.strip().startswith("acquirer "))[:2] == ["acquirer",
                                                                                               "listening"]
    assert "UTC" in row and "ms," in row  # since (with its zone), latency and the echo's time in ms
    assert "last minute (node up " in screen.output
    assert "store and forward  empty" in screen.output


async def test_status_without_a_running_node_says_so_and_exits_1(tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    write_config(tmp_path, _sqlite(tmp_path), {"up": 9}, ROUTES_ONE.format(link="up"))
    for args in (("status",), ("status", "--json")):
        result = await cli(*args)
        assert result.exit_code == 1
        assert "no node is running" in result.output


# -- links degrade honestly ------------------------------------------------------------------------------
@asynccontextmanager
async def frozen_host() -> AsyncIterator[int]:
    """A host that accepts connections, reads what it is sent and never answers (a hung issuer or cell)."""

    async def swallow(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                while await stream.receive_some(65536):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    port = free_port()  # a connector's host: see harness.issuer()
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, swallow, listeners)
        yield port
        nursery.cancel_scope.cancel()


CONNECTOR = """
[[connectors]]
name = "up"
hosts = ["127.0.0.1:{frozen}", "127.0.0.1:{alive}"]
scheme = "generic"
framing = {{ kind = "binary2" }}
signon = false
timeout_ms = 250
echo_interval_s = 4
degrade_after_timeouts = 2
backoff_initial_ms = 50
backoff_max_ms = 200
"""


async def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


def _degraded_gauge(node: Node) -> str:
    text = generate_latest(registry_for(node)).decode()
    return next(line for line in text.splitlines() if line.startswith('bulkhead_link_degraded{link="up"}'))


async def test_a_frozen_destination_is_shown_degraded_and_its_first_answer_clears_it(
    tmp_path: Path, cli: Cli, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    caplog.set_level(logging.INFO, logger="bulkhead.link")
    async with frozen_host() as frozen, issuer() as alive:
        conf = write_config(tmp_path, _sqlite(tmp_path), {}, ROUTES_ONE.format(link="up"), saf_delay_ms=60_000,
                            extra=CONNECTOR.format(frozen=frozen, alive=alive.port))
        async with running_node(conf) as node, client(port_of(node)) as c:
            link = node.outbound["up"]
            assert link.peer == f"127.0.0.1:{frozen}" and link.state_name == "connected"
            assert (await c.call(purchase()))[39] == "91"  # one timeout: not yet degraded
            assert (link.state_name, link.health.in_a_row) == ("connected", 1)
            assert _degraded_gauge(node).endswith(" 0.0")
            assert (await c.call(purchase()))[39] == "91"
            assert (await c.call(purchase()))[39] == "91"  # a third: still degraded, no new transition
            degraded_links = await cli("links", "status")
            degraded_status = json.loads((await cli("status", "--json")).output)
            degraded_gauge = _degraded_gauge(node)
            # The missed echo closes the connection; the next host answers, and its first answer clears the state.
            await wait_until(lambda: link.peer == f"127.0.0.1:{alive.port}" and link.is_up(), timeout=10)
            assert (await c.call(purchase()))[39] == "00"
            recovered_status = json.loads((await cli("status", "--json")).output)
            recovered_gauge = _degraded_gauge(node)
    row = next(line.split() for line in degraded_links.output.splitlines() if line.startswith("up "))
    assert row[:3] == ["up", "connector", "degraded"]
    up = {link["name"]: link for link in degraded_status["links"]}["up"]
    assert up["state"] == "degraded" and up["unanswered_in_a_row"] == 3
    assert up["degraded"]["reason"] == "2 requests in a row unanswered"
    assert up["since"] == up["degraded"]["since"]
    assert up["last_error"]["error"] == "degraded: 2 requests in a row unanswered"
    assert degraded_gauge.endswith(" 1.0")
    up = {link["name"]: link for link in recovered_status["links"]}["up"]
    assert (up["state"], up["degraded"], up["unanswered_in_a_row"]) == ("connected", None, 0)
    assert up["last_error"]["error"].startswith("echo unanswered")  # the reason it reconnected
    assert up["last_echo"]["response_code"] is None  # the frozen host's
    assert recovered_gauge.endswith(" 0.0")
    # one log line per transition, not one per request
    messages = [r.getMessage() for r in caplog.records if r.name == "bulkhead.link"]
    assert sum("up: degraded:" in m for m in messages) == 1
    assert sum("no longer degraded" in m for m in messages) == 1


POOL = """
default = "issuer"
[destinations.issuer]
links = ["frozen", "alive"]
strategy = "primary_secondary"
"""

POOL_LINKS = """
[[connectors]]
name = "frozen"
hosts = ["127.0.0.1:{frozen}"]
scheme = "generic"
framing = {{ kind = "binary2" }}
signon = false
timeout_ms = 250
echo_interval_s = 60
degrade_after_timeouts = 2
"""


async def test_a_pool_sends_to_its_other_link_while_the_primary_is_degraded(tmp_path: Path) -> None:
    async with frozen_host() as frozen, issuer() as alive:
        conf = write_config(tmp_path, _sqlite(tmp_path), {"alive": alive.port}, POOL, saf_delay_ms=60_000,
                            extra=POOL_LINKS.format(frozen=frozen))
        async with running_node(conf) as node, client(port_of(node)) as c:
            # The primary is up (connected) and silent: its requests time out until it is degraded ...
            codes = [(await c.call(purchase()))[39] for _ in range(2)]
            assert node.outbound["frozen"].state_name == "degraded"
            # ... then the pool's other link carries the traffic, and the primary gets none.
            sent_to_frozen = node.outbound["frozen"].sent
            codes += [(await c.call(purchase()))[39] for _ in range(3)]
            assert node.outbound["frozen"].sent == sent_to_frozen
    assert codes == ["91", "91", "00", "00", "00"]
    assert alive.stats.received["0200"] == 3
