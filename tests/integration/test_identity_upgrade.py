"""The switch's own identity upstream across an upgrade, through a node."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import (
    ROUTES_ONE,
    client,
    port_of,
    purchase,
    recording_issuer,
    running_node,
    write_config,
)

UPSTREAM = """
[[connectors]]
name = "up"
hosts = ["127.0.0.1:{port}"]
scheme = "generic"
framing = {{ kind = "binary2" }}
timeout_ms = 2000
backoff_initial_ms = 50
backoff_max_ms = 200
own_stan = {own_stan}
"""


def _conf(tmp_path: Path, db_url: str, port: int, own_stan: bool) -> Path:
    return write_config(tmp_path, db_url, {}, ROUTES_ONE.format(link="up"),
                        extra=UPSTREAM.format(port=port, own_stan=str(own_stan).lower()))


async def test_a_reversal_of_an_original_sent_before_the_upgrade_still_names_it(tmp_path: Path, db_url: str) -> None:
    # The node ran the previous release (the source's numbering upstream: here own_stan = false, which is what a
    # journal row without upstream_stan means). After the upgrade (own_stan defaults to true) the acquirer reverses
    # that purchase: its original's row says it went upstream under the acquirer's own STAN and DE 7, so DE 90
    # names those (a fresh, reserved identity would name a message the network never received).
    original = purchase(stan=815)
    async with recording_issuer() as rec:
        async with running_node(_conf(tmp_path, db_url, rec.port, own_stan=False)) as node, \
                client(port_of(node)) as c:
            assert (await c.call(original))[39] == "00"
        async with running_node(_conf(tmp_path, db_url, rec.port, own_stan=True)) as node, \
                client(port_of(node)) as c:
            reversal = purchase(stan=816, mti="0400")
            reversal[90] = "0200" + "000815" + str(original[7]) + "0" * 22
            assert (await c.call(reversal))[39] == "00"
    upstream = next(m for m in rec.received if m.mti == "0200")
    sent = next(m for m in rec.received if m.mti == "0400")
    assert str(sent[90])[4:20] == str(upstream[11]) + str(upstream[7]), (
        f"the network got the 0200 as STAN {upstream.text(11)} DE 7 {upstream.text(7)}, the 0400's DE 90 names "
        f"{sent.text(90)}")
