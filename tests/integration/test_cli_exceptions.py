"""``bulkhead exceptions`` against a real cell process: advices the cell posted on an assumption are listed with
amounts in major units and UTC times (minor units with --json), resolved with a note through the running cell's
admin socket, and still listed, resolved, from the database once the cell is stopped. No clear PAN is printed."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import trio

from processors.cell.section import cells_of
from switch.config import load_config
from switch.exchange.reversal import build_stand_in_advice, original_data_elements
from tests.integration.cells_harness import cell_process, exchange, seed_cell, write_cells_config
from tests.integration.harness import Cli, purchase

pytestmark = pytest.mark.slow


async def test_exceptions_are_listed_resolved_and_kept(tmp_path: Path) -> None:
    write_cells_config(tmp_path, count=2)
    with (tmp_path / "products.toml").open("a") as products:
        products.write('\n[rates]\n"EUR/USD" = "1.0850"\n')
    cells = cells_of(load_config(tmp_path / "node.toml").sections)
    assert cells is not None
    card = await trio.to_thread.run_sync(functools.partial(seed_cell, cells, 1, deposit=100_000))
    cli = Cli(tmp_path / "node.toml", (card.pan,))

    auth = purchase(pan=card.pan, amount=10_000, stan=501, mti="0100")
    auth[32] = "00000000001"
    completion = purchase(pan=card.pan, amount=15_000, stan=502, mti="0220")
    completion[32] = "00000000001"
    completion[90] = original_data_elements(auth)
    euros = purchase(pan=card.pan, amount=10_000, stan=503)
    euros[49] = "978"
    euros[32] = "00000000001"
    async with cell_process(cells, 1):
        assert (await exchange(cells, 1, auth))[39] == "00"
        assert (await exchange(cells, 1, completion))[39] == "00"  # 50% over: posted as sent
        assert (await exchange(cells, 1, build_stand_in_advice(euros, "S00001", repeat=False)))[39] == "00"

        listed = (await cli("exceptions", "list")).output
        assert "cell 00: no open exceptions" in listed
        assert "cell 01: 2 open exceptions" in listed
        assert "E01-1" in listed and "completion_over_tolerance  150.00 USD  account " + card.account in listed
        assert ("completion of 150.00 USD above the authorization of 100.00 USD + 20% tolerance (120.00 USD): "
                "posted as sent") in listed
        assert "cell_rate  108.50 USD" in listed and "at the cell's rate EUR/USD 1.0850" in listed
        assert " UTC  " in listed and "0220 stan 000502" in listed

        machine = json.loads((await cli("exceptions", "list", "--cell", "1", "--json")).output)
        [cell] = machine["cells"]
        assert [(x["exception"], x["amount"], x["currency"]) for x in cell["exceptions"]] == [
            ("E01-1", 15_000, "USD"), ("E01-2", 10_850, "USD")]

        resolved = await cli("exceptions", "resolve", "E01-1", "--note", "tip confirmed with the merchant")
        assert resolved.exit_code == 0 and "E01-1 resolved" in resolved.output
        assert "resolved " in resolved.output and "UTC: tip confirmed with the merchant" in resolved.output
        again = await cli("exceptions", "resolve", "E01-1", "--note", "twice")
        assert again.exit_code == 1 and "already resolved" in again.output
        assert "cell 01: 1 open exception\n" in (await cli("exceptions", "list", "--cell", "1")).output

    # The cell is stopped: the command loads its state from the database.
    everything = (await cli("exceptions", "list", "--cell", "1", "--status", "all")).output
    assert "cell 01: 2 exceptions" in everything
    assert "UTC: tip confirmed with the merchant" in everything
    cli.assert_no_clear_pan()
