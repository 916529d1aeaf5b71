"""The benchmark harness: its response walker and request templates against the scheme's codec, and a short
end-to-end run of a non-financial scenario against a real node process (in-node issuer simulator)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench import report as bench_report
from bench.harness import Options, field_plan, run_scenario, templates_for
from bench.loadgen import _Walker
from bench.phases import percentile
from bench.scenarios import SCENARIOS
from schemes.generic import SCHEME
from switch.model.message import Message


def test_walker_reads_stan_and_code_like_the_codec() -> None:
    walker = _Walker(field_plan())
    request = SCENARIOS["mixed"].mix[1].build("TERM0001", time.gmtime(0), None)
    request[11], request[37] = "004217", "000000000042"
    response = SCHEME.make_response(request, "51")
    response[38] = "A1B2C3"
    response[54] = "1002840C000000200000"  # variable length (LLLVAR) after 39: must not matter
    response[55] = bytes(range(40))
    stan, code = walker.read(SCHEME.encode(response))
    assert (stan, code) == (b"004217", b"51")
    # A secondary bitmap (field 70 of an 0810) moves every field by 8 bytes.
    echo = SCHEME.make_response(Message("0800", {7: "1122101010", 11: "000777", 70: "301"}), "00")
    assert walker.read(SCHEME.encode(echo)) == (b"000777", b"00")


def test_templates_patch_stan_and_rrn_in_place() -> None:
    templates = templates_for(SCENARIOS["mixed"], "BN000001", time.gmtime(0))
    assert len(templates) == 10  # weights 6:3:1
    for template in templates:
        frame = bytearray(template.frame)
        frame[template.stan_at:template.stan_at + 6] = b"123456"
        if template.rrn_at is not None:
            frame[template.rrn_at:template.rrn_at + 12] = b"000000000099"
        assert int.from_bytes(frame[:2], "big") == len(frame) - 2
        msg = SCHEME.decode(bytes(frame[2:]))
        assert msg.stan == "123456"
        assert msg.get(37) == ("000000000099" if template.rrn_at is not None else None)
        assert msg.mti == "0800" or msg.terminal_id == "BN000001"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 99) == 0.0


def test_short_nonfinancial_run_through_a_node(tmp_path: Path) -> None:
    scenario = SCENARIOS["nonfin-balance"]
    options = Options(duration=2.0, warmup=0.5, connections=2, inflight=8, issuer="in-node", drain=3.0)
    result = run_scenario(scenario, options)

    saved = bench_report.save([result], folder=tmp_path)
    document = json.loads(saved.read_text())
    (entry,) = document["scenarios"]
    assert set(entry) >= {"scenario", "interpreter", "parameters", "tps", "codes", "latency_ms", "cpu_percent",
                          "journal_rows", "timeouts", "errors"}
    assert set(entry["latency_ms"]) == {"p50", "p95", "p99", "max", "mean"}
    assert entry["tps"] > 0
    assert entry["codes"] and set(entry["codes"]) <= scenario.expected_codes
    assert entry["timeouts"] == entry["errors"] == entry["unmatched"] == 0
    assert 0 < entry["latency_ms"]["p50"] <= entry["latency_ms"]["p99"] <= entry["latency_ms"]["max"]
    assert {"node", "generator-0"} <= set(entry["cpu_percent"])
    # Durable journal: every request sent (and the readiness probe) left a row.
    assert entry["journal_rows"] >= entry["sent"]
    assert "nonfin-balance" in bench_report.format_table([result])


def test_each_network_scenario_sends_purchases_over_its_network_and_back(tmp_path: Path) -> None:
    """net-visa and net-unionpay: the node's connector and the issuer simulator speak the network (BASE I header and
    BCD/EBCDIC; the 46-byte CUPS header), and every purchase comes back 00, journaled."""
    for name in ("net-visa", "net-unionpay"):
        folder = tmp_path / name
        report = run_scenario(SCENARIOS[name], Options(duration=1.0, warmup=0.5, connections=2, inflight=4,
                                                       folder=str(folder)))
        assert report.answered > 0 and report.codes == {"00": report.codes["00"]} and not report.errors
        node_toml = (folder / "node.toml").read_text()
        assert f'scheme = "{name[4:]}"' in node_toml
        assert report.journal_rows is not None and report.journal_rows >= report.answered
