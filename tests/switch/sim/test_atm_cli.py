"""``bulkhead sim atm`` against the fake ATM host on a loopback TCP port (in a thread of its own), and its argument
checks. The output names no card, PIN or key."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from switch.sim.cli import sim
from tests.switch.sim.atmhost import FakeHost, new_tmk

PAN, PAN2 = "4761730010000019", "4761730110000026"


@contextmanager
def host_thread(host: FakeHost) -> Iterator[int]:
    ready: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.CancelScope]] = queue.Queue()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, host.handle, 0)
            ready.put((listeners[0].socket.getsockname()[1], trio.lowlevel.current_trio_token(),
                       nursery.cancel_scope))

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    port, token, scope = ready.get(timeout=10)
    try:
        yield port
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(timeout=10)


@pytest.fixture
def tmks(tmp_path: Path) -> tuple[dict[str, str], Path]:
    keys = {"ATM00001": new_tmk(), "ATM00002": new_tmk()}
    path = tmp_path / "tmks.txt"
    path.write_text("".join(f"{tid} {tmk}\n" for tid, tmk in keys.items()))
    return keys, path


def test_a_fleet_run_prints_a_masked_summary_and_writes_its_report(tmks: tuple[dict[str, str], Path],
                                                                    tmp_path: Path) -> None:
    keys, path = tmks
    host = FakeHost(keys)
    report = tmp_path / "fleet.json"
    with host_thread(host) as port:
        result = CliRunner().invoke(sim, [
            "atm", "--port", str(port), "--terminals", "2", "--count", "30", "--tmk-file", str(path),
            "--card", PAN, "--card", PAN2, "--seed", "5", "--echo-every", "0", "--partial-rate", "0.2",
            "--report", str(report)])
    assert result.exit_code == 0, result.output
    out = result.output
    for secret in (PAN, PAN2, *keys.values()):
        assert secret not in out and secret not in report.read_text()
    document = json.loads(report.read_text())
    requests = sum(n for codes in document["requests"].values() for n in codes.values())
    assert requests == 30 and len(host.of("0200")) == 30
    assert document["key_exchanges"] == {"installed": 2} and document["advices"]["left"] == 0
    withdrawals = document["requests"]["withdrawal"]["00"]
    assert sum(document["dispense"].values()) == withdrawals == len(host.approved)
    assert document["advices"]["answers"] == {"0230 00": document["dispense"].get("dispensed", 0),
                                              "0430 00": withdrawals - document["dispense"].get("dispensed", 0)}
    assert set(document["cash"]) == {"ATM00001", "ATM00002"}
    assert f"  withdrawal 00: {withdrawals};" in out
    assert "2 terminal(s)" in out and "key exchanges installed: 2" in out and "still owed 0" in out
    assert "ATM00001 1:" in out and "ATM00002 1:" in out


def test_a_host_without_atmp_is_named(tmks: tuple[dict[str, str], Path]) -> None:
    keys, path = tmks
    with host_thread(FakeHost(keys, no_keys=True)) as port:
        result = CliRunner().invoke(sim, ["atm", "--port", str(port), "--tmk-file", str(path), "--card", PAN,
                                          "--count", "1"])
    assert result.exit_code == 1
    assert "no terminal is in service: key exchange answered 00 without keys (a host without an ATMP?)" in \
        result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--mix", "withdrawal=1,cash=2"], "--mix"),
    (["--cassettes", "1:2000"], "--cassettes"),
    (["--pin", "12"], "--pin"),
    (["--partial-rate", "0.6", "--no-take-rate", "0.6"], "partial and no-take rates add up to more than 1"),
    (["--amounts", "20,x"], "--amounts"),
    (["--terminal-prefix", "ATM-"], "terminal prefix"),
    (["--terminals", "2", "--tmk-file", "{tmks}"], "no TMK for terminal ATM00002"),
], ids=["mix", "cassettes", "pin", "rates", "amounts", "prefix", "tmk-missing"])
def test_bad_arguments_are_named(args: list[str], message: str, tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text(f"ATM00001 {new_tmk()}\n")
    base = ["atm", "--port", "9", "--card", PAN, "--count", "1"]
    if "--tmk-file" not in args:
        base += ["--tmk", new_tmk()]
    result = CliRunner().invoke(sim, base + [a.replace("{tmks}", str(path)) for a in args])
    assert result.exit_code in (1, 2) and message in result.output, result.output


def test_cards_and_keys_are_required() -> None:
    result = CliRunner().invoke(sim, ["atm", "--port", "9", "--tmk", new_tmk(), "--count", "1"])
    assert result.exit_code == 2 and "the fleet needs cards" in result.output
    result = CliRunner().invoke(sim, ["atm", "--port", "9", "--card", PAN, "--count", "1"])
    assert result.exit_code == 2 and "--tmk" in result.output
    result = CliRunner().invoke(sim, ["atm", "--port", "9", "--card", PAN, "--tmk", "U" + "0" * 32])
    assert result.exit_code == 1 and "not a terminal master key under the test LMK" in result.output


def test_nothing_listening_ends_after_the_start_timeout() -> None:
    from bench.ports import free_port

    result = CliRunner().invoke(sim, ["atm", "--port", str(free_port()), "--card", PAN, "--tmk", new_tmk(),
                                      "--count", "1", "--start-timeout", "0.5"])
    assert result.exit_code == 1 and "no terminal is in service: not in service in time" in result.output
