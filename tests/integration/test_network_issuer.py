"""The issuer direction through a real node and a real cell, for each network: the network simulator
(``bulkhead sim network``'s server) originates down the connection the node's connector opened, in the network's
dialect, for the bank's cards; the node routes each request by the card to the owning cell (the PIN translated from
the link's zone key to the cells'), and the cell's answer goes back in the network's dialect.

One run per network: a purchase approved and then reversed (the balance restored; on Mastercard and American Express
a partial reversal, DE 95, leaves part of it posted), a purchase declined for
insufficient funds (51 through the network's table), a purchase approved and repeated (0201: the same answer,
posted once), an advice (VISA: the STIP advice 0120 with 63.4, VISA having stood in for the bank) posted once and
its repeat 0121 not posted again; and nothing the bank sends is rejected by the simulated network (the reject
form of a malformed message is tested in tests/switch/sim/test_network_sim.py and the node's own in
tests/integration/test_malformed_forms.py).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from bench.ports import free_port
from hsm.testing import TestPinPad
from processors.cell.client import run_commands
from processors.cell.section import cells_of
from processors.model import Account, Txn, TxnStatus
from processors.storage import ledger_check, load_rows, make_engine
from schemes.unionpay.framing import UnionPayFraming
from schemes.visa.framing import VisaFraming
from switch.config import parse_config
from switch.contracts.network import LinkOptions
from switch.contracts.registry import network
from switch.runtime.node import Node
from switch.sim.issuer import REJECT_CODES, IssuerConfig, IssuerStats, serve_issuer
from switch.sim.originate import OriginateConfig
from tests.integration.cells_harness import seed_cell, write_cells_config
from tests.integration.netkit import HSM, PIN

pytestmark = pytest.mark.slow

LINK_ZPK = HSM.generate_key("001").under_lmk  # the zone PIN key shared with the network
CELLS_ZPK = "U51D62F096A9511A3D11B86968C8C1BA9"  # the cells' (cells_harness PRODUCTS key set)
DEPOSIT = 100_000
AMOUNT = 1_000

NETWORKS: dict[str, tuple[str, LinkOptions]] = {
    "visa": ('{ kind = "visa", source_station = "123456", destination_station = "400000" }',
             VisaFraming(source_station="400000", destination_station="123456")),
    "unionpay": ('{ kind = "unionpay", source_id = "04071234", destination_id = "00010000" }',
                 UnionPayFraming(source_id="00010000", destination_id="04071234")),
    "mastercard": ('{ kind = "binary2" }', network("mastercard").link_options(None, None)),
    "amex": ('{ kind = "binary2" }', network("amex").link_options(None, None)),
}
PARTIAL = {"mastercard": 400, "amex": 300}  # the networks whose run reverses in part: the amount left in place (DE 95)
SIGNON_MTI = {"unionpay": "0820"}  # the others sign on with an 0800 (American Express: 1804, read as one)

CONNECTOR = """
[hsm]
kind = "software"
test_lmk = true

