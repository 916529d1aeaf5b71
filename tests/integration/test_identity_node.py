"""The switch's own identity upstream, through a node on loopback: the bytes the destination receives, what each
acquirer gets back, a reversal after a restart, and one after an upgrade (issue 12)."""

from __future__ import annotations

from pathlib import Path

import trio

from switch.infra.db.engine import make_engine
from switch.storage.journal import find_exchanges
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
{identity}
"""
OWN = """acquiring_institution = "4071234"
forwarding_institution = "00010000"
own_stan = true
own_rrn = true"""


def _conf(tmp_path: Path, db_url: str, port: int, identity: str = OWN) -> Path:
    return write_config(tmp_path, db_url, {}, ROUTES_ONE.format(link="up"),
                        extra=UPSTREAM.format(port=port, identity=identity))


async def test_two_acquirers_with_the_same_stan_and_terminal_are_both_answered_under_their_own(
        tmp_path: Path, db_url: str) -> None:
    async with recording_issuer() as rec, running_node(_conf(tmp_path, db_url, rec.port)) as node:
        port = port_of(node)
        async with client(port) as a, client(port) as b:
            first, second = purchase(stan=4711), purchase(stan=4711)
            first[32], second[32] = "111", "222"
            answers: list[object] = []

            async def call(c: object, msg: object) -> None:
                answers.append(await c.call(msg))  # type: ignore[attr-defined]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, a, first)
                nursery.start_soon(call, b, second)
    got = sorted((m[32], m[39], m[11], m[37]) for m in answers)  # type: ignore[index]
    assert got == [("111", "00", "004711", "000000004711"), ("222", "00", "004711", "000000004711")]
    sent = [m for m in rec.received if m.mti == "0200"]
    assert len(sent) == 2 and sent[0][11] != sent[1][11]
    assert {(m[32], m[33]) for m in sent} == {("4071234", "00010000")}
    assert all(str(m[37]).endswith(str(m[11])) and len(str(m[37])) == 12 for m in sent)


async def test_a_reversal_after_a_restart_names_what_the_destination_received(tmp_path: Path, db_url: str) -> None:
    original = purchase(stan=815)
    async with recording_issuer() as rec:
        async with running_node(_conf(tmp_path, db_url, rec.port)) as node, client(port_of(node)) as c:
            assert (await c.call(original))[39] == "00"
        async with running_node(_conf(tmp_path, db_url, rec.port)) as node, client(port_of(node)) as c:
            reversal = purchase(stan=816, mti="0400")
            reversal[90] = "0200" + "000815" + str(original[7]) + "0" * 22
            answer = await c.call(reversal)
            assert (answer.mti, answer[39], answer[11]) == ("0410", "00", "000816")
    upstream = next(m for m in rec.received if m.mti == "0200")
    sent = next(m for m in rec.received if m.mti == "0400")
    assert sent[90] == "0200" + str(upstream[11]) + str(upstream[7]) + "00004071234" + "00000010000"
    assert int(str(sent[11])) > int(str(upstream[11]))  # the restarted node went on numbering after its last STAN
    engine = make_engine(db_url)
    try:
        rows = find_exchanges(engine, stan="000815")
    finally:
        engine.dispose()
    assert [(r.mti_in, r.upstream_stan, r.upstream_time) for r in rows] == [("0200", upstream[11], upstream[7])]


async def test_a_reversal_of_an_original_sent_before_the_upgrade_still_names_it(tmp_path: Path, db_url: str) -> None:
    # The node ran the previous release (the source's numbering upstream: here own_stan = false, which is what a
    # journal row without upstream_stan means). After the upgrade (own_stan defaults to true) the acquirer reverses
    # that purchase: its original's row says it went upstream under the acquirer's own STAN and DE 7, so DE 90
    # names those (a fresh, reserved identity would name a message the network never received).
    original = purchase(stan=815)
    async with recording_issuer() as rec:
        async with running_node(_conf(tmp_path, db_url, rec.port, "own_stan = false")) as node, \
                client(port_of(node)) as c:
            assert (await c.call(original))[39] == "00"
        async with running_node(_conf(tmp_path, db_url, rec.port, "own_stan = true")) as node, \
                client(port_of(node)) as c:
            reversal = purchase(stan=816, mti="0400")
            reversal[90] = "0200" + "000815" + str(original[7]) + "0" * 22
            assert (await c.call(reversal))[39] == "00"
    upstream = next(m for m in rec.received if m.mti == "0200")
    sent = next(m for m in rec.received if m.mti == "0400")
    assert str(sent[90])[4:20] == str(upstream[11]) + str(upstream[7]), (
        f"the network got the 0200 as STAN {upstream.text(11)} DE 7 {upstream.text(7)}, the 0400's DE 90 names "
        f"{sent.text(90)}")
