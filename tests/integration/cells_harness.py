"""Helpers for the cell integration tests: a node.toml with [cells], a product catalogue without limits (so
continuous load is never declined for a daily count), routes BIN+cell -> cell-NN, and seeding through the
CLI's command client (in-process while no cell runs)."""

from __future__ import annotations

import signal
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from bench.ports import free_port_block
from processors.cell.client import run_commands
from processors.cell.config import CellsConfig
from processors.cell.supervisor import CellSupervisor
from schemes.generic import SCHEME
from switch.config import NodeConfig, parse_config
from switch.model.message import Message
from switch.runtime.node import Node
from switch.wire.framing import LengthFraming

BIN = "476173"

PRODUCTS = """
[bank]
country = "840"
own_acquirers = ["00000000001"]

[keys.demo]
zpk = "U51D62F096A9511A3D11B86968C8C1BA9"
pvk = "U99BF45E2A2BCB73698167E7AE0FC3FDF"
cvk = "UEC04202152DDFA3B2955B8BBB3074E4F"
imk_ac = "U67E7070D9A6E871313E59653CD8B1D1A"

[products.debit-test]
kind = "debit"
bins = ["476173"]
currency = "USD"
keys = "demo"
"""

NODE = """
[node]
name = "cells-itest"
var_dir = "{var}"
database_url = "{db}"
routes = "routes.toml"

[[listeners]]
name = "acquirer"
port = 0
scheme = "generic"
framing = {{ kind = "binary2" }}

[cells]
count = {count}
base_port = {base_port}
products = "products.toml"
timeout_ms = {timeout_ms}
hsm = {{ kind = "software", test_lmk = true }}
restart_backoff_ms = 100
restart_backoff_max_ms = 500
max_wait_ms = 0.5
"""


def write_cells_config(tmp: Path, *, count: int = 4, timeout_ms: int = 1000, db: str | None = None) -> NodeConfig:
    """node.toml, products.toml and routes.toml (prefix BIN + cell -> cell-NN) in ``tmp``."""
    var = tmp / "var"
    text = NODE.format(var=var, db=db or f"sqlite:///{var / 'node.db'}", count=count,
                       base_port=free_port_block(count), timeout_ms=timeout_ms)
    (tmp / "node.toml").write_text(text)
    (tmp / "products.toml").write_text(PRODUCTS)
    routes = 'default = "c00"\n'
    for k in range(count):
        routes += f'\n[destinations.c{k:02d}]\nlinks = ["cell-{k:02d}"]\n'
        routes += f'\n[[routes]]\nname = "cards-cell-{k:02d}"\nbins = ["{BIN}{k:02d}"]\ndestination = "c{k:02d}"\n'
    (tmp / "routes.toml").write_text(routes)
    return parse_config(text, tmp / "node.toml")


def ref_for_cell(cell: int, count: int, start: int = 0) -> str:
    """An external reference that the cell rule (crc32 % count) puts in ``cell``."""
    n = start
    while zlib.crc32(f"CIF-{n}".encode()) % count != cell:
        n += 1
    return f"CIF-{n}"


@dataclass
class SeededCard:
    cell: int
    pan: str
    account: str
    customer: str


def seed_cell(cells: CellsConfig, cell: int, *, deposit: int = 100_000_000, start: int = 0) -> SeededCard:
    """One customer with a funded checking account and an active debit card, in ``cell``."""
    ref = ref_for_cell(cell, cells.count, start)
    customer, account, _deposit, card = run_commands(cells, cell, [
        ("customer.open", {"name": f"Customer {ref}", "external_ref": ref}),
        ("account.open", {"customer": f"ref:{ref}", "kind": "checking", "product": "debit-test"}),
        ("account.deposit", {"account": f"ref:{ref}/checking", "amount": deposit, "reference": f"seed-{ref}"}),
        ("card.issue", {"customer": f"ref:{ref}", "product": "debit-test", "activate": True}),
    ])
    return SeededCard(cell, card["pan"], account["account"], customer["customer"])


def cell_supervisor(node: Node) -> CellSupervisor | None:
    """The node's cell supervisor (a service the ``[cells]`` section gave it), if it runs one."""
    found = [s for s in node.services if isinstance(s, CellSupervisor)]
    return found[0] if found else None


@asynccontextmanager
async def cell_process(cells: CellsConfig, cell: int) -> AsyncIterator[trio.Process]:
    """The cell as its own process, as the node's supervisor starts it (``python -m switch.cli.cell run``), up once
    its port accepts a connection; SIGTERM at the end if still running."""
    command = CellSupervisor(cells).command(cell)
    process = await trio.lowlevel.open_process(command)
    try:
        with trio.fail_after(60):  # an interpreter starting on a shared machine
            while True:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", cells.port(cell))
                except OSError:
                    assert process.returncode is None, f"cell exited {process.returncode}"
                    await trio.sleep(0.1)
                    continue
                await stream.aclose()
                break
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(20):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def exchange(cells: CellsConfig, cell: int, message: Message) -> Message:
    """Send one request to the cell over its own link (generic scheme, 2-byte length framing), as the switch does,
    on a fresh connection, and return the cell's answer."""
    framer = LengthFraming("binary2").framer()
    stream = await trio.open_tcp_stream("127.0.0.1", cells.port(cell))
    try:
        await stream.send_all(framer.encode(SCHEME.encode(message)))
        with trio.fail_after(10):
            while True:
                data = await stream.receive_some(65536)
                assert data, "the cell closed the connection without answering"
                framer.receive_data(bytes(data))
                frame = framer.next_frame()
                if frame is not None and not frame.keepalive:
                    return SCHEME.decode(frame.body)
    finally:
        await stream.aclose()
