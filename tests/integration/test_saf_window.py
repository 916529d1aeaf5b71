"""Store and forward with a window of entries in flight, on a real node process killed with SIGKILL while the
window waits for its answers (issue 11): nothing is lost, and the next life sends what was in flight as repeats
(0221: the issuer may have it) and the rest as queued, each entry's successor for the same original only after
it was answered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from switch.config import load_config
from switch.exchange.reversal import build_reversal, build_stand_in_advice
from switch.infra.datakey import load_or_create
from switch.infra.db.engine import make_engine
from switch.model.message import Message
from switch.runtime.safd import SafQueue
from switch.storage.db import upgrade
from switch.storage.saf import SafItem, SafStore
from tests.integration.harness import PAN, purchase, recording_issuer, write_config

pytestmark = pytest.mark.slow

BULKHEAD = [sys.executable, "-c", "from switch.cli.main import main; main()"]
ROUTES = """
default = "issuer"
[destinations.issuer]
links = ["up"]
"""
WINDOW = 4


def _tag(msg: Message | SafItem) -> str:
    return ("A" if msg.mti.startswith("02") else "R") + str(int(str(msg.stan)))


def _start(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*BULKHEAD, "run", "--conf", str(conf)], cwd=conf.parent, stdout=subprocess.DEVNULL,
                                stderr=out, start_new_session=True)


def _kill(node: subprocess.Popen[bytes]) -> None:
    if node.poll() is None:
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=30)


async def _until(check: object, what: str, log: Path, timeout: float = 60) -> None:
    assert callable(check)
    with trio.move_on_after(timeout):
        while not check():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"never {what}:\n{log.read_text()[-3000:]}")


async def test_a_node_killed_mid_window_loses_nothing_and_sends_the_window_again_as_repeats(
        tmp_path: Path, db_url: str) -> None:
    async with recording_issuer(hold=frozenset({"0220", "0221", "0400", "0401"})) as stalled:
        port = stalled.port
        # A send timeout far beyond the test: the window is in flight, unanswered, when the node dies.
        conf = write_config(tmp_path, db_url, {"up": port}, ROUTES, saf_delay_ms=0, saf_send_timeout_ms=600_000,
                            saf_window=WINDOW)
        cfg = load_config(conf)
        await trio.to_thread.run_sync(upgrade, db_url)
        engine = make_engine(db_url)
        store = SafStore(engine)
        try:
            # Ten stand-in advices (a cell was down), and the acquirer's reversal of the first one behind it.
            queue = SafQueue(store, load_or_create(cfg.hash_key_file), cfg.saf)
            originals = [purchase(pan=PAN, amount=100 + n, stan=n) for n in range(1, 11)]
            await queue.enqueue([("up", build_stand_in_advice(o, "S00001", repeat=False), f"t{n}")
                                 for n, o in enumerate(originals, start=1)])
            await queue.enqueue([("up", build_reversal(originals[0], "68", transmission_time="1122101111"), "r1")])
            ids = {_tag(i): i.id for i in await trio.to_thread.run_sync(store.list_items)}

            log = tmp_path / "node.log"
            node = _start(conf, log)
            try:
                def window_sent() -> bool:
                    return len([m for m in stalled.received if m.mti != "0800"]) >= WINDOW

                await _until(window_sent, "sent the window", log)
                await trio.sleep(0.5)  # nothing beyond the window leaves while it is unanswered
                in_flight = [m for m in stalled.received if m.mti != "0800"]
                assert sorted(_tag(m) for m in in_flight) == ["A1", "A2", "A3", "A4"]
                assert {m.mti for m in in_flight} == {"0220"}
            finally:
                _kill(node)  # SIGKILL: no drain, no sign-off, nothing written on the way out
            stalled.cancel.cancel()

            # What the dead node left in the database: the window's attempts, recorded before they left.
            after_kill = {_tag(i): (i.status, i.attempts) for i in await trio.to_thread.run_sync(store.list_items)}
            assert after_kill == {**{f"A{n}": ("pending", 1 if n <= WINDOW else 0) for n in range(1, 11)},
                                  "R1": ("pending", 0)}
        finally:
            engine.dispose()

    async with recording_issuer(port=port) as back:
        node = _start(conf, log)
        engine = make_engine(db_url)
        store = SafStore(engine)
        try:
            def all_acked() -> bool:
                return all(i.status == "acked" for i in store.list_items())

            await _until(all_acked, "acknowledged every entry", log)
            items = {_tag(i): i for i in await trio.to_thread.run_sync(store.list_items)}
        finally:
            _kill(node)
            engine.dispose()

    sent = [(_tag(m), m.mti) for m in back.received if m.mti != "0800"]
    # The window went again as repeats, the rest as queued; each entry once in this life.
    assert sorted(sent) == sorted([*[(f"A{n}", "0221") for n in range(1, WINDOW + 1)],
                                   *[(f"A{n}", "0220") for n in range(WINDOW + 1, 11)], ("R1", "0400")])
    assert sent.index(("A1", "0221")) < sent.index(("R1", "0400"))  # the reversal after its advice's answer
    assert items["R1"].last_attempt_at is not None and items["A1"].completed_at is not None
    assert items["A1"].completed_at <= items["R1"].last_attempt_at
    assert {t: (i.attempts, i.last_response_code) for t, i in items.items()} == {
        **{f"A{n}": (2 if n <= WINDOW else 1, "00") for n in range(1, 11)}, "R1": (1, "00")}
    assert {t: i.id for t, i in items.items()} == ids
