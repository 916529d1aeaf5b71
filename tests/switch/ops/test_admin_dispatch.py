"""The admin channel's commands over the narrow interface they use (switch.ops.admin.AdminTarget), without a node:
every command answers ok or a typed error, and a failed command changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from switch.model.errors import BulkheadError
from switch.ops.admin import dispatch
from switch.routing import RoutingTable, parse_routes
from switch.storage.saf import DestinationSummary

TABLE = parse_routes('default = "up"\n[destinations.up]\nlinks = ["up"]\n', Path("routes.toml"),
                     known_links=frozenset({"up"}))


@dataclass
class FakeLink:
    name: str = "up"
    state_name: str = "signed_on"
    calls: list[str] = field(default_factory=list)

    async def signon(self) -> str | None:
        self.calls.append("signon")
        self.state_name = "signed_on"
        return "00"

    async def signoff(self) -> str | None:
        self.calls.append("signoff")
        self.state_name = "connected"
        return "00"

    async def echo(self) -> str | None:
        self.calls.append("echo")
        return None  # unanswered

    async def rekey(self, key: str | None = None) -> tuple[bool, str | None]:
        self.calls.append("rekey" if key is None else f"rekey {key}")
        return False, "96"


@dataclass
class FakeNode:
    link: FakeLink = field(default_factory=FakeLink)
    table: RoutingTable = TABLE
    reloads: list[tuple[Path | None, str]] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        return {"node": "n1", "links": {self.link.name: self.link.state_name}}

    async def saf_summary(self) -> list[DestinationSummary]:
        return [DestinationSummary("visa", 2, 1, datetime.now(UTC) - timedelta(seconds=90)),
                DestinationSummary("cell-01", 1, 0, datetime.now(UTC) - timedelta(seconds=5))]

    def connector(self, name: str) -> FakeLink | None:
        return self.link if name == self.link.name else None

    def connector_names(self) -> list[str]:
        return [self.link.name]

    async def reload_routes(self, path: Path | None, actor: str) -> dict[str, Any]:
        if path is not None and path.name == "bad.toml":
            raise BulkheadError("bad.toml: destinations.x.links[0]: unknown link 'x'")
        self.reloads.append((path, actor))
        return {"digest": "abc"}

    async def preview_routes(self, path: Path | None) -> dict[str, Any]:
        if path is not None and path.name == "bad.toml":
            raise BulkheadError("bad.toml:1: default: unknown destination\nbad.toml:3: routes[0].name: missing")
        return {"diff": ["+ route x"], "dry_run": True}

    async def saf_retry(self, destination: str | None) -> int:
        return 2


async def _call(node: FakeNode, cmd: str, **args: Any) -> dict[str, Any]:
    return await dispatch(node, json.dumps({"cmd": cmd, "args": args}).encode(), "operator")


async def test_link_commands_reach_the_named_connector() -> None:
    node = FakeNode()
    assert (await _call(node, "links.signoff", name="up"))["result"] == {
        "link": "up", "response_code": "00", "state": "connected"}
    assert (await _call(node, "links.signon", name="up"))["result"]["state"] == "signed_on"
    assert (await _call(node, "links.echo", name="up"))["result"]["response_code"] is None
    assert (await _call(node, "links.rekey", name="up"))["result"] == {
        "link": "up", "key": None, "response_code": "96", "installed": False}
    assert (await _call(node, "links.rekey", name="up", key="mac"))["result"]["key"] == "mac"
    assert not (await dispatch(node, b'{"cmd": "links.rekey", "args": {"name": "up", "key": "zmk"}}', "op"))["ok"]
    assert node.link.calls == ["signoff", "signon", "echo", "rekey", "rekey mac"]


async def test_an_unknown_link_or_command_is_a_clear_error_and_nothing_happens() -> None:
    node = FakeNode()
    answer = await _call(node, "links.signon", name="nowhere")
    assert answer == {"ok": False, "error": "no connector named 'nowhere' (connectors: up)"}
    answer = await _call(node, "links.reboot", name="up")
    assert not answer["ok"] and "links.rekey" in answer["error"]  # the commands are listed
    assert not (await dispatch(node, b"not json", "operator"))["ok"]
    assert not (await dispatch(node, b'{"cmd": "status", "args": [1]}', "operator"))["ok"]
    assert node.link.calls == []


async def test_status_has_the_saf_queue_per_destination() -> None:
    status = (await _call(FakeNode(), "status"))["result"]
    assert status["saf_pending"] == 3
    # per destination, by name, with the oldest entry's age in seconds
    assert [(e["destination"], e["pending"], e["exceptions"]) for e in status["saf"]] == [("cell-01", 1, 0),
                                                                                          ("visa", 2, 1)]
    assert 89 <= status["saf"][1]["oldest_age_s"] <= 100


async def test_a_refused_reload_reports_why_and_keeps_the_table() -> None:
    node = FakeNode()
    answer = await _call(node, "routes.reload", path="/etc/bulkhead/bad.toml")
    assert answer == {"ok": False, "error": "bad.toml: destinations.x.links[0]: unknown link 'x'"}
    assert node.reloads == [] and node.table is TABLE
    assert (await _call(node, "status"))["result"]["saf_pending"] == 3


async def test_a_dry_run_answers_the_diff_or_every_problem_and_reloads_nothing() -> None:
    node = FakeNode()
    answer = await _call(node, "routes.diff", path="/etc/bulkhead/new.toml")
    assert answer == {"ok": True, "result": {"diff": ["+ route x"], "dry_run": True}}
    refused = await _call(node, "routes.diff", path="/etc/bulkhead/bad.toml")
    assert not refused["ok"] and refused["error"].splitlines() == [
        "bad.toml:1: default: unknown destination", "bad.toml:3: routes[0].name: missing"]
    assert node.reloads == [] and node.table is TABLE


def test_links_status_prints_one_token_per_field_without_spaces() -> None:
    from switch.cli.links import _value

    assert _value(None) == "-"
    assert _value({"closes": 2, "refused": 1}) == "closes:2,refused:1"
    assert _value({"at": "2026-12-07T10:00:00+00:00", "error": "cannot connect to 127.0.0.1:9"}) == \
        "at:2026-12-07T10:00:00+00:00,error:cannot_connect_to_127.0.0.1:9"
    assert _value({"reason": None}) == "reason:-" and _value({}) == "-"
