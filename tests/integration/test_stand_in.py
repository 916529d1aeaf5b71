"""Stand-in (STIP) on a real node: a destination that is down or silent gets its covered requests approved by
the switch (00, an "S" approval code) and an advice in the store-and-forward queue instead of a reversal;
anything the policy does not cover still gets 91 (and a reversal when it was sent)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from processors.cell.config import CellsConfig
from processors.cell.section import cells_of
from processors.model import Account, Txn, TxnStatus
from processors.storage import ledger_check, load_rows, make_engine
from switch.config import parse_config
from switch.exchange.reversal import from_payload
from switch.model.errors import ConfigError
from switch.model.message import Message
from switch.runtime.node import Node
from switch.storage.journal import find_exchanges
from switch.storage.saf import SafItem
from tests.integration.cells_harness import cell_supervisor, seed_cell, write_cells_config
from tests.integration.harness import PAN, client, issuer, port_of, purchase, running_node, write_config

SLOW = "4761739001010044"

ROUTES = """
default = "issuer"
[destinations.issuer]
links = ["up"]
stand_in = { max_amount = 5000, mti = ["0100", "0200"], processing_codes = ["00", "01"], currency = "840" }
"""


async def _items(node: Node) -> list[SafItem]:
    return await trio.to_thread.run_sync(lambda: node.saf.list_items())


def _opened(node: Node, item: SafItem) -> Message:
    return from_payload(node.keys.open(item.payload, item.destination.encode()))


async def _drained(node: Node) -> None:
    with trio.fail_after(10):
        while await trio.to_thread.run_sync(node.saf.pending_count, None):
            await trio.sleep(0.05)


async def test_link_down_covered_purchase_is_stood_in_and_the_advice_delivered_later(
        tmp_path: Path, db_url: str) -> None:
    async with issuer() as first:
        port = first.port
        conf = write_config(tmp_path, db_url, {"up": port}, ROUTES, saf_delay_ms=0)
        async with running_node(conf) as node:
            first.cancel.cancel()
            with trio.fail_after(5):
                while node.outbound["up"].is_up():
                    await trio.sleep(0.01)
            async with client(port_of(node)) as c:
                req = purchase(amount=5000)  # exactly the policy's maximum
                resp = await c.call(req)
                over = await c.call(purchase(amount=5001))
                with_pin = purchase(amount=100)
                with_pin.fields[52] = bytes(8)  # a PIN the switch cannot verify: never stood in
                pin_resp = await c.call(with_pin)
                euro = purchase(amount=100)
                euro.fields[49] = "978"
                euro_resp = await c.call(euro)
                inquiry = purchase(amount=0)
                inquiry.fields[3] = "300000"
                inquiry_resp = await c.call(inquiry)
            assert (resp.mti, resp[39]) == ("0210", "00")
            code = str(resp[38])
            assert len(code) == 6 and code.startswith("S")
            assert [m[39] for m in (over, pin_resp, euro_resp, inquiry_resp)] == ["91"] * 4
            # Only the stand-in advice is queued: a request that was never sent has nothing to reverse.
            (row,) = await trio.to_thread.run_sync(lambda: find_exchanges(node.engine, stan=str(req[11])))
            assert (row.outcome, row.response_code, row.destination) == ("stand_in", "00", "up")
            # The advice names the original as the switch numbered it for the link (switch.exchange.identity).
            up_stan, up_time = row.upstream_stan, row.upstream_time
            assert up_stan is not None and up_time is not None
            (item,) = await _items(node)
            assert (item.mti, item.status, item.stan, item.amount) == ("0220", "pending", up_stan, 5000)
            advice = _opened(node, item)
            assert (advice[38], advice[39], advice[2], advice[4], advice[11]) == (code, "00", PAN, req[4], up_stan)
            assert advice[90] == f"0200{up_stan}{up_time}" + "0" * 22
            assert node.metrics.exchanges[("acquirer", "up", "0200", "stand_in", "00")] == 1
            assert node.metrics.exchanges[("acquirer", "up", "0200", "unavailable", "91")] == 4
            # The issuer comes back on the same port: the advice goes out as queued (0220) and is acknowledged.
            async with issuer(port=port) as second:
                await _drained(node)
                (item,) = await _items(node)
                assert (item.status, item.attempts, item.last_response_code) == ("acked", 1, "00")
                assert second.stats.received["0220"] == 1
                assert second.stats.received["0200"] == 0


async def test_timeout_covered_purchase_is_stood_in_and_the_advice_repeats_as_0221(
        tmp_path: Path, db_url: str) -> None:
    # The issuer answers this card after 800 ms, the node waits 300: the original may have been approved, so
    # the advice is the repeat (0221) and no reversal is queued (the advice is authoritative, ISO 8583:1987).
    async with issuer({"rules": [{"action": "delay", "bin": SLOW, "ms": 800}]}) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES, timeout_ms=300)
        async with running_node(conf) as node, client(port_of(node)) as c:
            start = trio.current_time()
            req = purchase(pan=SLOW, amount=1200)
            resp = await c.call(req)
            assert trio.current_time() - start < 1.0  # answered at the timeout, not after the issuer
            assert resp[39] == "00" and str(resp[38]).startswith("S")
            await _drained(node)
            (item,) = await _items(node)
            assert (item.mti, item.status, item.last_response_code) == ("0221", "acked", "00")
            assert iss.stats.received["0221"] == 1 and iss.stats.received["0200"] == 1
            assert iss.stats.received["0400"] + iss.stats.received["0401"] == 0
            (row,) = await trio.to_thread.run_sync(lambda: find_exchanges(node.engine, stan=str(req[11])))
            assert (row.outcome, row.response_code) == ("stand_in", "00")


async def test_timeout_over_the_policy_gets_91_and_a_reversal(tmp_path: Path, db_url: str) -> None:
    async with issuer({"rules": [{"action": "delay", "bin": SLOW, "ms": 800}]}) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES, timeout_ms=300)
        async with running_node(conf) as node, client(port_of(node)) as c:
            req = purchase(pan=SLOW, amount=5001)
            resp = await c.call(req)
            assert resp[39] == "91" and 38 not in resp.fields
            await _drained(node)
            (item,) = await _items(node)
            (row,) = await trio.to_thread.run_sync(lambda: find_exchanges(node.engine, stan=str(req[11])))
            assert row.outcome == "timeout"
            # The reversal goes under the STAN the original was sent upstream with.
            assert (item.mti, item.status, item.stan) == ("0400", "acked", row.upstream_stan)
            assert iss.stats.received["0220"] + iss.stats.received["0221"] == 0


def test_a_node_refuses_a_bad_stand_in_policy_with_file_line_key_and_reason(tmp_path: Path, db_url: str) -> None:
    conf = write_config(tmp_path, db_url, {"up": 1}, ROUTES.replace('currency = "840"', 'currency = "USD"'))
    cfg = parse_config(conf.read_text(), conf)
    with pytest.raises(ConfigError) as refused:
        Node(cfg)
    assert str(refused.value) == (f"{tmp_path / 'routes.toml'}:5: destinations.issuer.stand_in.currency: "
                                  "currency (ISO 4217 numeric) must be 3 digits, not 'USD'")


CELL_TIMEOUT_MS = 1000
CELL_POLICY = 'stand_in = { max_amount = 5000, mti = ["0200"], processing_codes = ["00"], currency = "840" }\n'


def _cell_state(cells: CellsConfig, cell: int, account: str) -> tuple[int, list[Txn]]:
    """The account's ledger balance and the cell's approved transactions, after checking its ledger."""
    engine = make_engine(cells.url(cell))
    try:
        report = ledger_check(engine)
        rows = load_rows(engine, cell, datetime.now(UTC), 35)
    finally:
        engine.dispose()
    assert report.ok, report.problems
    (balance,) = [r.ledger_balance for r in rows if isinstance(r, Account) and r.id == account]
    return balance, [r for r in rows if isinstance(r, Txn) and r.response_code == "00"]


@pytest.mark.slow
async def test_cells_get_the_stand_in_advices_and_apply_each_approval_once(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=2, timeout_ms=CELL_TIMEOUT_MS)
    conf = tmp_path / "node.toml"
    conf.write_text(conf.read_text() + "\n[saf]\ninitial_delay_ms = 0\nretry_interval_ms = 200\n"
                    "max_interval_ms = 1000\nsend_timeout_ms = 500\npoll_interval_ms = 100\n")
    routes = tmp_path / "routes.toml"
    routes.write_text(routes.read_text().replace('links = ["cell-00"]\n', 'links = ["cell-00"]\n' + CELL_POLICY)
                      .replace('links = ["cell-01"]\n', 'links = ["cell-01"]\n' + CELL_POLICY))
    cfg = parse_config(conf.read_text(), conf)
    cells = cells_of(cfg.sections)
    assert cells is not None
    deposit = 100_000
    silent = await trio.to_thread.run_sync(lambda: seed_cell(cells, 0, deposit=deposit))
    dead = await trio.to_thread.run_sync(lambda: seed_cell(cells, 1, deposit=deposit))
    node = Node(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.fail_after(60):
            while not all(link.is_up() for link in node.outbound.values()):
                await trio.sleep(0.05)
        supervisor = cell_supervisor(node)
        assert supervisor is not None
        async with client(port_of(node)) as c:
            # Cell 01 is killed: its link is down, the purchase is never sent, the advice is the 0220.
            victim = supervisor.pid(1)
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            with trio.fail_after(10):
                while node.outbound["cell-01"].is_up():
                    await trio.sleep(0.01)
            to_dead = await c.call(purchase(pan=dead.pan, amount=1500, terminal="TERMDEAD"))
            assert to_dead[39] == "00" and str(to_dead[38]).startswith("S")
            # Cell 00 is frozen (SIGSTOP): it receives the purchase and answers after the timeout. Both it and
            # the repeat advice (0221) reach it: the advice must not post the amount a second time.
            frozen = supervisor.pid(0)
            assert frozen is not None
            os.kill(frozen, signal.SIGSTOP)
            try:
                to_silent = await c.call(purchase(pan=silent.pan, amount=2500, terminal="TERMSLOW"), timeout=5)
                assert to_silent[39] == "00" and str(to_silent[38]).startswith("S")
                over = await c.call(purchase(pan=silent.pan, amount=5001, terminal="TERMSLOW"), timeout=5)
                assert over[39] == "91"
            finally:
                os.kill(frozen, signal.SIGCONT)
        with trio.fail_after(60):  # the killed cell is restarted and every advice is acknowledged
            while await trio.to_thread.run_sync(node.saf.pending_count, None):
                await trio.sleep(0.1)
        items = {item.mti: item for item in await trio.to_thread.run_sync(lambda: node.saf.list_items())}
        assert sorted(items) == ["0220", "0221", "0400"]
        assert {item.last_response_code for item in items.values()} == {"00"}
        assert (items["0220"].destination, items["0221"].destination) == ("cell-01", "cell-00")
        node.stop()
    balance, txns = await trio.to_thread.run_sync(_cell_state, cells, 1, dead.account)
    assert balance == deposit - 1500  # the advice of a purchase the cell never saw is posted
    assert [(t.mti, t.amount, t.status) for t in txns if t.mti] == [("0220", 1500, TxnStatus.APPROVED)]
    balance, txns = await trio.to_thread.run_sync(_cell_state, cells, 0, silent.account)
    assert balance == deposit - 2500  # once: the original was approved late, the 0221 found it by field 90
    # The 5001 purchase (not covered) was approved late too, and reversed by the switch's 0400.
    assert sorted((t.mti, t.amount, t.status) for t in txns if t.mti.startswith("02")) == [
        ("0200", 2500, TxnStatus.APPROVED), ("0200", 5001, TxnStatus.REVERSED)]


async def test_no_stand_in_for_a_card_its_issuer_declined_as_lost(tmp_path: Path, db_url: str) -> None:
    lost = "4761739001010036"
    rules = {"rules": [{"action": "decline", "bin": lost, "code": "41"},
                       {"action": "decline", "bin": "4761739001010028", "code": "51"}]}
    async with issuer(rules) as up:
        conf = write_config(tmp_path, db_url, {"up": up.port}, ROUTES, saf_delay_ms=0)
        async with running_node(conf) as node, client(port_of(node)) as c:
            assert (await c.call(purchase(pan=lost, amount=100)))[39] == "41"
            assert (await c.call(purchase(pan="4761739001010028", amount=100)))[39] == "51"  # not card-level
            assert (await c.call(purchase(pan=PAN, amount=100)))[39] == "00"
            up.cancel.cancel()
            with trio.fail_after(5):
                while node.outbound["up"].is_up():
                    await trio.sleep(0.01)
            assert (await c.call(purchase(pan=lost, amount=100)))[39] == "91"  # the issuer said lost
            stood_in = [await c.call(purchase(pan=pan, amount=100)) for pan in (PAN, "4761739001010028")]
            assert [r[39] for r in stood_in] == ["00", "00"] and all(str(r[38]).startswith("S") for r in stood_in)
        assert len(node.card_status) == 1
