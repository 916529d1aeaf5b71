"""Shared set-up of the command tests: the demo catalogue, a real software HSM under the Thales test LMK, a
fixed clock, and a data key for PAN hashing and sealing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hsm.inprocess import SoftwareBackend
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.testing import TestPinPad
from processors.catalog import Catalog
from processors.catalog_file import load_catalog
from processors.commands import CellCommands
from processors.model import Effects, Posting
from processors.state import CellState
from switch.infra.datakey import DataKeys

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ROOT / "conf" / "demo" / "products.toml"
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
DATA_KEYS = DataKeys(bytes(range(32)))


def catalog() -> Catalog:
    return load_catalog(PRODUCTS)


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_commands(cell: int = 0, cell_count: int = 1, *, with_hsm: bool = True, unseal: bool = True,
                  clock: Clock | None = None, state: CellState | None = None) -> CellCommands:
    hsm = SoftwareBackend(SoftwareHsm(Lmk.thales_test())) if with_hsm else None
    return CellCommands(state if state is not None else CellState(cell), catalog(), cell_count=cell_count, hsm=hsm,
                        pan_hash=DATA_KEYS.pan_hash, seal=DATA_KEYS.seal, clock=clock or Clock(),
                        unseal=DATA_KEYS.open if unseal else None)


async def run(commands: CellCommands, command: str, /, **args: Any) -> dict[str, Any]:
    result, _ = await commands.run(command, args)
    return result


def snapshot(commands: CellCommands) -> CellState:
    return copy.deepcopy(commands.state)


def postings(effects: Effects) -> list[dict[str, Any]]:
    return [row for kind, row in effects.rows if kind is Posting]


def pin_block(commands: CellCommands, pan: str, pin: str = "1234", product: str = "debit-classic") -> str:
    keys = commands.catalog.keys[commands.catalog.products[product].keys]
    return TestPinPad().pin_block("ZPK", keys.zpk, pin, pan).hex().upper()


async def customer_with_checking(commands: CellCommands, ref: str = "CIF-1", deposit: int = 100_000) -> str:
    """Open a customer with a funded checking account; returns the customer number."""
    customer = (await run(commands, "customer.open", name="Test Person", external_ref=ref))["customer"]
    account = (await run(commands, "account.open", customer=customer, kind="checking",
                         product="debit-classic"))["account"]
    if deposit:
        await run(commands, "account.deposit", account=account, amount=deposit, reference=f"{ref}-dep")
    return str(customer)


async def credit_customer(commands: CellCommands, ref: str = "CIF-C") -> tuple[str, str]:
    """A customer with a credit account; returns (customer, account)."""
    customer = (await run(commands, "customer.open", name="Credit Person", external_ref=ref))["customer"]
    account = (await run(commands, "account.open", customer=customer, kind="credit",
                         product="credit-gold"))["account"]
    return str(customer), str(account)
