"""The ``atm-fleet`` benchmark scenario (bench/atmfleet.py): skipped with its reason on a node without an ATMP
(detected by what the installation and the node can do), the fleet file it registers, the host probe, how the
fleet's report becomes the scenario's figures and what it flags; and, on a node with an ATMP, a short run."""

from __future__ import annotations

import socket
import threading
import tomllib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench import atmfleet as bench_fleet
from bench import report as bench_report
from bench.harness import Options, Report, _merge_fleet, run_scenario
from bench.procs import BenchError, BenchSkipped
from bench.scenarios import DEFAULT_ORDER, SCENARIOS, FleetLoad
from switch.contracts.registry import network
from switch.sim.atmcash import Cassettes
from switch.sim.atmreport import FleetReport, TerminalCash
from switch.wire.framing import LengthFraming

ATM = network("atm")


def test_the_fleet_scenario_is_part_of_make_bench() -> None:
    assert "atm-fleet" in DEFAULT_ORDER and SCENARIOS["atm-fleet"].fleet == FleetLoad()


def test_a_node_without_atmp_skips_the_scenario_with_its_reason(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    from switch.cli import main

    monkeypatch.setattr(main, "COMMANDS", {k: v for k, v in main.COMMANDS.items() if k != "atm"})
    folder = tmp_path / "run"
    with pytest.raises(BenchSkipped, match="no ATMP yet"):
        run_scenario(SCENARIOS["atm-fleet"], Options(duration=1.0, folder=str(folder)))
    assert not folder.exists()  # nothing was set up or started


def test_the_fleet_file() -> None:
    document = tomllib.loads(bench_fleet.fleet_toml(8, FleetLoad(mac_every=4)))
    terminals = document["terminals"]
    assert [t["id"] for t in terminals] == [f"ATM{n:05d}" for n in range(1, 9)]
    assert [t["mac"] for t in terminals] == [False, False, False, True] * 2
    for t in terminals:
        assert t["cassettes"] == ["1:20.00:9999", "2:50.00:9999", "3:10.00:9999", "4:100.00:9999"]
        assert t["owner"] == "own" and t["currency"] == "840" and len(t["tmk_components"]) == 2
        for component in t["tmk_components"]:
            key = bytes.fromhex(component)
            assert len(key) == 16 and all(bin(b).count("1") % 2 == 1 for b in key)  # odd parity, as key sheets
    assert len({c for t in terminals for c in t["tmk_components"]}) == 16  # every component random


def test_the_listener_gets_the_atm_processor(tmp_path: Path) -> None:
    conf = tmp_path / "node.toml"
    conf.write_text('[[listeners]]\nname = "acquirer"\n\n[[listeners]]\nname = "atm"\nport = 0\n')
    bench_fleet.enable_atmp(conf)
    assert conf.read_text().endswith('[[listeners]]\nname = "atm"\natmp = true\nport = 0\n')
    conf.write_text('[[listeners]]\nname = "acquirer"\n')
    with pytest.raises(BenchError, match="no ATM listener"):
        bench_fleet.enable_atmp(conf)


@contextmanager
def one_answer(de48: str | None, code: str = "00") -> Iterator[int]:
    """A port that answers one key exchange with ``code`` and DE 48."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            framer = LengthFraming("binary2").framer()
            while (frame := framer.next_frame()) is None:
                framer.receive_data(conn.recv(65536))
            request = ATM.decode(frame.body)
            answer = ATM.make_response(request, code)
            if de48 is not None:
                answer[48] = de48
            conn.sendall(framer.encode(ATM.encode(answer)))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        thread.join(5)
        server.close()


def test_the_host_probe() -> None:
    with one_answer(None) as port, pytest.raises(BenchSkipped, match="without keys: it has no ATMP host side"):
        bench_fleet.probe_host(port)
    with one_answer(None, "58") as port, pytest.raises(BenchError, match="refused ATM00001's key exchange: 58"):
        bench_fleet.probe_host(port)
    keys = "TPK" + "U" + "A" * 32 + "ABCDEF" + "TAK" + "U" + "B" * 32 + "123456"
    with one_answer(keys) as port:
        bench_fleet.probe_host(port)


def fleet_document(*, agree: bool = True, left: int = 0) -> dict[str, object]:
    report = FleetReport(terminals=2)
    report.requests.update({("withdrawal", "00"): 30, ("withdrawal", "51"): 1, ("inquiry", "00"): 6})
    report.timeouts["inquiry"] = 1
    report.dispense.update({"dispensed": 27, "partial": 2, "retracted": 1})
    report.advices_sent.update({"0220": 27, "0420": 3})
    report.advice_answers.update({("0230", "00"): 27, ("0430", "00"): 3})
    report.key_exchanges["installed"] = 2
    report.measured.update({"00": 30, "51": 1})
    report.window_s = 2.0
    report.latencies["withdrawal"] = [0.002, 0.004]
    report.saf_left = left
    report.cash["ATM00001"] = TerminalCash(Cassettes.parse("1:2000:100"))
    report.host_check = {"agree": agree, "summary": "ok" if agree else "1 mismatch(es)",
                         "mismatches": [] if agree else ["ATM00001 cassette 1: dispensed 3 at the terminal, 4 at "
                                                         "the host"], "terminals": {}}
    return report.to_json()


def test_the_fleets_report_becomes_the_scenarios_figures() -> None:
    scenario = SCENARIOS["atm-fleet"]
    report = Report("atm-fleet", "", "", {}, {}, "")
    _merge_fleet(report, fleet_document(), scenario)
    assert (report.sent, report.answered, report.tps) == (37, 31, 15.5)
    assert report.codes == {"00": 30, "51": 1} and report.unexpected_codes == {"51": 1}
    assert report.timeouts == 1 and report.cell_approvals == 27  # confirmed, never reversed
    assert report.codes_by_mix == {"inquiry": {"00": 6}, "withdrawal": {"00": 30, "51": 1}}
    assert report.latency_ms["max"] == 4.0
    assert bench_report.fleet_problems(report.fleet) == []
    flagged = bench_report.fleet_problems(fleet_document(agree=False, left=2))
    assert flagged[0].startswith("host check: 1 mismatch(es): ATM00001 cassette 1: dispensed 3 at the terminal")
    assert flagged[1] == "2 advice(s) still owed to the host after the drain"


def test_a_short_fleet_run_through_a_node_with_atmp(tmp_path: Path) -> None:
    """The whole path, on a node with the ATMP (its registry, its host side on the ATM port): every terminal keyed
    and in service, the withdrawals approved by the cells and posted, every advice recorded, the host's cassette
    counts equal to the terminals'."""
    options = Options(duration=2.0, warmup=0.5, connections=4, cells=2, cards=20, folder=str(tmp_path / "run"))
    try:
        result = run_scenario(SCENARIOS["atm-fleet"], options)
    except BenchSkipped as exc:
        pytest.skip(f"needs a node with an ATMP: {exc}")
    fleet = result.fleet
    assert result.answered > 0 and result.codes == {"00": result.codes["00"]}, result.codes
    assert fleet["key_exchanges"]["installed"] >= 4 and fleet["refused_terminals"] == 0
    assert Counter(fleet["dispense"])["dispensed"] > 0
    assert fleet["host_check"]["agree"], fleet["host_check"]["mismatches"]
    assert bench_report.problems(result) == []
