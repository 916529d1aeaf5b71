"""The benchmark harness: its response walker and request templates against the scheme's codec, and a short
end-to-end run of a non-financial scenario against a real node process (in-node issuer simulator)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from bench import report as bench_report
from bench.harness import Options, _setup_foreign, field_plan, run_scenario, templates_for
from bench.loadgen import _Walker
from bench.phases import percentile
from bench.scenarios import SCENARIOS
from processors.cardnumber import luhn_valid
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


def test_network_scenarios_send_foreign_cards_as_the_acquirer_simulator_builds_them() -> None:
    """net-visa's and net-unionpay's requests are ATM withdrawals (ATM scheme, 0200/010000, DE 18 6011, DE 22 021)
    on the network's BIN, the first card the demo's, with the track 2 and PIN block (the demo PIN under the ATM
    listener's TPK) that ``bulkhead sim acquirer --atm --test-card conf/demo`` builds for that card."""
    from schemes.atm import SCHEME as ATM_SCHEME
    from switch.sim.cards import test_card

    demo_products = Path(__file__).resolve().parents[2] / "conf" / "demo" / "products.toml"
    for name, first in (("net-visa", "4000000000000002"), ("net-unionpay", "6250946000000016"),
                        ("net-mastercard", "5413330000000019"), ("net-amex", "371449635398431")):
        scenario = SCENARIOS[name]
        keys, cards = _setup_foreign(scenario)
        assert cards[0].pan == first and len({c.pan for c in cards}) == len(cards) > 1
        assert all(c.pan[:6] == first[:6] and luhn_valid(c.pan) for c in cards)
        templates = templates_for(scenario, "BN000001", time.gmtime(0), cards=cards)
        assert len(templates) == len(cards)
        for template, card in zip(templates, cards, strict=True):
            msg = ATM_SCHEME.decode(template.frame[2:])
            assert (msg.mti, msg[3], msg[18], msg[22]) == ("0200", "010000", "6011", "021")
            demo = test_card(demo_products, card.pan, "3012", pin="1234", tpk=keys.tpk)
            assert (msg[35], msg[52]) == (demo.track2, demo.pin_block)


def test_each_network_scenario_sends_foreign_atm_withdrawals_over_its_network_and_back(tmp_path: Path) -> None:
    """net-visa and net-unionpay: ATM withdrawals with PIN on other banks' cards of the network come in on the node's
    ATM listener, and the node's connector and the issuer simulator speak the network (BASE I header and BCD/EBCDIC;
    the 46-byte CUPS header). Every withdrawal comes back 00, journaled as a withdrawal from the ATM listener to the
    network link; the PIN block went out translated to the link's zone key (without it the node answers 96)."""
    for name, bin_ in (("net-visa", "400000"), ("net-unionpay", "625094"), ("net-mastercard", "541333"),
                       ("net-amex", "371449")):
        folder = tmp_path / name
        report = run_scenario(SCENARIOS[name], Options(duration=1.0, warmup=0.5, connections=2, inflight=4,
                                                       folder=str(folder)))
        assert report.answered > 0 and report.codes == {"00": report.codes["00"]} and not report.errors
        node_toml = (folder / "node.toml").read_text()
        assert f'scheme = "{name[4:]}"' in node_toml
        assert 'pin_key = { type = "ZPK"' in node_toml and 'pin_key = { type = "TPK"' in node_toml
        assert report.journal_rows is not None and report.journal_rows >= report.answered
        with sqlite3.connect(folder / "var" / "bulkhead.db") as con:
            rows = con.execute("SELECT source_link, destination, mti_in, processing_code, response_code, "
                               "substr(pan_masked, 1, 6), count(*) FROM journal GROUP BY 1, 2, 3, 4, 5, 6").fetchall()
        # Every exchange (the readiness probe too) is a withdrawal of a foreign card, approved by the network.
        assert {row[:6] for row in rows} == {("atm", "issuer", "0200", "010000", "00", bin_)}
        assert sum(row[6] for row in rows) == report.journal_rows
