"""``bulkhead status``: one screen about the running node (README, "Node status"): version, uptime, the digests of
the configuration and routing table it runs on, its processes, every link and cell, the last minute's answers,
the journal's lag and the store-and-forward queue per destination. ``--json`` prints the admin channel's answer
as is (times ISO 8601 in UTC, ages in seconds).

Without a running node it says so and exits 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from switch.cli.common import admin, conf_option, json_option, load


@click.command("status")
@conf_option
@json_option
def status(conf: Path, as_json: bool) -> None:
    """One screen about the running node; --json for the same as JSON."""
    result = admin(load(conf), "status")
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(render(result, datetime.now(UTC)))


# -- rendering -------------------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """``42s``, ``3m12s``, ``2h03m``, ``3d04h``: an age or an uptime as an operator reads it."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def when(iso: str | None, now: datetime) -> str:
    """An ISO time as ``16:50:02 UTC (3m12s ago)``, with the date when it is not today's; ``-`` for none."""
    if not iso:
        return "-"
    at = datetime.fromisoformat(iso).astimezone(UTC)
    shown = f"{at:%H:%M:%S}" if at.date() == now.date() else f"{at:%Y-%m-%d %H:%M:%S}"
    return f"{shown} UTC ({duration((now - at).total_seconds())} ago)"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _links(links: list[dict[str, Any]], now: datetime) -> list[str]:
    """A table of the connectors (under each, why it is degraded and its last error), then of the listeners."""
    rows = [["CONNECTOR", "STATE", "SINCE", "IN FLIGHT", "LATENCY", "LAST ECHO"]]
    listeners = [["LISTENER", "STATE", "PORT", "CONNECTIONS", "BACKLOG", "SHED"]]
    details: dict[int, list[str]] = {}
    for link in links:
        if link["kind"] != "connector":
            shed = f"{sum(link.get('shed', {}).values())}{' (shedding now)' if link.get('shedding') else ''}"
            listeners.append([link["name"], link["state"], str(link.get("port")), str(link.get("connections")),
                              str(link.get("backlog", 0)), shed])
            continue
        echo = link.get("last_echo")
        echo_text = "-" if echo is None else (
            f"{echo['response_code'] or 'unanswered'} in {_ms(echo['ms'])}, {when(echo['at'], now)}")
        rows.append([link["name"], link["state"], when(link.get("since"), now),
                     str(link["in_flight"]), _ms(link.get("latency_ms")), echo_text])
        lines = details[len(rows) - 1] = []
        if link.get("degraded") is not None:
            lines.append(f"degraded since {when(link['degraded']['since'], now)}: {link['degraded']['reason']}")
        if link.get("last_error") is not None:
            lines.append(f"last error {when(link['last_error']['at'], now)}: {link['last_error']['error']}")
    out = []
    for i, line in enumerate(_table(rows)):
        out.append(line)
        out += [f"      {detail}" for detail in details.get(i, [])]
    return out + (_table(listeners) if len(listeners) > 1 else [])


def render(st: dict[str, Any], now: datetime) -> str:
    out = [f"node {st['node']}  bulkhead {st.get('version', '?')}  up {duration(st['uptime_s'])} "
           f"(since {when(st['started_at'], now).split(' (')[0]})",
           f"config    {st['config']['file']}  sha256 {st['config']['digest'][:16]}",
           f"routes    {st['routes']['source']}  sha256 {st['routes']['digest'][:16]}",
           "processes"]
    out += _table([["NAME", "STATE", "PID", "RESTARTS", "LAST EXIT"]] + [
        [p["name"], p["state"], str(p["pid"] or "-"), str(p["restarts"]),
         "-" if p.get("last_exit") is None else str(p["last_exit"])]
        for p in st["processes"]])
    minute = st["last_minute"]
    total = minute["exchanges"]
    mix = "  ".join(f"{code} {count} ({count / total:.1%})" for code, count in
                    sorted(minute["response_codes"].items(), key=lambda item: -item[1])) if total else "-"
    history = "" if minute["seconds"] >= 60 else f" (node up {duration(minute['seconds'])})"
    out.append(f"last minute{history}  {total} answered, {minute['per_second']:.1f}/s   codes: {mix}")
    journal = st["journal"]
    out.append(f"journal   {journal['rows']} rows in {journal['batches']} batches, {journal['queued']} queued, "
               f"lag {_ms(journal['lag_ms'])} (last commit {when(journal['last_commit_at'], now)})")
    out.append(f"in flight {st['in_flight']}  late responses {st['late_responses']}  "
               f"lost reversals {st['lost_reversals']}")
    out.append("links")
    out += _links(st["links"], now)
    cells = st.get("cells")
    if cells:
        out.append("cells")
        out += _table([["CELL", "HEALTH", "PROCESS", "PID", "RESTARTS", "LAST EXIT", "LINK"]] + [
            [c["name"], c["health"], c["process"], str(c["pid"] or "-"), str(c["restarts"]),
             "-" if c["last_exit"] is None else str(c["last_exit"]), c["link"] or "-"] for c in cells])
    saf = st.get("saf", [])
    out.append("store and forward" + ("  empty" if not saf else ""))
    if saf:
        out += _table([["DESTINATION", "PENDING", "EXCEPTIONS", "OLDEST"]] + [
            [e["destination"], str(e["pending"]), str(e["exceptions"]), duration(e["oldest_age_s"])] for e in saf])
    return "\n".join(out)
