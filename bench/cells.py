"""The processor-cell side of the benchmark: keys, configuration, seeded cards and the durable-postings check.

For a scenario with ``cells=True`` the harness
1. generates a fresh key set under the public Thales test LMK (:func:`generate_keys`): the catalogue's ZPK,
   PVK, CVK and MK-AC, and the ATM listener's TPK (benchmark data only, like the demo's);
2. writes a node.toml with an ``acquirer`` (generic) and an ``atm`` listener (``pin_key`` = the TPK), the
   node's ``[hsm]`` and a ``[cells]`` table (``pin_key`` = the catalogue's ZPK, ``supervise = true``: the node
   starts the cells as its child processes), a products.toml whose products have **no limits** (a long run
   must not be declined with 61/65 for a daily amount or count) and credit lines far above what a run can
   spend, and routes BIN + cell -> ``cell-NN`` (:func:`write_config`);
3. seeds, before the node starts (no cell runs, so :func:`processors.cell.client.run_commands` works in-process
   on each cell's database), a customer per card in the cell its external reference maps to
   (``crc32(ref) % count``), a funded checking account (debit) or a credit line (credit), an active card and
   its PIN set through the HSM from a PIN block under the ZPK (:func:`seed_cards`);
4. after the run, checks every cell database: :func:`processors.storage.ledger_check` and the count of
   approved Txn rows of card requests (:func:`check_cells`), which must cover every approval the generator
   saw: an answer "00" from a cell is only sent after its Txn and posting committed.

Clear PANs, tracks and PIN blocks of the seeded cards live only in memory (and in the generator's pre-encoded
requests); nothing here prints or writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.nodeconf import ATM_TOML, NODE_HEAD_TOML
from bench.ports import free_port_block
from bench.scenarios import BenchCard
from processors.cell.config import CellsConfig

DEBIT_BIN = "476173"
CREDIT_BIN = "520000"
DEBIT_PRODUCT = "bench-debit"
CREDIT_PRODUCT = "bench-credit"
PIN = "1234"
EXPIRY = "3012"  # YYMM, fixed so the track 2 and the card agree
DEPOSIT = 10**10  # minor units: 100,000,000.00 USD per debit account, far more than any run spends
CREDIT_LIMIT = 10**11  # likewise for the credit lines (cash limit the same: withdrawals are cash advances)

PRODUCTS_TOML = """\
# Benchmark catalogue written by bench/cells.py: keys generated for this run under the public Thales test LMK;
# no limits on any product (continuous load must not be declined for a daily amount or count) and no fees.
[bank]
country = "840"
own_acquirers = ["00000000001"]
pin_tries = 3

[keys.bench]
zpk = "{zpk}"
pvk = "{pvk}"
cvk = "{cvk}"
imk_ac = "{imk_ac}"

[products.{debit}]
kind = "debit"
bins = ["{debit_bin}"]
currency = "USD"
keys = "bench"
service_code = "201"

[products.{credit}]
kind = "credit"
bins = ["{credit_bin}"]
currency = "USD"
keys = "bench"
service_code = "201"
credit_limit = {credit_limit}
cash_limit = {credit_limit}
"""

NODE_TOML = NODE_HEAD_TOML + ATM_TOML + """
[cells]
count = {count}
host = "127.0.0.1"
base_port = {base_port}
products = "products.toml"
timeout_ms = 10000
hsm = {{ kind = "software", test_lmk = true }}
supervise = true
pin_key = {{ type = "ZPK", key = "{zpk}" }}
"""


@dataclass(frozen=True)
class BenchKeys:
    """LMK cryptograms (test LMK) of the run's keys."""

    zpk: str
    pvk: str
    cvk: str
    imk_ac: str
    tpk: str


def generate_keys() -> BenchKeys:
    """Fresh keys under the Thales test LMK (key type codes: ZPK 001, TPK/PVK 002, CVK 402, MK-AC 109)."""
    from hsm.lmk import Lmk
    from hsm.software import SoftwareHsm

    hsm = SoftwareHsm(Lmk.thales_test())
    return BenchKeys(*(hsm.generate_key(code).under_lmk for code in ("001", "002", "402", "109", "002")))


def routes_toml(count: int) -> str:
    """BIN + two-digit cell -> that cell's connector, for both products (longest prefix wins)."""
    text = 'default = "c00"\n'
    for k in range(count):
        text += f'\n[destinations.c{k:02d}]\nlinks = ["cell-{k:02d}"]\n'
        text += (f'\n[[routes]]\nname = "cards-cell-{k:02d}"\nbins = ["{DEBIT_BIN}{k:02d}", "{CREDIT_BIN}{k:02d}"]\n'
                 f'destination = "c{k:02d}"\n')
    return text


