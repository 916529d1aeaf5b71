"""``bulkhead sim``: the acquirer command against an issuer running in a background thread, and argument
checks. Output must show masked PANs only."""

from __future__ import annotations

import functools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from bench.ports import free_port
from switch.sim.cli import sim
from switch.sim.issuer import IssuerConfig, IssuerStats, serve_issuer
from switch.sim.rules import IssuerRules, Rule
from switch.wire.framing import LengthFraming

PAN = "4761739001010010"


@pytest.fixture
def issuer_port() -> Iterator[int]:
    """An issuer simulator (binary2 + TPDU framing) in its own thread and trio loop."""
    with _issuer_thread(IssuerConfig(framing=LengthFraming("binary2", tpdu=True))) as (port, _):
        yield port


@contextmanager
def _issuer_thread(config: IssuerConfig) -> Iterator[tuple[int, IssuerStats]]:
    ready: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.CancelScope]] = queue.Queue()
    stats = IssuerStats()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(functools.partial(serve_issuer, config, stats=stats))
            ready.put((port, trio.lowlevel.current_trio_token(), nursery.cancel_scope))

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    port, token, scope = ready.get(timeout=10)
    try:
        yield port, stats
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(timeout=10)


def test_acquirer_command_prints_masked_responses_and_summary(issuer_port: int) -> None:
    result = CliRunner().invoke(sim, [
        "acquirer", "--port", str(issuer_port), "--framing", "binary2", "--framing-opt", "tpdu=true",
        "--count", "5", "--inflight", "2", "--pan", PAN, "--amount", "2500", "--verbose",
    ])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum(line.startswith("#") and " 0210 " in line for line in lines) == 5
    assert "2=476173******0010" in result.output
    assert PAN not in result.output
    assert "4=000000002500" in result.output
    assert "sent 5, answered 5, timeouts 0, late 0, unmatched 0, errors 0" in result.output
    assert "response codes: 00: 5" in result.output
    assert "TPS" in result.output and "p99" in result.output


