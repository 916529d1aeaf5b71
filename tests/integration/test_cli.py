"""The ``bulkhead`` command against a running node, as an operator uses it.

The node runs in the test's trio loop; each command runs through click's CliRunner in a worker thread (the
commands block on the admin socket or the database), with ``--conf`` pointing at the test's node.toml. Every
output is kept and scanned at the end of each test: no clear card number may ever appear in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner, Result
from sqlalchemy import inspect

from switch.cli.main import main
from switch.infra.db.engine import make_engine
from switch.runtime.node import Node
from switch.storage.audit import list_route_reloads
from switch.storage.db import current_revision, head_revision
from switch.storage.saf import SafItem
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

DROPPED_PAN = "4761739001010051"  # the issuer simulator never answers this card
CLEAR_PANS = (PAN, DROPPED_PAN)


class Cli:
    """Runs ``bulkhead`` commands off the trio thread and keeps every output for the PAN scan."""

    def __init__(self, conf: Path) -> None:
        self.conf = conf
        self.outputs: list[str] = []

    def run(self, *args: str) -> Result:
        result = CliRunner().invoke(main, [*args, "--conf", str(self.conf)], catch_exceptions=False)
        self.outputs.append(result.output)
        return result

    async def __call__(self, *args: str) -> Result:
        return await trio.to_thread.run_sync(lambda: self.run(*args))

    def assert_no_clear_pan(self) -> None:
        assert self.outputs
        for output in self.outputs:
            for pan in CLEAR_PANS:
                assert pan not in output


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path / "node.toml")
    yield c
    c.assert_no_clear_pan()


ROUTES_TWO = ROUTES_ONE + """
[[routes]]
name = "demo-cards"
bins = ["476173"]
destination = "issuer"
"""


# -- routes ----------------------------------------------------------------------------------------------
def test_routes_check_accepts_a_good_file_and_names_file_line_and_key_of_a_broken_one(
    tmp_path: Path, cli: Cli
) -> None:
    write_config(tmp_path, "sqlite:///unused.db", {"up": 9}, ROUTES_ONE.format(link="up"))
    good = cli.run("routes", "check", str(tmp_path / "routes.toml"))
    assert good.exit_code == 0, good.output
    assert "routes.toml: ok (digest " in good.output

    broken = tmp_path / "broken_routes.toml"
    broken.write_text(
        'default = "issuer"\n'        # 1
        "\n"                          # 2
        "[destinations.issuer]\n"     # 3
        'links = ["up"]\n'            # 4
        "\n"                          # 5
        "[[routes]]\n"                # 6
        'name = "demo"\n'             # 7
        'bins = ["476173"]\n'         # 8
        'destination = "isuser"\n'    # 9
    )
    bad = cli.run("routes", "check", str(broken))
    assert bad.exit_code != 0
    assert "broken_routes.toml:9" in bad.output
    assert "routes[0].destination" in bad.output
    assert "isuser" in bad.output and "ok (digest" not in bad.output

    # a link the node does not have: checked against the connectors of --conf
    unknown = tmp_path / "unknown_link.toml"
    unknown.write_text('default = "x"\n[destinations.x]\nlinks = ["nowhere"]\n')
    bad = cli.run("routes", "check", str(unknown))
    assert bad.exit_code != 0
    assert "unknown_link.toml:3" in bad.output and "destinations.x.links" in bad.output


async def test_routes_show_prints_the_live_table(tmp_path: Path, cli: Cli) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, _sqlite(tmp_path), {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node:
            # the file changes on disk; "show" reports what the node runs, not the file
            (tmp_path / "routes.toml").write_text(ROUTES_TWO.format(link="up"))
            shown = await cli("routes", "show")
            digest = node.table.digest
    assert shown.exit_code == 0, shown.output
    assert f"# live table from {tmp_path / 'routes.toml'} (digest {digest[:16]})" in shown.output
    assert "blocked" in shown.output and "demo-cards" not in shown.output


async def test_routes_reload_prints_the_diff_and_is_audited(tmp_path: Path, db_url: str, cli: Cli) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node:
            old = node.table.digest
            (tmp_path / "routes.toml").write_text(ROUTES_TWO.format(link="up"))
            reloaded = await cli("routes", "reload")
            new = node.table.digest
            broken = tmp_path / "broken.toml"
            broken.write_text(ROUTES_TWO.format(link="up").replace('bins = ["476173"]', 'bins = ["4761x3"]'))
            refused = await cli("routes", "reload", "--file", str(broken))
            assert node.table.digest == new  # the broken table was not applied
            engine = node.engine
            audits = await trio.to_thread.run_sync(lambda: list_route_reloads(engine))
    assert reloaded.exit_code == 0, reloaded.output
    assert f"{old[:12]} -> {new[:12]}" in reloaded.output and old != new
    assert "demo-cards" in reloaded.output  # the diff names the added route
    assert refused.exit_code != 0
    assert "broken.toml" in refused.output and "routes[1].bins[0]" in refused.output
    assert sorted(a.outcome for a in audits) == ["applied", "rejected"]
    applied = next(a for a in audits if a.outcome == "applied")
    assert applied.old_digest == old and applied.new_digest == new
    assert applied.diff and "demo-cards" in applied.diff
    assert applied.actor and applied.actor != "unknown"


# -- links -----------------------------------------------------------------------------------------------
async def test_links_status_echo_signoff_and_signon(tmp_path: Path, cli: Cli) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, _sqlite(tmp_path), {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf):
            status = await cli("links", "status")
            echo = await cli("links", "echo", "up")
            off = await cli("links", "signoff", "up")
            status_off = await cli("links", "status")
            on = await cli("links", "signon", "up")
            unknown = await cli("links", "echo", "nowhere")
    assert status.exit_code == 0, status.output
    rows = {line.split()[0]: line.split()[1:3] for line in status.output.splitlines()}
    assert rows == {"up": ["connector", "signed_on"], "acquirer": ["listener", "listening"],
                    "atm": ["listener", "listening"]}
    assert f"peer=127.0.0.1:{iss.port}" in status.output
    assert "refusals=- closes=- format_errors=0" in status.output  # a listener's counts, one token each
    assert echo.exit_code == 0 and '"response_code": "00"' in echo.output
    assert off.exit_code == 0 and '"state": "connected"' in off.output
    assert any(line.split()[:3] == ["up", "connector", "connected"] for line in status_off.output.splitlines())
    assert on.exit_code == 0 and '"state": "signed_on"' in on.output
    assert unknown.exit_code != 0 and "nowhere" in unknown.output
    # sign-on at start, echo, sign-off, sign-on, and the sign-off of the node's orderly stop
    assert iss.stats.received["0800"] == 5


async def test_links_status_without_a_running_node_says_so(tmp_path: Path, cli: Cli) -> None:
    write_config(tmp_path, _sqlite(tmp_path), {"up": 9}, ROUTES_ONE.format(link="up"))
    result = await cli("links", "status")
    assert result.exit_code != 0
    assert "no node is running" in result.output


# -- store and forward, journal --------------------------------------------------------------------------
async def test_saf_show_lists_the_reversal_masked_and_retry_sends_it_now(
    tmp_path: Path, db_url: str, cli: Cli
) -> None:
    rules: dict[str, object] = {"rules": [{"action": "drop", "bin": DROPPED_PAN}]}
    async with issuer(rules) as iss:
        # The first attempt goes out at once and is not answered; the next one is a minute away
        # unless the operator asks for it.
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"), timeout_ms=300,
                            saf_delay_ms=0, saf_send_timeout_ms=300, saf_retry_ms=60_000)
        async with running_node(conf) as node, client(port_of(node)) as c:
            req = purchase(pan=DROPPED_PAN, amount=4321)
            assert (await c.call(req))[39] == "91"
            with trio.fail_after(10):
                while not (iss.stats.received["0400"] and (await _items(node))[0].attempts == 1):
                    await trio.sleep(0.02)
            shown = await cli("saf", "show")
            await trio.sleep(0.3)  # a poll or two of the forwarder: nothing is due yet
            assert iss.stats.received["0401"] == 0
            retried = await cli("saf", "retry")
            with trio.fail_after(10):
                while not iss.stats.received["0401"]:
                    await trio.sleep(0.02)
            pending = await cli("saf", "show", "--status", "pending")
    assert shown.exit_code == 0, shown.output
    (row,) = [line for line in shown.output.splitlines() if " up " in line]
    assert row.split()[1:5] == ["up", "0400", str(req[11]), "476173******0051"]
    assert row.split()[5:9] == ["4321", "840", "pending", "1"]
    assert retried.exit_code == 0 and retried.output.strip() == "1 entries due now"
    assert pending.exit_code == 0 and "476173******0051" in pending.output


async def test_journal_show_by_stan_prints_the_exchange_masked(tmp_path: Path, db_url: str, cli: Cli) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            req = purchase(amount=2500)
            resp = await c.call(req)
            found = await cli("journal", "show", "--stan", str(req[11]))
            missing = await cli("journal", "show", "--stan", "999999")
            by_rrn = await cli("journal", "show", "--rrn", str(req[37]))
            assert node.exchanges == 1
    assert found.exit_code == 0, found.output
    out = found.output
    assert "acquirer -> up (route (default))" in out
    assert "0200 -> 0210  rc 00  approved" in out
    assert f"pan 476173******0010  amount 2500 840  stan {req.stan}  rrn {req.rrn}  tid TERM0001" in out
    assert "request:  " in out and "response: " in out and f"38={resp.text(38)}" in out
    assert missing.exit_code == 1 and "no exchange found" in missing.output
    assert by_rrn.exit_code == 0 and by_rrn.output == found.output


# -- database --------------------------------------------------------------------------------------------
def test_db_upgrade_creates_the_schema_on_a_fresh_database(tmp_path: Path, db_url: str, cli: Cli) -> None:
    write_config(tmp_path, db_url, {"up": 9}, ROUTES_ONE.format(link="up"))
    first = cli.run("db", "upgrade")
    again = cli.run("db", "upgrade")  # idempotent: nothing to do the second time
    assert first.exit_code == 0, first.output
    assert "is up to date" in first.output
    assert again.exit_code == 0, again.output
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"journal", "saf_entries", "route_reloads"} <= tables


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


async def _items(node: Node) -> list[SafItem]:
    return await trio.to_thread.run_sync(lambda: node.saf.list_items())
