"""The demo seed: customers in both cells, the documented PANs, PIN 1234 on every card, the demo cases."""

from __future__ import annotations

import json

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from processors.cardnumber import cell_of_pan
from processors.commands import CellCommands
from processors.demo import DEMO_PIN, demo_commands
from processors.model import CardStatus

from .commands_kit import DATA_KEYS, catalog, make_commands, pin_block

DOCUMENTED = {  # processors/demo.py docstring
    "4761730010000019": "DEMO-ALICE", "4761730110000026": "DEMO-BOB", "4761730010000035": "DEMO-CAROL",
    "4761730110000042": "DEMO-DAVE", "5200000120000010": "DEMO-ERIN",
}


async def seeded(count: int) -> list[CellCommands]:
    cells = [make_commands(cell=k, cell_count=count) for k in range(count)]
    for cell, name, args in demo_commands(catalog(), count):
        result, effects = await cells[cell].run(name, args)
        assert effects and json.loads(json.dumps(result)) == result  # JSON-able, every step changes something
        if name not in ("card.issue", "card.replace"):
            assert not any(pan in json.dumps(result) for pan in DOCUMENTED)
    return cells


async def test_seed_spreads_customers_over_two_cells_with_the_documented_pans() -> None:
    cells = await seeded(2)
    assert all(c.state.customers for c in cells)
    hsm = SoftwareHsm(Lmk.thales_test())
    for pan, ref in DOCUMENTED.items():
        commands = cells[cell_of_pan(pan)]
        card = commands.state.cards_by_hash[DATA_KEYS.pan_hash(pan)]
        assert commands.state.customers[card.customer_id].external_ref == ref
        product = catalog().products[card.product]
        keys = catalog().keys[product.keys]
        block = pin_block(commands, pan, DEMO_PIN, product.code)
        assert hsm.verify_pin_pvv("001", keys.zpk, keys.pvk, block, "01", pan, card.pvki, card.pvv)
        assert card.status == (CardStatus.LOST if ref == "DEMO-DAVE" else CardStatus.ACTIVE)
    bob = cells[1].state.cards_by_hash[DATA_KEYS.pan_hash("4761730110000026")]
    assert bob.limits == {"pos": {"per_txn": 2_000, "daily_amount": 5_000},
                          "atm": {"per_txn": 2_000, "daily_amount": 5_000}}
    carol = cells[0].state.cards_by_hash[DATA_KEYS.pan_hash("4761730010000035")]
    assert cells[0].state.accounts[carol.account_id].available == 500
    alice = cells[0].state.cards_by_hash[DATA_KEYS.pan_hash("4761730010000019")]
    assert set(alice.accounts) == {"10", "20"}
    [plan] = cells[1].state.plans.values()
    assert (plan.principal, plan.count, plan.status) == (120_000, 6, "active")
    line = cells[1].state.credit_lines[plan.credit_line_id]
    assert line.owed == 120_000 + plan.fee


async def test_seed_with_one_cell_puts_everyone_in_cell_zero() -> None:
    [only] = await seeded(1)
    assert len(only.state.customers) == 5 and len(only.state.cards) == 5
    pans = [DATA_KEYS.open(card.pan_sealed).decode() for card in only.state.cards.values()]
    assert all(cell_of_pan(pan) == 0 for pan in pans)
    assert sorted(pan[8:15] for pan in pans) == ["1000001", "1000002", "1000003", "1000004", "2000001"]