def test_acquirer_command_with_request_file(issuer_port: int, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"mti": "0800", "fields": {"70": "301"}}\n', encoding="utf-8")
    result = CliRunner().invoke(sim, [
        "acquirer", "--port", str(issuer_port), "--framing-opt", "tpdu=true", "--file", str(path),
        "--count", "3",
    ])
    assert result.exit_code == 0, result.output
    assert "sent 3, answered 3" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pan", "41111"], "12 to 19 digits"),
        (["--mti", "0210"], "request MTI"),
        (["--processing-code", "00"], "6 digits"),
        (["--framing-opt", "tpdu"], "KEY=VALUE"),
        (["--framing-opt", "tpud=true"], "did you mean 'tpdu'"),
        (["--framing", "visa"], "framing 'visa' does not belong to network 'generic'"),
        (["--framing", "ascii4", "--framing-opt", "tpdu=true"], "does not apply"),
        (["--scheme", "nosuch"], "unknown network 'nosuch'"),
    ],
)
def test_acquirer_command_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sim, ["acquirer", "--port", "9", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_acquirer_command_unreachable_port() -> None:
    result = CliRunner().invoke(sim, ["acquirer", "--port", str(free_port())])  # reserved: nobody listens
    assert result.exit_code == 1
    assert "cannot connect" in result.output


def test_issuer_command_rejects_a_bad_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[[rules]]\naction = 'approve'\n", encoding="utf-8")
    result = CliRunner().invoke(sim, ["issuer", "--port", "0", "--rules", str(rules)])
    assert result.exit_code == 1
    assert "rules[0].action" in result.output


SHARED_TPK = "U368B05F7FA768FA59B4B236B955BDBE2"  # a listener's terminal key under the test LMK (KCV CC2471)


def _shared_key_demo(tmp_path: Path) -> Path:
    """The demo configuration with its ATM listener on a shared terminal key (``pin_key``) instead of the ATM
    processor: the listeners ``sim acquirer --atm --test-card`` forms PIN blocks for (the benchmark's nodes)."""
    import shutil

    demo = tmp_path / "demo"
    shutil.copytree(Path(__file__).resolve().parents[3] / "conf" / "demo", demo)
    node = demo / "node.toml"
    node.write_text(node.read_text().replace("atmp = true", f'pin_key = {{ type = "TPK", key = "{SHARED_TPK}" }}'))
    return demo


def test_test_card_comes_from_the_demo_configuration(tmp_path: Path) -> None:
    """``--test-card conf/demo``: the card's track 2 (CVV from its product's CVK) and its PIN block under the ATM
    listener's terminal key, both read through the node's configuration (its [cells] catalogue)."""
    from switch.sim.cli import _test_card

    demo = _shared_key_demo(tmp_path)
    track2, block = _test_card(demo, 8584, "4761730010000019", "3012", "1234")
    assert track2.startswith("4761730010000019=3012") and isinstance(block, bytes) and len(block) == 8
    _, no_pin = _test_card(demo, 8584, "4761730010000019", "3012", None)
    assert no_pin is None


def test_ctrl_c_prints_the_summary_so_far() -> None:
    rules = IssuerRules(rules=(Rule("drop", bin="4222220000000000"),))
    with _issuer_thread(IssuerConfig(rules=rules)) as (port, stats):
        run = subprocess.Popen(
            [sys.executable, "-m", "switch.cli", "sim", "acquirer", "--port", str(port), "--count", "5",
             "--inflight", "3", "--pan", "4222220000000000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 30
            while stats.received["0200"] < 3 and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.05)
            assert stats.received["0200"] == 3  # three in flight, never answered (the default timeout is 30 s)
            run.send_signal(signal.SIGINT)
            out, err = run.communicate(timeout=20)
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode == 130, err
    assert "interrupted after" in out and "3 request(s) in flight not answered" in out
    assert "sent 3, answered 0, timeouts 0, late 0, unmatched 0, errors 0" in out
    assert "Traceback" not in err


def test_count_and_duration_are_a_usage_error() -> None:
    result = CliRunner().invoke(sim, ["acquirer", "--port", "9", "--count", "2", "--duration", "1"])
    assert result.exit_code == 2 and "give --count or --duration, not both" in result.output


def test_framing_options_read_numbers_as_numbers_and_quoted_digits_as_text() -> None:
    from schemes.visa.link import VisaLink
    from switch.sim.cli import _framing

    visa = _framing("visa", "visa", ('source_station="400000"', 'destination_station="123456"', "max_frame=4096"))
    assert isinstance(visa, VisaLink)
    framing = visa.framing
    assert (framing.source_station, framing.destination_station, framing.max_frame) == ("400000", "123456", 4096)


def test_test_card_of_another_bank_has_a_pin_block_under_the_atm_key(tmp_path: Path) -> None:
    """A foreign demo card (VISA 4000000000000002, UnionPay 6250946000000016) has no product in the catalogue: its
    track 2 carries CVV 000 and its PIN block is the documented demo PIN under the ATM listener's TPK."""
    from hsm.testing import TestPinPad
    from switch.sim.cli import _test_card

    demo = _shared_key_demo(tmp_path)
    tpk = SHARED_TPK
    for pan in ("4000000000000002", "6250946000000016"):
        track2, block = _test_card(demo, 8584, pan, "3012", "1234")
        assert track2 == f"{pan}=3012201" + "0" * 13  # PVKI 0, PVV 0000, CVV 000, padding
        assert block == TestPinPad().pin_block("TPK", tpk, "1234", pan)  # ISO format 0: one block per PIN and PAN


@pytest.mark.parametrize(("args", "reason"), [
    (["--zmk", "U00"], "not a zone master key under the test LMK"),
    (["--key-every", "60"], "needs the zmk"),
    (["--option", "nk_check_value_bytes=2"], "nk_check_value_bytes"),
])
def test_sim_network_refuses_bad_key_settings_before_listening(args: list[str], reason: str) -> None:
    result = CliRunner().invoke(sim, ["network", "unionpay", "--port", "0", *args])
    assert result.exit_code == 2
    assert reason in result.output
