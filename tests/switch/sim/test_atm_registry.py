"""``bulkhead sim atm --conf`` and ``--check-host``: the terminals' keys, MAC setting and cassettes from the host's
registry, and at the end each terminal's cash against the host's counts (exit 1 on a mismatch).

The registry is the ATMP's store (``atmp.storage.AtmStore``); here a stand-in module in its place holds terminals
shaped like the ATMP's model and counts the notes from what the fake host received, as the contract says a host
does (DE 63 of each 0220/0420: dispensed, or retracted for reason RT)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from switch.sim.atmcash import Cassettes
from switch.sim.atmregistry import HostCassette, HostTerminal, RegistryError, check, read_registry
from switch.sim.atmreport import TerminalCash
from switch.sim.cli import sim
from tests.switch.sim.atmhost import FakeHost, new_tmk
from tests.switch.sim.test_atm_cli import PAN, PAN2, host_thread

DENOMINATIONS = (2000, 5000, 1000, 10000)
LOADED = 2000


class Registry:
    """Terminals as the ATMP's model has them, counted from the fake host's recorded advices."""

    def __init__(self, host: FakeHost, *, mac: frozenset[str] = frozenset(), dukpt: frozenset[str] = frozenset(),
                 count_retracted: bool = True) -> None:
        self.host, self.mac, self.dukpt, self.count_retracted = host, mac, dukpt, count_retracted
        self.reads = 0

    def terminal(self, tid: str) -> Any:
        self.reads += 1
        if tid not in self.host.tmks:
            return None
        dispensed, retracted = [0] * 4, [0] * 4
        for (owner, _, _), advices in self.host.advices.items():
            if owner != tid:
                continue
            msg = advices[0]
            counts = [int(str(msg[63])[1 + 4 * i:5 + 4 * i]) for i in range(4)]
            into = retracted if msg.get(39) == "RT" and self.count_retracted else dispensed
            for i in range(4):
                into[i] += counts[i]
        cassettes = [SimpleNamespace(position=i + 1, denomination=d, loaded=LOADED, dispensed=dispensed[i],
                                     rejected=0, retracted=retracted[i]) for i, d in enumerate(DENOMINATIONS)]
        keys = SimpleNamespace(tmk=self.host.tmks[tid], mac=tid in self.mac,
                               dukpt_bdk="U" + "1" * 32 if tid in self.dukpt else None)
        return SimpleNamespace(id=tid, status=SimpleNamespace(value="in_service"), keys=keys, cassettes=cassettes)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f'[node]\nname = "n1"\nvar_dir = "{tmp_path / "var"}"\n')
    return path


def install(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> None:
    module = types.ModuleType("atmp.storage")
    module.AtmStore = lambda engine: registry  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "atmp.storage", module)


def test_the_registry_gives_keys_mac_and_cassettes(monkeypatch: pytest.MonkeyPatch, conf: Path) -> None:
    host = FakeHost({"ATM00001": new_tmk(), "ATM00002": new_tmk()})
    install(monkeypatch, Registry(host, mac=frozenset({"ATM00002"})))
    found = read_registry(conf, ["ATM00001", "ATM00002"])
    assert found["ATM00001"].tmk == host.tmks["ATM00001"] and not found["ATM00001"].mac and found["ATM00002"].mac
    assert found["ATM00002"].cassette_spec() == "1:2000:2000,2:5000:2000,3:1000:2000,4:10000:2000"
    assert host.tmks["ATM00001"] not in repr(found["ATM00001"])
    with pytest.raises(RegistryError, match="ATM00009 is not in the host's registry"):
        read_registry(conf, ["ATM00009"])


def test_without_the_atmp_the_registry_is_named_missing(monkeypatch: pytest.MonkeyPatch, conf: Path) -> None:
    monkeypatch.setitem(sys.modules, "atmp.storage", None)  # an installation without the ATMP's storage
    with pytest.raises(RegistryError, match="no ATMP terminal registry"):
        read_registry(conf, ["ATM00001"])


def test_check_compares_the_notes_per_cassette() -> None:
    def host(dispensed: int, retracted: int) -> HostTerminal:
        cassettes = (HostCassette(1, 2000, 100, dispensed, 0, retracted), HostCassette(2, 5000, 50, 0, 0, 0))
        return HostTerminal("ATM00001", "in_service", None, False, False, cassettes)

    cash = TerminalCash(Cassettes.parse("1:2000:90,2:5000:50"))
    cash.cassettes.take([7, 0, 0, 0])
    cash.cassettes.take([2, 0, 0, 0], retracted=True)
    before = {"ATM00001": host(10, 0)}
    agreed = check(before, {"ATM00001": host(17, 2)}, {"ATM00001": cash})
    assert agreed["agree"] and agreed["mismatches"] == []
    assert agreed["terminals"]["ATM00001"][0]["remaining"] == {"terminal": 81, "host": 81}
    wrong = check(before, {"ATM00001": host(19, 0)}, {"ATM00001": cash})
    assert not wrong["agree"] and wrong["mismatches"] == [
        "ATM00001 cassette 1: dispensed 7 at the terminal, 9 at the host",
        "ATM00001 cassette 1: retracted 2 at the terminal, 0 at the host",
    ]
    assert check(before, {}, {"ATM00001": cash})["mismatches"] == ["ATM00001: not in the host's registry"]


def run(port: int, conf: Path, *extra: str) -> Any:
    return CliRunner().invoke(sim, ["atm", "--port", str(port), "--conf", str(conf), "--terminals", "3",
                                    "--card", PAN, "--card", PAN2, "--count", "40", "--seed", "3", "--echo-every",
                                    "0", "--mix", "withdrawal=4,inquiry=1", "--no-take-rate", "0.3", *extra])


def test_check_host_agrees_when_the_host_counted_every_note(monkeypatch: pytest.MonkeyPatch, conf: Path,
                                                            tmp_path: Path) -> None:
    tmks = {"ATM00001": new_tmk(), "ATM00002": new_tmk(), "ATM00003": new_tmk()}
    host = FakeHost(tmks, mac=frozenset({"ATM00002"}))
    registry = Registry(host, mac=frozenset({"ATM00002"}), dukpt=frozenset({"ATM00003"}))
    install(monkeypatch, registry)
    report = tmp_path / "fleet.json"
    with host_thread(host) as port:
        result = run(port, conf, "--check-host", "--report", str(report))
    assert result.exit_code == 0, result.output
    # ATM00003 is a DUKPT terminal: left out; ATM00002 MACs, as its registry entry says.
    assert "ATM00003: a DUKPT terminal in the host's registry, left out" in result.output
    assert {str(m[41]) for m in host.of("0200")} == {"ATM00001", "ATM00002"}
    document = json.loads(report.read_text())
    assert document["mac"]["verified"] > 0 and document["mac"].get("bad", 0) == 0
    assert document["host_check"]["agree"] and document["dispense"]["retracted"] > 0
    assert "host check: 2 terminal(s): the host's cassette counts agree with the terminals'" in result.output
    assert registry.reads == 3 + 2  # each terminal before the run, the two simulated ones after it
    for secret in tmks.values():
        assert secret not in result.output and secret not in report.read_text()


def test_check_host_fails_on_a_mismatch(monkeypatch: pytest.MonkeyPatch, conf: Path) -> None:
    tmks = {"ATM00001": new_tmk(), "ATM00002": new_tmk(), "ATM00003": new_tmk()}
    host = FakeHost(tmks)
    install(monkeypatch, Registry(host, count_retracted=False))  # a host that counts retracted notes as dispensed
    with host_thread(host) as port:
        result = run(port, conf, "--check-host")
    assert result.exit_code == 1, result.output
    assert "mismatch(es) between the terminals' cash and the host's counts" in result.output
    assert "retracted" in result.output and "at the terminal," in result.output


def test_check_host_needs_the_hosts_configuration() -> None:
    result = CliRunner().invoke(sim, ["atm", "--port", "9", "--card", PAN, "--tmk", new_tmk(), "--check-host"])
    assert result.exit_code == 2 and "--check-host reads the host's counts: it needs --conf" in result.output
