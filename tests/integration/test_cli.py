"""The ``bulkhead`` command against a running node, as an operator uses it.

The node runs in the test's trio loop; each command runs through click's CliRunner in a worker thread (the
commands block on the admin socket or the database), with ``--conf`` pointing at the test's node.toml. Every
output is kept and scanned at the end of each test: no clear card number may ever appear in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from sqlalchemy import inspect

from switch.infra.db.engine import make_engine
from switch.runtime.node import Node
from switch.storage.audit import list_route_reloads
from switch.storage.db import current_revision, head_revision
from switch.storage.journal import find_exchanges
from switch.storage.saf import SafItem
from tests.integration.harness import (
    PAN,
    ROUTES_ONE,
    Cli,
    client,
    issuer,
    port_of,
    purchase,
    running_node,
    write_config,
)

DROPPED_PAN = "4761739001010051"  # the issuer simulator never answers this card
CLEAR_PANS = (PAN, DROPPED_PAN)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path / "node.toml", CLEAR_PANS)
    yield c
    assert c.outputs
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
            as_json = await cli("links", "status", "--json")
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
    assert "shed=backlog_full:0,behind_overdue:0,waited:0 " in status.output  # reasons with spaces, still one
    reported = {link["name"]: link for link in json.loads(as_json.output)}
    assert (reported["up"]["kind"], reported["up"]["state"]) == ("connector", "signed_on")
    assert reported["up"]["peer"] == f"127.0.0.1:{iss.port}" and reported["acquirer"]["state"] == "listening"
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
            (original,) = await trio.to_thread.run_sync(lambda: find_exchanges(node.engine, stan=str(req[11])))
    assert shown.exit_code == 0, shown.output
    (row,) = [line for line in shown.output.splitlines() if " up " in line]
    # The reversal carries the STAN its original was sent upstream with (switch.exchange.identity).
    assert row.split()[1:5] == ["up", "0400", original.upstream_stan, "476173******0051"]
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
            unpadded = await cli("journal", "show", "--stan", str(int(str(req[11]))))
            await c.call(purchase(stan=33370))
            short = await cli("journal", "show", "--stan", "33370")
            bad = [await cli("journal", "show", "--stan", s) for s in ("abc", "1234567", "-1", "")]
            assert node.exchanges == 2
    assert found.exit_code == 0, found.output
    out = found.output
    assert "acquirer -> up (route (default))" in out
    assert "0200 -> 0210  rc 00  approved" in out
    assert f"pan 476173******0010  amount 2500 840  stan {req.stan}  rrn {req.rrn}  tid TERM0001" in out
    assert "request:  " in out and "response: " in out and f"38={resp.text(38)}" in out
    assert missing.exit_code == 1 and "no exchange found" in missing.output
    assert by_rrn.exit_code == 0 and by_rrn.output == found.output
    assert unpadded.exit_code == 0 and unpadded.output == found.output
    assert short.exit_code == 0 and "stan 033370" in short.output
    for result in bad:
        assert result.exit_code == 2 and "is not a STAN (1-6 digits)" in result.output


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


# -- store and forward: operating the queue ----------------------------------------------------------------------
def _queue(db_url: str) -> list[int]:
    """Entries as a node would leave them: one exception (out of attempts), then pending ones for two destinations."""
    from datetime import UTC, datetime, timedelta

    from switch.storage.db import upgrade
    from switch.storage.saf import SafStore

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        store = SafStore(engine)
        now = datetime.now(UTC)
        ids = []
        for n, (destination, created) in enumerate([("up", now - timedelta(hours=2)), ("up", now),
                                                     ("up", now), ("other", now - timedelta(minutes=5))]):
            ids.append(store.enqueue(
                destination=destination, mti="0400", stan=f"{n + 1:06d}", rrn=None, pan_masked="476173******0051",
                amount=100 * (n + 1), currency="840", payload=b"sealed", original_trace_id=None, now=created,
                expires_at=created + timedelta(days=1), original_key=f"K{n}"))
        for _ in range(3):
            store.record_attempt(ids[0], now, now)
        store.escalate(now, max_attempts=3)
        return ids
    finally:
        engine.dispose()


async def test_saf_show_lists_exceptions_first_with_ages_truncation_and_one_entry_with_its_audit(
    tmp_path: Path, db_url: str, cli: Cli
) -> None:
    write_config(tmp_path, db_url, {"up": 9, "other": 10}, ROUTES_ONE.format(link="up"))
    ids = await trio.to_thread.run_sync(_queue, db_url)
    shown = await cli("saf", "show", "--limit", "2")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "other: 1 pending, 0 exceptions, oldest undelivered 5m0" in lines[0]
    assert "up: 2 pending, 1 exceptions, oldest undelivered 2h00m" in lines[1]
    rows = [line.split() for line in lines if line.split()[0].isdigit()]
    assert [(int(r[0]), r[7]) for r in rows] == [(ids[0], "exception"), (ids[1], "pending")]
    assert lines[-1].startswith("truncated: 2 more")

    only = await cli("saf", "show", "--destination", "other", "--json")
    data = json.loads(only.output)
    assert [e["id"] for e in data["entries"]] == [ids[3]] and data["truncated"] == 0
    assert [(d["destination"], d["pending"]) for d in data["destinations"]] == [("other", 1)]
    assert 299 <= data["destinations"][0]["oldest_age_s"] < 400

    cancelled = await cli("saf", "cancel", str(ids[0]), "--reason", "settled by hand, case 7")
    assert cancelled.exit_code == 0, cancelled.output
    assert f"#{ids[0]} 0400 for up: cancelled (cancel by " in cancelled.output
    one = await cli("saf", "show", str(ids[0]))
    assert one.exit_code == 0 and "status              cancelled" in one.output
    (action,) = [line for line in one.output.splitlines() if line.startswith("action")]
    assert "cancel (exception -> cancelled): settled by hand, case 7" in action


async def test_saf_actions_refuse_unknown_destinations_ids_and_states_and_change_nothing(
    tmp_path: Path, db_url: str, cli: Cli
) -> None:
    write_config(tmp_path, db_url, {"up": 9, "other": 10}, ROUTES_ONE.format(link="up"))
    ids = await trio.to_thread.run_sync(_queue, db_url)
    typo = await cli("saf", "show", "--destination", "upp")
    assert typo.exit_code == 2 and "unknown destination 'upp'" in typo.output and "other, up" in typo.output
    retry = await cli("saf", "retry", "--destination", "upp")
    assert retry.exit_code == 2 and "unknown destination 'upp'" in retry.output
    before = (await cli("saf", "show", "--json")).output
    no_reason = await cli("saf", "resend", str(ids[0]))
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    blank = await cli("saf", "resend", str(ids[0]), "--reason", " ")
    assert blank.exit_code == 1 and "a reason is required" in blank.output
    missing = await cli("saf", "expire", "99999", "--reason", "x")
    assert missing.exit_code == 1 and "no SAF entry with id 99999" in missing.output
    done = await cli("saf", "expire", str(ids[1]), "--reason", "too late")
    assert done.exit_code == 0
    again = await cli("saf", "cancel", str(ids[1]), "--reason", "twice")
    assert again.exit_code == 1 and f"SAF entry {ids[1]} is expired" in again.output
    resent = await cli("saf", "resend", str(ids[0]), "--reason", "issuer back")
    assert resent.exit_code == 0 and ": pending (resend by" in resent.output
    after = json.loads((await cli("saf", "show", "--json")).output)
    statuses = {e["id"]: e["status"] for e in after["entries"]}
    assert statuses == {ids[0]: "pending", ids[1]: "expired", ids[2]: "pending", ids[3]: "pending"}
    assert json.loads(before)["entries"][0]["status"] == "exception"


# -- routes: every problem, dry runs, history -------------------------------------------------------------------
BROKEN_THREE = (
    'default = "issuer"\n'          # 1
    "[destinations.issuer]\n"       # 2
    'links = ["up", "nowhere"]\n'   # 3
    "[[routes]]\n"                  # 4
    'name = "a"\n'                  # 5
    'bins = ["47617A"]\n'           # 6
    'currencies = ["84"]\n'         # 7
    'action = "reject"\n'           # 8
)


def test_routes_check_reports_every_problem_with_file_line_and_key(tmp_path: Path, cli: Cli) -> None:
    write_config(tmp_path, "sqlite:///unused.db", {"up": 9}, ROUTES_ONE.format(link="up"))
    broken = tmp_path / "three.toml"
    broken.write_text(BROKEN_THREE)
    bad = cli.run("routes", "check", str(broken))
    assert bad.exit_code == 1
    lines = bad.output.splitlines()
    assert lines[0] == f'{broken}:3: destinations.issuer.links[1]: unknown link "nowhere" (expected one of: up)'
    assert lines[1].startswith(f"{broken}:6: routes[0].bins[0]: must be digits")
    assert lines[2] == f"{broken}:7: routes[0].currencies[0]: currency (ISO 4217 numeric) must be 3 digits, not '84'"
    assert lines[3:] == [f"{broken}: 3 problems"]
    one = tmp_path / "one.toml"
    one.write_text(BROKEN_THREE.replace(', "nowhere"', "").replace('currencies = ["84"]\n', "")
                   .replace("47617A", "476173"))
    assert cli.run("routes", "check", str(one)).exit_code == 0


async def test_routes_reload_dry_run_shows_the_diff_against_the_live_table_and_changes_nothing(
    tmp_path: Path, db_url: str, cli: Cli
) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node:
            live = node.table.digest
            (tmp_path / "routes.toml").write_text(ROUTES_TWO.format(link="up"))
            dry = await cli("routes", "reload", "--dry-run")
            broken = tmp_path / "three.toml"
            broken.write_text(BROKEN_THREE)
            refused = await cli("routes", "reload", "--dry-run", "--file", str(broken))
            assert node.table.digest == live
            engine = node.engine
            audits = await trio.to_thread.run_sync(lambda: list_route_reloads(engine))
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith(f"dry run: {tmp_path / 'routes.toml'} against the live table: {live[:12]} -> ")
    assert "(nothing changed)" in dry.output and "demo-cards" in dry.output
    assert refused.exit_code == 1
    assert 'three.toml:3: destinations.issuer.links[1]: unknown link "nowhere"' in refused.output
    assert "three.toml:6: routes[0].bins[0]" in refused.output
    assert "three.toml:7: routes[0].currencies[0]" in refused.output
    assert audits == []  # a dry run is not an attempt: no audit row


def test_routes_reload_dry_run_without_a_node_compares_with_the_configured_file(tmp_path: Path, cli: Cli) -> None:
    write_config(tmp_path, _sqlite(tmp_path), {"up": 9}, ROUTES_ONE.format(link="up"))
    new = tmp_path / "new.toml"
    new.write_text(ROUTES_TWO.format(link="up"))
    dry = cli.run("routes", "reload", "--dry-run", "--file", str(new))
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith(f"dry run: {new} against the configured file {tmp_path / 'routes.toml'} "
                                 "(no node running)")
    assert "demo-cards" in dry.output
    same = cli.run("routes", "reload", "--dry-run")
    assert same.exit_code == 0 and same.output.splitlines()[-1] == "  (no changes)"
    broken = tmp_path / "three.toml"
    broken.write_text(BROKEN_THREE)
    refused = cli.run("routes", "reload", "--dry-run", "--file", str(broken))
    assert refused.exit_code == 1 and refused.output.splitlines()[-1] == f"{broken}: 3 problems"
    assert not (tmp_path / "cli.db").exists()  # nothing written anywhere


async def test_routes_history_lists_who_when_outcome_reason_and_diff(tmp_path: Path, db_url: str, cli: Cli) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node:
            old = node.table.digest
            (tmp_path / "routes.toml").write_text(ROUTES_TWO.format(link="up"))
            assert (await cli("routes", "reload")).exit_code == 0
            new = node.table.digest
            broken = tmp_path / "three.toml"
            broken.write_text(BROKEN_THREE)
            assert (await cli("routes", "reload", "--file", str(broken))).exit_code == 1
    # The node is stopped: the history is read from the database.
    history = await cli("routes", "history")
    as_json = await cli("routes", "history", "--json", "--limit", "1")
    assert history.exit_code == 0, history.output
    lines = history.output.splitlines()
    assert lines[0].startswith("#2 ") and "  rejected  by " in lines[0] and str(broken) in lines[0]
    assert f"{new[:12]} -> -" in lines[0]  # refused against the table the first reload applied
    assert lines[1].startswith("  reason: ") and "unknown link" in lines[1] and "three.toml:3" in lines[1]
    assert sum(line.startswith("  reason: ") for line in lines) == 3  # every problem of the refused file
    applied = next(line for line in lines if "  applied  by " in line)
    assert applied.startswith("#1 ") and f"{old[:12]} -> {new[:12]}" in applied
    assert any("demo-cards" in line for line in lines[lines.index(applied):])
    (entry,) = json.loads(as_json.output)
    assert (entry["id"], entry["outcome"], entry["old_digest"], entry["new_digest"]) == (2, "rejected", new, None)
    assert entry["actor"] and entry["at"].endswith("+00:00") and len(entry["reason"].splitlines()) == 3


def _advice_and_its_delivered_reversal(db_url: str) -> tuple[int, int]:
    """An advice given up on (expired by an operator) whose reversal then reached the issuer (acked)."""
    from datetime import UTC, datetime

    from switch.storage.db import upgrade
    from switch.storage.saf import SafStore

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        store = SafStore(engine)
        now = datetime.now(UTC)
        ids = [store.enqueue(destination="up", mti=mti, stan="000001", rrn=None, pan_masked="476173******0051",
                             amount=100, currency="840", payload=b"sealed", original_trace_id=None, now=now,
                             expires_at=None, original_key="K1") for mti in ("0220", "0400")]
        store.act(ids[0], "expire", actor="ops", reason="issuer says no such card", now=now)
        store.record_attempt(ids[1], now, now)
        store.acknowledge(ids[1], "00", now)
        return ids[0], ids[1]
    finally:
        engine.dispose()


async def test_saf_resend_of_an_advice_whose_reversal_was_delivered_is_refused_unless_forced(
    tmp_path: Path, db_url: str, cli: Cli
) -> None:
    write_config(tmp_path, db_url, {"up": 9}, ROUTES_ONE.format(link="up"))
    advice, reversal = await trio.to_thread.run_sync(_advice_and_its_delivered_reversal, db_url)
    refused = await cli("saf", "resend", str(advice), "--reason", "issuer back")
    assert refused.exit_code == 1
    assert f"entry {advice} would arrive after entry {reversal} (0400, acked)" in refused.output
    assert "--force" in refused.output
    one = await cli("saf", "show", str(advice), "--json")
    entry = json.loads(one.output)
    assert entry["status"] == "expired" and [a["action"] for a in entry["actions"]] == ["expire"]

    forced = await cli("saf", "resend", str(advice), "--reason", "issuer asked for it, case 9", "--force")
    assert forced.exit_code == 0 and ": pending (resend, forced by" in forced.output
    shown = await cli("saf", "show", str(advice))
    (_, action) = [line for line in shown.output.splitlines() if line.startswith("action")]
    assert "resend --force (expired -> pending): issuer asked for it, case 9" in action
