"""Review of the issue 12 wave (merge12): failing tests that prove findings in the key window and the config."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import trio

from hsm.api import ImportedKey, PinKey
from switch.config.links import MacConfig
from switch.config.node import parse_config
from switch.contracts.network import KeyChange
from switch.model.errors import BulkheadError
from switch.model.message import Message
from switch.runtime.keyring import Keyring
from tests.integration.harness import ROUTES_ONE, write_config


class SlowImportHsm:
    """An HSM whose key import waits until the test lets it finish (a remote payShield is a round trip away)."""

    def __init__(self) -> None:
        self.gates: dict[str, trio.Event] = {}

    async def import_key(self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U") -> ImportedKey:
        gate = self.gates.setdefault(key_type, trio.Event())
        await gate.wait()
        return ImportedKey("U" + key_under_zmk[1:], "ABCDEF", False)


def _ring() -> Keyring:
    link = SimpleNamespace(name="net", scheme="generic", pin_key=PinKey("ZPK", "U" + "1" * 32), zmk="U" + "9" * 32,
                           mac_key="U" + "2" * 32, mac=MacConfig("U" + "2" * 32), key_window_s=60.0)
    return Keyring(SimpleNamespace(listeners=[], connectors=[link]))  # type: ignore[arg-type]


async def test_a_second_key_exchange_still_under_way_keeps_its_requests_waiting() -> None:
    # UnionPay (or any network) resets the PIN key and then the MAC key, the second 0800 arriving while the HSM
    # still imports the first key. The node marks both (Pipeline._network -> key_changing) and installs each in a
    # task (Keyring.install_key, whose finally calls key_done). When the PIN key is in, the MAC key is not yet: a
    # request the network sent after its MAC-key 0800 (so MACed under the new ZAK) must still wait for it.
    ring, hsm = _ring(), cast(Any, SlowImportHsm())
    carrier_pin, carrier_mac = Message("0800", {70: "161"}), Message("0800", {70: "160"})
    carrier_pin.meta.received_ns, carrier_mac.meta.received_ns = 1_000, 2_000
    ring.key_changing("net", 1_000)
    ring.key_changing("net", 2_000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ring.install_key, hsm, "net", KeyChange("ZPK", "X" + "3" * 32, "ABCDEF"), carrier_pin)
        nursery.start_soon(ring.install_key, hsm, "net", KeyChange("ZAK", "X" + "4" * 32, "ABCDEF"), carrier_mac)
        await trio.testing.wait_all_tasks_blocked()
        hsm.gates.setdefault("001", trio.Event()).set()  # the PIN key is imported; the MAC key is not yet
        await trio.testing.wait_all_tasks_blocked()
        waiting = ring.key_pending("net", 2_500)
        keys = ring.mac_keys("net", 2_500)
        hsm.gates.setdefault("008", trio.Event()).set()
    assert waiting, f"a request received after the MAC-key 0800 is verified now, under {keys} (the old ZAK only)"


def test_mac_true_without_an_hsm_is_a_config_error(tmp_path: Path) -> None:
    # README: "mac = true (default false; needs mac_key and [hsm])". _check_hsm lists pin_key and zmk only: a MAC
    # link without an [hsm] table loads, and at run time every request on it is answered 96 ("no HSM").
    extra = """
[[connectors]]
name = "net"
hosts = ["127.0.0.1:1"]
mac = true
mac_key = { type = "ZAK", key = "U06B495AAAD084746B5D75349D9077F48" }
"""
    conf = write_config(tmp_path, "sqlite:///" + str(tmp_path / "x.db"), {}, ROUTES_ONE.format(link="net"),
                        extra=extra)
    with pytest.raises(BulkheadError, match=r"(?i)hsm"):
        parse_config(conf.read_text(), conf)


class ImportingHsm:
    """An HSM whose import returns the key it was given as the LMK cryptogram, with the check value asked for."""

    async def import_key(self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U") -> ImportedKey:
        return ImportedKey("U" + key_under_zmk[1:], "ABCDEF", False)


async def test_a_request_received_before_the_new_key_arrived_is_read_under_the_old_one() -> None:
    # The two-key window as the pipeline uses it (Keyring.source_key, by the request's receive time): a request the
    # network sent before its key-exchange 0800 is translated under the old key even when its translation runs
    # after the new key is installed (a remote HSM, a busy node); one sent after, under the new key.
    ring = _ring()
    old = ring.link_keys["net"].key
    at = time.perf_counter_ns()  # the clock of meta.received_ns
    carrier = Message("0800", {70: "161"})
    carrier.meta.received_ns = at
    before, after = Message("0200", {11: "000001"}), Message("0200", {11: "000002"})
    before.meta.received_ns, after.meta.received_ns = at - 1_000, at + 1_000
    ring.key_changing("net", at, "ZPK")
    assert ring.key_pending("net", at + 1_000) and not ring.key_pending("net", at - 1_000)
    assert await ring.install_key(cast(Any, ImportingHsm()), "net", KeyChange("ZPK", "X" + "3" * 32, "ABCDEF"),
                                  carrier)
    new = "U" + "3" * 32
    assert not ring.key_pending("net", at + 1_000)
    assert ring.source_key("net", before) == PinKey("ZPK", old)
    assert ring.source_key("net", after) == PinKey("ZPK", new) == ring.link_key("net")