def write_config(folder: Path, keys: BenchKeys, *, count: int, port: int, atm_port: int, max_batch: int,
                 max_wait_ms: float, processes: int = 1) -> Path:
    """node.toml, products.toml and routes.toml for ``count`` cells in ``folder``; returns node.toml."""
    (folder / "products.toml").write_text(PRODUCTS_TOML.format(
        zpk=keys.zpk, pvk=keys.pvk, cvk=keys.cvk, imk_ac=keys.imk_ac, debit=DEBIT_PRODUCT, credit=CREDIT_PRODUCT,
        debit_bin=DEBIT_BIN, credit_bin=CREDIT_BIN, credit_limit=CREDIT_LIMIT))
    (folder / "routes.toml").write_text(routes_toml(count))
    node = folder / "node.toml"
    node.write_text(NODE_TOML.format(
        name="bench-cells", var=folder / "var", max_batch=max_batch, max_wait_ms=max_wait_ms, port=port,
        processes=processes,
        atm_port=atm_port, tpk=keys.tpk, count=count, base_port=free_port_block(count), zpk=keys.zpk))
    return node


def cells_config(node_toml: Path) -> CellsConfig:
    """The ``[cells]`` table of the benchmark's node.toml, parsed as the node will."""
    from processors.cell.section import cells_of
    from switch.config import load_config

    cells = cells_of(load_config(node_toml).sections)
    if cells is None:
        raise ValueError(f"{node_toml} has no [cells] table")
    return cells


def _refs_per_cell(count: int, per_cell: list[int]) -> list[list[str]]:
    """External references, ``per_cell[k]`` of them landing in cell k by the cell rule."""
    from processors.cardnumber import cell_for_external_ref

    out: list[list[str]] = [[] for _ in range(count)]
    n = 0
    while any(len(out[k]) < per_cell[k] for k in range(count)):
        ref = f"BENCH-{n:07d}"
        n += 1
        cell = cell_for_external_ref(ref, count)
        if len(out[cell]) < per_cell[cell]:
            out[cell].append(ref)
    return out


def seed_cards(cells: CellsConfig, keys: BenchKeys, *, cards: int, credit_share: float) -> list[BenchCard]:
    """Seed ``cards`` customers (about ``credit_share`` of them with a credit card, the others with a debit
    card on a funded checking account) spread evenly over the cells; return the cards interleaved by cell
    (consecutive cards are in different cells), each with its track 2 and its ATM PIN block."""
    from hsm.testing import TestPinPad
    from processors.cell.client import run_commands
    from switch.sim.cards import test_card

    count = cells.count
    per_cell = [cards // count + (1 if k < cards % count else 0) for k in range(count)]
    refs = _refs_per_cell(count, per_cell)
    pad = TestPinPad()
    seeded: list[list[BenchCard]] = []
    for cell in range(count):
        credit_every = round(1 / credit_share) if credit_share > 0 else 0
        plan: list[tuple[str, str]] = []  # (ref, kind)
        issue: list[tuple[str, dict[str, Any]]] = []
        for i, ref in enumerate(refs[cell]):
            kind = "credit" if credit_every and i % credit_every == credit_every - 1 else "debit"
            plan.append((ref, kind))
            who = f"ref:{ref}"
            product = CREDIT_PRODUCT if kind == "credit" else DEBIT_PRODUCT
            issue.append(("customer.open", {"name": f"Bench {ref}", "external_ref": ref}))
            issue.append(("account.open", {"customer": who, "kind": "credit" if kind == "credit" else "checking",
                                           "product": product}))
            if kind == "debit":
                issue.append(("account.deposit", {"account": f"{who}/checking", "amount": DEPOSIT,
                                                  "reference": f"seed-{ref}"}))
            issue.append(("card.issue", {"customer": who, "product": product, "expiry": EXPIRY, "activate": True}))
        results = run_commands(cells, cell, issue, timeout=120)
        pans = [r["pan"] for (name, _), r in zip(issue, results, strict=True) if name == "card.issue"]
        run_commands(cells, cell, [
            ("card.set_pin", {"card": pan, "pin_block": pad.pin_block("ZPK", keys.zpk, PIN, pan).hex().upper()})
            for pan in pans
        ], timeout=120)
        products = cells.products
        cell_cards = []
        for (_, kind), pan in zip(plan, pans, strict=True):
            card = test_card(products, pan, EXPIRY, pin=PIN, tpk=keys.tpk)
            assert card.pin_block is not None
            cell_cards.append(BenchCard(cell, kind, pan, card.track2, card.pin_block))
        seeded.append(cell_cards)
    out: list[BenchCard] = []
    for i in range(max(per_cell)):
        out += [cell_cards[i] for cell_cards in seeded if i < len(cell_cards)]
    return out


def check_cells(cells: CellsConfig) -> dict[str, dict[str, Any]]:
    """Per cell (``cell-00``...): the ledger check and the approved Txn rows of card requests (a Txn with an
    MTI: lifecycle commands such as the seed's deposits have none)."""
    from sqlalchemy import text

    from processors.storage import ledger_check
    from switch.infra.db.engine import make_engine

    out: dict[str, dict[str, Any]] = {}
    for k in range(cells.count):
        engine = make_engine(cells.url(k))
        try:
            report = ledger_check(engine)
            with engine.connect() as connection:
                approved = connection.execute(text(
                    "SELECT count(*) FROM cell_txns WHERE status = 'approved' AND mti <> ''")).scalar_one()
        finally:
            engine.dispose()
        out[cells.name(k)] = {"ledger_ok": report.ok, "ledger_problems": report.problems[:5],
                              "approved_txns": int(approved)}
    return out
