"""``bulkhead atm`` through click's CliRunner against a migrated node database (SQLite and PostgreSQL), as an
operator runs it: what it prints, what it stores, and that a refused command changes nothing.

Forming a TMK from components needs ``Hsm.form_key_from_components``; where this checkout's software backend has
none yet, a small stand-in does what the payShield does (XOR of the components, odd parity forced, under the LMK as
key type 002) and the tests check its result against the real software HSM's check value of the stored cryptogram.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, select

import switch.cli.atmkeys as atmkeys
from atmp.dispense import confirmation, reversal
from atmp.interface import NoteCounts
from atmp.model import TerminalStatus
from atmp.storage import AtmStore
from hsm.api import Hsm, NewKey
from hsm.inprocess import SoftwareBackend
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from switch.cli.main import main as bulkhead
from switch.config import NodeConfig
from switch.infra.db.engine import make_engine
from switch.storage.db import upgrade
from tests.integration.harness import ROUTES_ONE, write_config

COMPONENT_1 = "D6803D0E5BADDAE5328F525B918529C1"  # odd parity, as custodians' key sheets have them
COMPONENT_2 = "20080DB61C6825F8CED0511F0213B60E"
COMPONENT_3 = "CD8968EFAD0D868508CE6E0862258AE3"
SOFTWARE = SoftwareHsm(Lmk.thales_test())


def _odd(value: bytes) -> bytes:
    return bytes(b ^ 1 if bin(b).count("1") % 2 == 0 else b for b in value)


def clear_tmk(*components: str) -> bytes:
    out = bytes(16)
    for c in components:
        out = bytes(a ^ b for a, b in zip(out, bytes.fromhex(c), strict=True))
    return _odd(out)


class ComponentsBackend(SoftwareBackend):
    """The software backend with key forming, where this checkout's has none yet (see the module docstring)."""

    async def form_key_from_components(self, key_type: str, components: Sequence[str], scheme: str = "U") -> NewKey:
        key = ClearKey(clear_tmk(*components))
        return NewKey(KeyCodec(Lmk.thales_test()).to_lmk(key_type, key, scheme), key.check_value())


@pytest.fixture(autouse=True)
def hsm_with_key_forming(monkeypatch: pytest.MonkeyPatch) -> None:
    if hasattr(SoftwareBackend, "form_key_from_components"):
        return  # the real one

    @asynccontextmanager
    async def opened(cfg: NodeConfig) -> AsyncIterator[Hsm]:
        yield ComponentsBackend(SOFTWARE)

    monkeypatch.setattr(atmkeys, "open_node_hsm", opened)


