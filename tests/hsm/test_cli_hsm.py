"""``bulkhead keys ...`` and ``bulkhead hsm serve``: what they print, what they store, what they refuse.

The last test runs ``hsm serve`` as a real process, drives PIN, CVV and MAC commands through it over TCP, stops
it with SIGINT and scans everything the process printed (and everything the CLI printed) for clear keys,
PINs, clear PIN blocks and PANs: none may appear.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner, Result

from hsm import pinblock
from hsm.cipher import force_odd_parity, tdes_encrypt
from hsm.cli import hsm_group, keys_group
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import write_test_lmk
from hsm.software import SoftwareHsm
from hsm.thales.backend import ThalesBackend
from hsm.thales.client import ClientConfig, open_thales_client
from hsm.thales.profile import DEFAULT_PROFILE
from tests.hsm.test_thales_support import LMK

CODEC = KeyCodec(LMK)
HSM = SoftwareHsm(LMK)
ZMK = "U0A26760BD07871026B6702C5F9BA25B3"  # clear 0808..08 under the Thales test LMK, KCV D6A875
ZMK_CLEAR = "08080808080808080808080808080808"
CRYPTOGRAM = re.compile(r"under (?:LMK|ZMK): (\S+)")


def run(*args: str) -> Result:
    """``bulkhead keys ARGS`` on the public test LMK (``--test-lmk`` unless the test gives ``--lmk``)."""
    lmk = [] if "--lmk" in args else ["--test-lmk"]
    return CliRunner().invoke(keys_group, [*args, *lmk], catch_exceptions=False)


def printed_cryptograms(result: Result) -> list[str]:
    return CRYPTOGRAM.findall(result.output)


def clear_hex(code: str, cryptogram: str) -> str:
    return CODEC.from_lmk(code, cryptogram).value.hex().upper()


def test_generate_prints_cryptogram_and_kcv_only(tmp_path: Path) -> None:
    result = CliRunner().invoke(keys_group, ["generate", "--type", "ZPK", "--test-lmk"])
    assert result.exit_code == 0, result.output
    (under_lmk,) = printed_cryptograms(result)
    assert under_lmk.startswith("U") and len(under_lmk) == 33
    kcv = re.search(r"KCV:\s+([0-9A-F]{6})", result.output)
    assert kcv and HSM.key_check_value("001", under_lmk) == kcv.group(1)
    assert clear_hex("001", under_lmk) not in result.output
    assert "TEST LMK" in result.output  # the warning (stderr is mixed into output by CliRunner)


def test_generate_under_zmk_then_import_and_export_agree(tmp_path: Path) -> None:
    made = run("generate", "--type", "001", "--zmk", ZMK, "--zmk-scheme", "X")
    under_lmk, under_zmk = printed_cryptograms(made)
    assert under_zmk.startswith("X")
    imported = run("import", "--type", "001", "--zmk", ZMK, "--key", under_zmk)
    assert printed_cryptograms(imported)[0] and HSM.key_check_value("001", printed_cryptograms(imported)[0]) \
        == HSM.key_check_value("001", under_lmk)
    exported = run("export", "--type", "001", "--zmk", ZMK, "--key", under_lmk, "--scheme", "X")
    assert printed_cryptograms(exported) == [under_zmk]
    for result in (made, imported, exported):
        assert clear_hex("001", under_lmk) not in result.output and ZMK_CLEAR not in result.output


def test_tr31_export_and_import(tmp_path: Path) -> None:
    made = run("generate", "--type", "ZPK")
    (key,) = printed_cryptograms(made)
    block = printed_cryptograms(run("export", "--type", "ZPK", "--zmk", ZMK, "--key", key, "--scheme", "R",
                                    "--tr31-version", "B"))[0]
    assert block.startswith("RB")
    back = run("import", "--type", "ZPK", "--zmk", ZMK, "--key", block)
    assert HSM.key_check_value("001", printed_cryptograms(back)[0]) == HSM.key_check_value("001", key)


def test_key_store_label_list_and_kcv(tmp_path: Path) -> None:
    store = tmp_path / "keys.json"
    run("generate", "--type", "ZMK", "--label", "bank-zmk", "--store", str(store))
    run("generate", "--type", "CVK", "--label", "cvk-1", "--store", str(store))
    data = json.loads(store.read_text())
    assert data["format"] == "bulkhead-keystore/1" and stat.S_IMODE(store.stat().st_mode) == 0o600
    assert data["lmk_check_value"] == HSM.diagnostics().lmk_check_value[:6]
    assert [sorted(k) for k in data["keys"]] == [["cryptogram", "kcv", "key_type", "label"]] * 2
    entries = {k["label"]: k for k in data["keys"]}
    assert entries["cvk-1"]["key_type"] == "402"
    listing = run("list", "--store", str(store))
    for entry in entries.values():
        assert entry["cryptogram"] in listing.output and entry["kcv"] in listing.output
        assert clear_hex(entry["key_type"], entry["cryptogram"]) not in listing.output + store.read_text()
    kcv = run("kcv", "--type", "000", "--label", "bank-zmk", "--store", str(store))
    assert kcv.output.strip().splitlines()[-1] == entries["bank-zmk"]["kcv"]
    full = run("kcv", "--type", "000", "--label", "bank-zmk", "--full", "--store", str(store))
    assert full.output.strip().splitlines()[-1].startswith(entries["bank-zmk"]["kcv"])


def test_a_label_in_use_is_refused_unless_replace_is_given(tmp_path: Path) -> None:
    store = tmp_path / "keys.json"
    made = run("generate", "--type", "ZPK", "--zmk", ZMK, "--label", "partner-zpk", "--store", str(store))
    assert made.exit_code == 0 and "stored as 'partner-zpk'" in made.output
    before = store.read_bytes()
    kcv = json.loads(before)["keys"][0]["kcv"]
    for args in (("generate", "--type", "ZPK"), ("import", "--type", "ZPK", "--zmk", ZMK,
                                                "--key", printed_cryptograms(made)[1])):
        again = CliRunner().invoke(keys_group, [*args, "--label", "partner-zpk", "--store", str(store),
                                                "--test-lmk"])
        assert again.exit_code == 1
        assert f"a key labelled 'partner-zpk' exists already (type 001, KCV {kcv}); nothing was changed; " \
               "give --replace to replace it" in again.output
        assert "under LMK" not in again.output  # refused before the HSM made or imported anything
        assert store.read_bytes() == before
    replaced = run("generate", "--type", "ZPK", "--label", "partner-zpk", "--replace", "--store", str(store))
    assert replaced.exit_code == 0 and f"replaced 'partner-zpk' in {store} (the old key's KCV was {kcv})" \
        in replaced.output
    (entry,) = json.loads(store.read_text())["keys"]
    assert entry["cryptogram"] == printed_cryptograms(replaced)[0] and entry["kcv"] != kcv
    lonely = CliRunner().invoke(keys_group, ["generate", "--type", "ZPK", "--replace", "--test-lmk"])
    assert lonely.exit_code == 2 and "--replace needs --label" in lonely.output


def test_reference_zmk_kcv() -> None:
    assert run("kcv", "--type", "ZMK", "--key", ZMK).output.strip().splitlines()[-1] == "D6A875"


def test_lmk_file_permissions_are_enforced(tmp_path: Path) -> None:
    lmk = write_test_lmk(tmp_path / "lmk.txt")
    ok = CliRunner().invoke(keys_group, ["kcv", "--type", "ZMK", "--key", ZMK, "--lmk", str(lmk)])
    assert ok.exit_code == 0 and ok.output.strip() == "D6A875" and "TEST LMK" not in ok.output
    os.chmod(lmk, 0o644)
    refused = CliRunner().invoke(keys_group, ["kcv", "--type", "ZMK", "--key", ZMK, "--lmk", str(lmk)])
    assert refused.exit_code != 0 and "0644" in refused.output and "chmod 600" in refused.output


def test_store_under_another_lmk_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "keys.json"
    run("generate", "--type", "ZPK", "--label", "z", "--store", str(store))
    other = tmp_path / "other-lmk.txt"
    text = write_test_lmk(tmp_path / "base.txt").read_text()
    other.write_text(text.replace("01010101010101017902CD1FD36EF8BA", "02020202020202027902CD1FD36EF8BA", 1))
    os.chmod(other, 0o600)
    refused = CliRunner().invoke(keys_group, ["list", "--store", str(store), "--lmk", str(other)])
    assert refused.exit_code != 0 and "another LMK" in refused.output


def test_usage_errors() -> None:
    bad_type = CliRunner().invoke(keys_group, ["generate", "--type", "FOO", "--test-lmk"])
    assert bad_type.exit_code == 2 and "001 (ZPK)" in bad_type.output
    both = CliRunner().invoke(keys_group, ["kcv", "--type", "ZPK", "--test-lmk"])
    assert both.exit_code != 0 and "--key or --label" in both.output
    hsm_error = CliRunner().invoke(keys_group, ["kcv", "--type", "ZPK", "--key", ZMK, "--test-lmk"])
    assert hsm_error.exit_code == 1 and "HSM error 10" in hsm_error.output


@pytest.mark.parametrize("args", [["kcv", "--type", "ZMK", "--key", ZMK], ["generate", "--type", "ZPK"], ["list"]])
def test_keys_need_an_explicit_lmk(args: list[str], tmp_path: Path) -> None:
    neither = CliRunner().invoke(keys_group, [*args, "--store", str(tmp_path / "k.json")])
    assert neither.exit_code == 2 and "--lmk FILE" in neither.output and "--test-lmk" in neither.output
    lmk = write_test_lmk(tmp_path / "lmk.txt")
    both = CliRunner().invoke(keys_group, [*args, "--store", str(tmp_path / "k.json"), "--lmk", str(lmk),
                                           "--test-lmk"])
    assert both.exit_code == 2 and "exactly one" in both.output
    assert not (tmp_path / "k.json").exists()


def test_serve_without_an_lmk_is_a_usage_error() -> None:
    # The port is taken, so a server that wrongly started would fail with "cannot listen" rather than hang.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = CliRunner().invoke(hsm_group, ["serve", "--port", str(taken.getsockname()[1])])
    assert result.exit_code == 2 and "--test-lmk" in result.output and "TEST LMK" not in result.output


def test_serve_help_lists_the_options() -> None:
    result = CliRunner().invoke(hsm_group, ["serve", "--help"])
    for option in ("--host", "--port", "--header-length", "--lmk", "--test-lmk", "--profile", "--idle-timeout",
                   "--max-connections"):
        assert option in result.output


# -------------------------------------------------------------------------------- full server run


SECRET_PIN = "90817263"
SECRET_PAN = "4000001234567899"
TPK_CLEAR = force_odd_parity(bytes.fromhex("3D9E5B7A1C2F4E6D8A0B1C2D3E4F5A6B"))
ZPK_CLEAR = force_odd_parity(bytes.fromhex("6B5A4F3E2D1C0B8A6D4E2F1C7A5B9E3D"))
CVK_CLEAR = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
CVV = "689"  # CVV of SECRET_PAN, expiry 2612, service code 101 under CVK_CLEAR (checked in _drive)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


def _secrets(clear_block: str) -> list[str]:
    return [SECRET_PIN, SECRET_PAN, clear_block, TPK_CLEAR.hex().upper(), ZPK_CLEAR.hex().upper(),
            CVK_CLEAR.hex().upper(), ZMK_CLEAR]


async def _drive(port: int) -> list[str]:
    """Exercise the server; return every value the switch would see (results, error texts)."""
    tpk = CODEC.to_lmk("002", ClearKey(TPK_CLEAR), "U")
    zpk = CODEC.to_lmk("001", ClearKey(ZPK_CLEAR), "U")
    cvk = CODEC.to_lmk("402", ClearKey(CVK_CLEAR), "U")
    block = tdes_encrypt(TPK_CLEAR, pinblock.encode(0, SECRET_PIN, SECRET_PAN)).hex().upper()
    seen: list[str] = []
    async with open_thales_client(ClientConfig("127.0.0.1", port)) as client:
        hsm = ThalesBackend(client, DEFAULT_PROFILE, timeout=5)
        out = await hsm.translate_pin_tpk_to_zpk(tpk, zpk, block, SECRET_PAN)
        seen.append(repr(out))
        cvv = await hsm.generate_cvv(cvk, SECRET_PAN, "2612", "101")
        assert cvv == CVV and await hsm.verify_cvv(cvk, SECRET_PAN, "2612", "101", cvv)
        seen.append(await hsm.generate_mac("003", CODEC.to_lmk("003", ClearKey(CVK_CLEAR), "U"), b"msg"))
        for bad in (lambda: hsm.translate_pin_tpk_to_zpk(zpk, tpk, block, SECRET_PAN),
                    lambda: hsm.verify_pin_pvv("002", tpk, cvk, block, "01", SECRET_PAN, 1, "1234")):
            try:
                await bad()
            except Exception as exc:  # collecting error texts to scan them
                seen.append(f"{exc!r} {exc}")
        # Garbage on a raw connection: the server logs it.
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"\x00\x20" + b"0001CC" + SECRET_PAN.encode() + b"X" * 10)
        await stream.receive_some(100)
        await stream.aclose()
    return seen


def _standalone(number: str, text: str) -> list[str]:
    """Lines where ``number`` appears as a number of its own, log timestamps (``,mmm`` milliseconds) removed."""
    pattern = re.compile(rf"(?<![0-9A-Za-z]){number}(?![0-9A-Za-z])")
    return [line for line in text.splitlines() if pattern.search(TIMESTAMP.sub("", line))]


def test_full_server_run_prints_no_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the client's own log lines are scanned too
    code = "from hsm.cli import hsm_group; hsm_group()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", "0", "--log-level", "debug", "--test-lmk"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert proc.stderr is not None
        banner = ""
        while "serving on" not in banner:
            line = proc.stderr.readline()
            assert line, "server exited early"
            banner += line
        port = int(re.search(r"serving on 127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        seen = trio.run(_drive, port)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logs = banner + out + err + caplog.text
    printed = logs + "\n".join(seen)
    assert "stopping" in err and proc.returncode == 0
    assert "HSM client" in err  # connection logging happened, so there was something to scan
    assert "HSM connection" in caplog.text  # and the client logged too
    clear_block = pinblock.encode(0, SECRET_PIN, SECRET_PAN).hex().upper()
    for secret in _secrets(clear_block):
        assert secret not in printed, "a secret was printed"
    # The CVV went over the wire both ways (CW answer, CY request): no log line may carry it.
    assert not _standalone(CVV, logs), "the CVV was logged"
    # The CLI paths too.
    cli = run("generate", "--type", "ZPK", "--zmk", ZMK).output + run("kcv", "--type", "ZMK", "--key", ZMK).output
    assert ZMK_CLEAR not in cli


@pytest.mark.parametrize("profile", ["payshield-9000-v3", "payshield-9000-legacy"])
def test_serve_refuses_a_port_in_use(profile: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(hsm_group, ["serve", "--port", str(port), "--profile", profile, "--test-lmk"])
    assert result.exit_code == 1 and "cannot listen" in result.output