[[connectors]]
name = "{scheme}"
hosts = ["127.0.0.1:{port}"]
scheme = "{scheme}"
framing = {framing}
timeout_ms = 3000
echo_interval_s = 30
backoff_initial_ms = 50
backoff_max_ms = 200
pin_key = {{ type = "ZPK", key = "{zpk}" }}
"""


def pin_block(pan: str) -> str:
    return TestPinPad().pin_block("ZPK", CELLS_ZPK, PIN, pan).hex().upper()


@asynccontextmanager
async def node_up(conf: Path) -> AsyncIterator[Node]:
    """The node, once its cell link is up (the network's link comes up when its simulator listens)."""
    node = Node(parse_config(conf.read_text(), conf))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.fail_after(60):  # a cell interpreter starting on a shared machine
            while not node.outbound["cell-00"].is_up():
                await trio.sleep(0.05)
        yield node
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("scheme", list(NETWORKS))
async def test_network_originated_requests_reach_the_cell_and_answer_in_the_networks_dialect(
        tmp_path: Path, scheme: str) -> None:
    connector_framing, sim_framing = NETWORKS[scheme]
    cfg = write_cells_config(tmp_path, count=1)
    cells = cells_of(cfg.sections)
    assert cells is not None
    rich = await trio.to_thread.run_sync(functools.partial(seed_cell, cells, 0, deposit=DEPOSIT))
    poor = await trio.to_thread.run_sync(functools.partial(seed_cell, cells, 0, deposit=500, start=1000))
    # The cards' PIN (1234) as the cells know it.
    await trio.to_thread.run_sync(run_commands, cells, 0, [
        ("card.set_pin", {"card": c.pan, "pin_block": pin_block(c.pan)}) for c in (rich, poor)])

    # seq 1 rich: approved, reversed (reversal_every = 1); seq 2 poor: 51; seq 3 rich: approved, repeated
    # (repeat_every = 2: the second approval); seq 4 rich: a STIP advice (stip_every = 4) and its repeat 0121.
    partial = PARTIAL.get(scheme)
    originate = OriginateConfig(cards=(rich.pan, poor.pan, rich.pan, rich.pan), count=4, amount=AMOUNT,
                                reversal_every=1, partial_amount=partial, repeat_every=2, stip_every=4,
                                stip_repeat=True, pin=PIN, zpk=LINK_ZPK, timeout_s=10)
    stats = IssuerStats()
    done = trio.Event()
    config = IssuerConfig(port=free_port(), scheme=scheme, framing=sim_framing, originate=originate,
                          reject_code=REJECT_CODES.get(scheme), refuse=True, start_after_s=30)
    conf = tmp_path / "node.toml"
    text = conf.read_text().replace('hsm = { kind = "software", test_lmk = true }',
                                    f'hsm = {{ kind = "software", test_lmk = true }}\n'
                                    f'pin_key = {{ type = "ZPK", key = "{CELLS_ZPK}" }}')
    conf.write_text(text + CONNECTOR.format(scheme=scheme, port=config.port, framing=connector_framing, zpk=LINK_ZPK))
    async with node_up(conf), trio.open_nursery() as nursery:
        # The network comes up once the bank's cell is up, and originates once the node has signed on.
        await nursery.start(functools.partial(serve_issuer, config, stats=stats, on_done=done.set))
        with trio.fail_after(30):
            await done.wait()
        nursery.cancel_scope.cancel()

    sent = stats.originated.sent
    assert dict(sent) == {"0200": 3, "0400": 1, "0201": 1, "0120": 1, "0121": 1}
    assert dict(stats.originated.answered) == {"00": 6, "51": 1}
    assert stats.originated.timeouts == 0 and stats.originated.rejected == 0
    assert stats.originated.repeats_differing == 0
    assert stats.received[SIGNON_MTI.get(scheme, "0800")] >= 1  # the node signed on by the network's rules

    engine = make_engine(cells.url(0))
    try:
        rows = list(load_rows(engine, 0, datetime.now(UTC), 35))
        assert ledger_check(engine).ok
    finally:
        engine.dispose()
    accounts = {row.id: row for row in rows if isinstance(row, Account)}
    # The reversed purchase is restored (but for what a partial reversal left); the repeated one is posted once; the
    # STIP advice (an authorization advice: the network approved an 0100 for the bank) holds its amount once, its
    # repeat nothing more.
    left = partial or 0
    assert (accounts[rich.account].ledger_balance, accounts[rich.account].held) == (DEPOSIT - AMOUNT - left, AMOUNT)
    assert (accounts[poor.account].ledger_balance, accounts[poor.account].held) == (500, 0)
    txns = sorted((row.mti, row.status) for row in rows if isinstance(row, Txn) and row.mti)  # not the deposits
    reversed_status = TxnStatus.REVERSED if partial is None else TxnStatus.PARTIALLY_REVERSED
    reversal_mti = "0420" if scheme == "amex" else "0400"  # American Express reverses by advice (1420)
    assert sorted(txns) == sorted([("0120", TxnStatus.APPROVED), ("0200", TxnStatus.APPROVED),
                                   ("0200", TxnStatus.DECLINED), ("0200", reversed_status),
                                   (reversal_mti, TxnStatus.APPROVED)])  # no row of the repeats