class Atm:
    def __init__(self, conf: Path, url: str) -> None:
        self.conf = conf
        self.url = url
        self.outputs: list[str] = []

    def __call__(self, *args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(bulkhead, ["atm", *args, "--conf", str(self.conf)], input=input,
                                    catch_exceptions=False)
        self.outputs.append(result.output)
        return result

    def store(self) -> AtmStore:
        return AtmStore(make_engine(self.url))

    def everything_stored(self) -> str:
        """Every value of every ATMP table, as text."""
        engine = make_engine(self.url)
        try:
            metadata = MetaData()
            metadata.reflect(engine, only=lambda name, _: name.startswith("atm_"))
            with engine.connect() as connection:
                return "\n".join(str(tuple(row)) for table in metadata.sorted_tables
                                 for row in connection.execute(select(table)))
        finally:
            engine.dispose()


@pytest.fixture
def atm(tmp_path: Path, db_url: str) -> Iterator[Atm]:
    upgrade(db_url)
    conf = write_config(tmp_path, db_url, {"up": 9}, ROUTES_ONE.format(link="up"),
                        extra='\n[hsm]\nkind = "software"\ntest_lmk = true\n')
    yield Atm(conf, db_url)


ADD = ("add", "ATM00001", "--location", "Main St 1", "--institution", "412345", "--owner", "own", "--currency", "840",
       "--cassette", "1:20.00:100", "--cassette", "2:50:100", "--cassette", "3:10.00:100", "--low-cash", "95",
       "--surcharge", "2.50")


def components_input(*pairs: tuple[str, str]) -> str:
    return "".join(f"{name}\n{component}\n{component}\n" for name, component in pairs)


# -- registry ---------------------------------------------------------------------------------------------------


def test_add_then_list_and_show(atm: Atm) -> None:
    added = atm(*ADD)
    assert added.exit_code == 0, added.output
    assert "ATM00001: added, out of service (3 cassette(s), 8,000.00 USD)" in added.output
    listed = json.loads(atm("list", "--json").output)
    assert [(t["id"], t["status"], t["surcharge"], t["cash_remaining"]) for t in listed] == [
        ("ATM00001", "out_of_service", 250, 800000)]
    shown = json.loads(atm("show", "ATM00001", "--json").output)
    assert [(c["position"], c["denomination"], c["remaining"]) for c in shown["cassettes"]] == [
        (1, 2000, 100), (2, 5000, 100), (3, 1000, 100)]
    assert shown["keys"]["tmk"] is None and shown["events"][0]["kind"] == "added"
    text = atm("show", "ATM00001").output
    assert "surcharge      2.50 USD (foreign cards)" in text and "cash left      8,000.00 USD" in text


@pytest.mark.parametrize(("change", "message"), [
    (("--cassette", "5:20.00:100"), "--cassette '5:20.00:100': expected POSITION:DENOMINATION:COUNT"),
    (("--cassette", "1:20.001:100"), "--cassette '1:20.001:100': USD has 2 decimal place(s)"),
    (("--cassette", "1:20.00:10000"), "--cassette '1:20.00:10000': notes loaded must be 0 to 9999"),
    (("--cassette", "1:0:100"), "--cassette '1:0:100': denomination must be above zero"),
    (("--currency", "999"), "--currency '999': not an ISO 4217 numeric currency code this node knows"),
    (("--institution", "ABC"), "institution: 'ABC' is not 1 to 11 digits"),
    (("--surcharge", "lots"), "--surcharge 'lots': not an amount"),
])
def test_bad_input_is_one_line_naming_the_argument_and_adds_nothing(atm: Atm, change: tuple[str, str],
                                                                    message: str) -> None:
    args = list(ADD)
    at = args.index(change[0])
    args[at + 1] = change[1]
    result = atm(*args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}")
    assert atm.store().terminals() == []


def test_an_id_is_added_once_and_a_bad_id_is_refused(atm: Atm) -> None:
    assert atm(*ADD).exit_code == 0
    again = atm(*ADD)
    assert again.exit_code == 1 and "terminal 'ATM00001' exists already" in again.output
    bad = atm("add", "ATM1", *ADD[2:])
    assert bad.exit_code == 1 and "terminal id: 'ATM1' is not 8 letters or digits" in bad.output


@pytest.mark.parametrize("command", [("show", "ATM00009"), ("enable", "ATM00009"), ("rekey", "ATM00009"),
                                     ("replenish", "ATM00009", "--removed", "1:1", "--loaded", "1:1"),
                                     ("totals", "ATM00009", "--day", "2026-12-08")])
def test_an_unknown_terminal_is_an_error(atm: Atm, command: tuple[str, ...]) -> None:
    result = atm(*command)
    assert result.exit_code == 1 and "unknown terminal 'ATM00009'" in result.output


def test_status_commands_and_the_tmk_a_terminal_needs_in_service(atm: Atm) -> None:
    atm(*ADD)
    refused = atm("enable", "ATM00001")
    assert refused.exit_code == 1 and "ATM00001 has no TMK" in refused.output
    assert atm.store().terminal("ATM00001").status is TerminalStatus.OUT_OF_SERVICE  # type: ignore[union-attr]
    atm("load-tmk", "ATM00001", "--components", "2",
        input=components_input(("ann", COMPONENT_1), ("bob", COMPONENT_2)))
    assert atm("enable", "ATM00001").output == "ATM00001: out_of_service -> in_service\n"
    assert json.loads(atm("supervisor", "ATM00001", "--json").output)["after"] == "supervisor"
    assert atm("close", "ATM00001").exit_code == 0
    closed = atm("enable", "ATM00001")
    assert closed.exit_code == 1 and "the terminal is closed" in closed.output
    assert atm("disable", "ATM00001").output == "ATM00001: closed -> out_of_service\n"
    assert atm("disable", "ATM00001").output == "ATM00001: out_of_service already\n"


# -- keys -------------------------------------------------------------------------------------------------------


def test_a_tmk_from_components_shows_its_kcv_and_keeps_no_component(atm: Atm) -> None:
    atm(*ADD)
    loaded = atm("load-tmk", "ATM00001", "--components", "3",
                 input=components_input(("ann", COMPONENT_1), ("bob", COMPONENT_2), ("cy", COMPONENT_3)))
    assert loaded.exit_code == 0, loaded.output
    kcv = ClearKey(clear_tmk(COMPONENT_1, COMPONENT_2, COMPONENT_3)).check_value()
    assert f"ATM00001: TMK loaded, KCV {kcv} (3 components under dual control: ann, bob, cy)" in loaded.output
    terminal = atm.store().terminal("ATM00001")
    assert terminal is not None and terminal.rekey_due and terminal.keys.tmk_kcv == kcv
    assert terminal.keys.tmk is not None and SOFTWARE.key_check_value("002", terminal.keys.tmk) == kcv
    stored = atm.everything_stored()
    secrets = (COMPONENT_1, COMPONENT_2, COMPONENT_3, clear_tmk(COMPONENT_1, COMPONENT_2, COMPONENT_3).hex().upper())
    for secret in secrets:
        assert secret not in stored and secret.lower() not in stored
        assert all(secret not in out and secret.lower() not in out for out in atm.outputs)
    assert "ann, bob, cy" in stored  # the audit trail names the custodians


def test_dual_control_needs_a_different_custodian_for_each_component(atm: Atm) -> None:
    atm(*ADD)
    same = atm("load-tmk", "ATM00001", "--components", "2",
               input=components_input(("ann", COMPONENT_1)) + "ann\n")
    assert same.exit_code == 1 and "custodian 2: ann has a component already" in same.output
    bad = atm("load-tmk", "ATM00001", "--components", "2", input="ann\nNOT-HEX-AT-ALL\nNOT-HEX-AT-ALL\n")
    assert bad.exit_code == 1 and "component 1: expected 32 hex digits" in bad.output
    assert "NOT-HEX-AT-ALL" not in bad.output.replace("NOT-HEX-AT-ALL\n", "")  # the prompt never echoes it
    short = atm("load-tmk", "ATM00001", "--components", "2",
                input=components_input(("ann", COMPONENT_1), ("bob", "U" + COMPONENT_2)))
    assert short.exit_code == 1 and "component 2: not of the same kind and length as component 1" in short.output
    assert atm.store().terminal("ATM00001").keys.tmk is None  # type: ignore[union-attr]
    unknown = atm("load-tmk", "ATM00009", "--components", "2", input="ann\n")
    assert unknown.exit_code == 1 and "unknown terminal" in unknown.output and "custodian" not in unknown.output


def test_a_tmk_imported_under_a_zmk(atm: Atm) -> None:
    atm(*ADD)
    zmk = SOFTWARE.generate_key("000")
    sent = SOFTWARE.generate_key_exported("002", zmk.under_lmk)
    result = atm("load-tmk", "ATM00001", "--under-zmk", sent.under_zmk, "--zmk", zmk.under_lmk, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tmk_kcv"] == sent.kcv
    assert atm.store().terminal("ATM00001").keys.tmk_kcv == sent.kcv  # type: ignore[union-attr]
    missing = atm("load-tmk", "ATM00001", "--under-zmk", sent.under_zmk)
    assert missing.exit_code == 1 and "--under-zmk needs --zmk" in missing.output
    both = atm("load-tmk", "ATM00001", "--components", "2", "--under-zmk", sent.under_zmk, "--zmk", zmk.under_lmk)
    assert both.exit_code == 1 and "give either --components" in both.output


def test_rekey_needs_a_tmk_and_marks_the_terminal(atm: Atm) -> None:
    atm(*ADD)
    refused = atm("rekey", "ATM00001")
    assert refused.exit_code == 1 and "no TMK loaded" in refused.output
    atm("load-tmk", "ATM00001", "--components", "2",
        input=components_input(("ann", COMPONENT_1), ("bob", COMPONENT_2)))
    atm.store().confirm_keys("ATM00001", "000000", "000000", datetime.now(UTC))  # nothing pending: refused
    assert atm("rekey", "ATM00001").exit_code == 0
    assert json.loads(atm("show", "ATM00001", "--json").output)["rekey_due"] is True


# -- cash and totals -------------------------------------------------------------------------------------------


def _withdrawals(store: AtmStore) -> None:
    at = datetime(2026, 12, 8, 12, tzinfo=UTC)
    day = date(2026, 12, 8)
    store.record_outcome("ATM00001", "ATM00001:000001:1208120000", confirmation(7000, NoteCounts((1, 1, 0, 0))),
                         business_date=day, at=at)
    store.record_outcome("ATM00001", "ATM00001:000002:1208120100",
                         reversal(8000, 3000, "22", NoteCounts((1, 0, 1, 0), (0, 1, 0, 0))), business_date=day, at=at)
    store.record_outcome("ATM00001", "ATM00001:000003:1208120200", confirmation(4000, None), business_date=day,
                         at=at)


def test_replenish_prints_the_discrepancy_per_cassette_and_in_money(atm: Atm) -> None:
    atm(*ADD)
    _withdrawals(atm.store())  # host: cassette 1 has 96 left, 2 has 98, 3 has 99
    result = atm("replenish", "ATM00001", "--removed", "1:96,2:97", "--removed", "3:99",
                 "--loaded", "1:100", "--loaded", "2:100", "--loaded", "3:50")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["1", "20.00", "USD", "96", "96", "+0", "0.00", "USD", "100"]
    assert lines[2].split() == ["2", "50.00", "USD", "98", "97", "-1", "-50.00", "USD", "100"]
    assert lines[-1] == "ATM00001: DISCREPANCY -50.00 USD (counted minus the host's), cassettes loaded"
    status = json.loads(atm("status", "--json").output)[0]
    assert [c["remaining"] for c in status["cassettes"]] == [100, 100, 50] and status["low_cash"] == [3]
    assert "LOW CASH 3" in atm("status").output


def test_a_refused_replenishment_leaves_the_counts(atm: Atm) -> None:
    atm(*ADD)
    _withdrawals(atm.store())
    before = atm("status", "--json").output
    missing = atm("replenish", "ATM00001", "--removed", "1:96,2:97", "--loaded", "1:100,2:100,3:100")
    assert missing.exit_code == 1 and "removed: no count for cassette 3" in missing.output
    bad = atm("replenish", "ATM00001", "--removed", "1:96,2:97,x", "--loaded", "1:100,2:100,3:100")
    assert bad.exit_code == 1 and "--removed 'x': expected POSITION:COUNT" in bad.output
    assert atm("status", "--json").output == before


def test_totals_entered_by_the_operator_against_the_hosts(atm: Atm) -> None:
    atm(*ADD)
    _withdrawals(atm.store())  # dispensed 70.00 + 30.00 + 40.00 in 3 withdrawals
    host_only = atm("totals", "ATM00001", "--day", "2026-12-08")
    assert "no terminal totals yet; the host's: 3 withdrawal(s) 140.00 USD" in host_only.output
    short = atm("totals", "ATM00001", "--day", "2026-12-08", "--withdrawals", "3:120.00")
    assert short.exit_code == 0, short.output
    assert "DISCREPANCY: the terminal counts +0 withdrawal(s), -20.00 USD against the host" in short.output
    agree = json.loads(atm("totals", "ATM00001", "--day", "2026-12-08", "--withdrawals", "3:140", "--deposits",
                           "0:0", "--json").output)
    assert agree["agree"] is True and agree["host"]["withdrawal_amount"] == 14000
    kept = json.loads(atm("totals", "ATM00001", "--day", "2026-12-08", "--json").output)
    assert kept["source"] == "operator" and kept["terminal"]["withdrawals"] == 3
    bad = atm("totals", "ATM00001", "--day", "2026-12-08", "--withdrawals", "3")
    assert bad.exit_code == 1 and "--withdrawals '3': expected COUNT:AMOUNT" in bad.output


def test_status_shows_faults(atm: Atm) -> None:
    from atmp.model import DeviceStatus

    atm(*ADD)
    atm.store().set_device_status("ATM00001", DeviceStatus.from_code("0201"), datetime.now(UTC))
    line = atm("status").output.splitlines()[0]
    assert line.startswith("ATM00001  out_of_service") and "FAULT dispenser" in line and "warning printer" in line


# -- seed, the database, the running node ----------------------------------------------------------------------


def test_seed_registers_the_demo_fleet_once(atm: Atm, tmp_path: Path) -> None:
    fleet = Path(__file__).resolve().parents[2] / "conf" / "demo" / "atm-fleet.toml"
    first = atm("seed", "--fleet", str(fleet))
    assert first.exit_code == 0, first.output
    assert [line.split(":")[0] for line in first.output.splitlines()] == [f"ATM0000{i}" for i in range(1, 5)]
    terminals = atm.store().terminals()
    assert [(t.id, t.status, t.owner.value, t.keys.mac, t.keys.dukpt) for t in terminals] == [
        ("ATM00001", TerminalStatus.IN_SERVICE, "own", False, False),
        ("ATM00002", TerminalStatus.IN_SERVICE, "own", True, False),
        ("ATM00003", TerminalStatus.IN_SERVICE, "partner", False, False),
        ("ATM00004", TerminalStatus.IN_SERVICE, "own", False, True)]
    for t in terminals:
        assert t.keys.tmk is not None and SOFTWARE.key_check_value("002", t.keys.tmk) == t.keys.tmk_kcv
        assert [(c.denomination, c.remaining) for c in t.cassettes] == [(2000, 2000), (5000, 2000), (1000, 2000),
                                                                        (10000, 2000)]
    bdk = terminals[3].keys.dukpt_bdk
    assert bdk is not None and SOFTWARE.key_check_value("009", bdk) == "2A3467"
    second = atm("seed", "--fleet", str(fleet))
    assert second.exit_code == 0 and second.output.count("registered already, not seeded") == 4


def test_seed_refuses_a_fleet_file_with_a_mistake(atm: Atm, tmp_path: Path) -> None:
    broken = tmp_path / "fleet.toml"
    broken.write_text('[[terminals]]\nid = "ATM00001"\nlocation = "x"\ninstitution = "1"\nowner = "own"\n'
                      'currency = "840"\ntmk_components = ["00", "11"]\ncolour = "red"\n')
    result = atm("seed", "--fleet", str(broken))
    assert result.exit_code == 1 and "terminals[0].colour" in result.output
    assert atm.store().terminals() == []


def test_a_database_not_migrated_to_the_atmp_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    conf = write_config(tmp_path, url, {"up": 9}, ROUTES_ONE.format(link="up"))
    result = CliRunner().invoke(bulkhead, ["atm", "list", "--conf", str(conf)])
    assert result.exit_code == 1
    assert "is at revision 0005, not 0006: run `bulkhead db upgrade` first" in result.output


class FakeNode:
    """An admin socket that answers every command with ``answer`` and remembers what it was asked."""

    def __init__(self, path: Path, answer: dict[str, Any]) -> None:
        self.asked: list[str] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.answer = answer
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                self.asked.append(json.loads(connection.makefile().readline())["cmd"])
                connection.sendall(json.dumps(self.answer).encode() + b"\n")

    def close(self) -> None:
        self.server.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_change_tells_a_running_node_and_a_refusal_is_reported(atm: Atm, tmp_path: Path) -> None:
    socket_path = tmp_path / "var" / "admin.sock"
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    node = FakeNode(socket_path, {"ok": True, "result": {"terminals": 1}})
    try:
        added = atm(*ADD, "--json")
        assert added.exit_code == 0 and json.loads(added.output)["node_reloaded"] is True
        assert node.asked == ["atm.reload"]
    finally:
        node.close()
        socket_path.unlink()
    node = FakeNode(socket_path, {"ok": False, "error": "unknown command 'atm.reload'"})
    try:
        result = atm("disable", "ATM00001")
        assert result.exit_code == 1
        assert "saved, but the running node did not reload its terminals: unknown command" in result.output
    finally:
        node.close()


def test_without_a_running_node_changes_are_simply_saved(atm: Atm, db_url: str) -> None:
    result = atm(*ADD, "--json")
    assert result.exit_code == 0 and json.loads(result.output)["node_reloaded"] is False


