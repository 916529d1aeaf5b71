"""PIN translation in the pipeline: DE 52 from an ATM (under its TPK) reaches the issuer under the issuer's ZPK."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.testing import TestPinPad
from switch.config import parse_config
from switch.model.errors import ConfigError
from tests.integration.harness import PAN, ROUTES_ONE, client, purchase, recording_issuer, running_node, write_config

HSM = SoftwareHsm(Lmk.thales_test())
TPK = HSM.generate_key("002").under_lmk
ISSUER_ZPK = HSM.generate_key("001").under_lmk
PVK = HSM.generate_key("002").under_lmk
ACCOUNT = PAN[-13:-1]

EXTRA = """
[hsm]
kind = "software"
test_lmk = true

[[listeners]]
name = "pinpad"
port = 0
scheme = "generic"
framing = {{ kind = "binary2" }}
pin_key = {{ type = "TPK", key = "{tpk}" }}

[[connectors]]
name = "issuer"
hosts = ["127.0.0.1:{port}"]
scheme = "generic"
framing = {{ kind = "binary2" }}
timeout_ms = 2000
pin_key = {{ type = "ZPK", key = "{zpk}" }}
"""


def _pvv_of(block: bytes) -> str:
    return HSM.generate_pvv("001", ISSUER_ZPK, PVK, block.hex().upper(), "01", ACCOUNT, 1)


# The in-process software HSM translates inline, in the link reader (pipeline.start); any other HSM (a
# payShield over TCP, or the software one on a thread) is awaited in a task. Both paths are checked.
HSM_PATHS = pytest.mark.parametrize("inline", [True, False], ids=["inline", "task"])


@HSM_PATHS
async def test_atm_pin_block_is_translated_to_the_issuer_zone_key(tmp_path: Path, db_url: str, inline: bool) -> None:
    async with recording_issuer() as rec:
        conf = write_config(tmp_path, db_url, {}, ROUTES_ONE.format(link="issuer"),
                            extra=EXTRA.format(tpk=TPK, zpk=ISSUER_ZPK, port=rec.port))
        async with running_node(conf) as node:
            assert node.inline_hsm is not None
            if not inline:
                node.inline_hsm = None
            port = node.listeners["pinpad"].port
            assert port is not None
            async with client(port) as c:
                request = purchase(stan=5101)
                request[52] = TestPinPad().pin_block("TPK", TPK, "1234", PAN)
                response = await c.call(request)
        assert response[39] == "00"
        forwarded = [m for m in rec.received if m.mti == "0200"]
        assert len(forwarded) == 1
        block = forwarded[0][52]
        assert isinstance(block, bytes) and block != request[52]
        # Same PIN under the issuer's key: its PVV equals that of a fresh "1234" block under the ZPK.
        assert _pvv_of(block) == _pvv_of(TestPinPad().pin_block("ZPK", ISSUER_ZPK, "1234", PAN))
        assert _pvv_of(block) != _pvv_of(TestPinPad().pin_block("ZPK", ISSUER_ZPK, "4321", PAN))


@HSM_PATHS
async def test_undecipherable_pin_block_is_answered_55_and_not_forwarded(tmp_path: Path, db_url: str,
                                                                         inline: bool) -> None:
    async with recording_issuer() as rec:
        conf = write_config(tmp_path, db_url, {}, ROUTES_ONE.format(link="issuer"),
                            extra=EXTRA.format(tpk=TPK, zpk=ISSUER_ZPK, port=rec.port))
        async with running_node(conf) as node:
            if not inline:
                node.inline_hsm = None
            port = node.listeners["pinpad"].port
            assert port is not None
            async with client(port) as c:
                request = purchase(stan=5102)
                # A block encrypted under another terminal's key decodes to garbage under ours.
                request[52] = TestPinPad().pin_block("TPK", HSM.generate_key("002").under_lmk, "1234", PAN)
                response = await c.call(request)
        assert response[39] == "55"
        assert not [m for m in rec.received if m.mti == "0200"]


def test_pin_key_without_hsm_is_a_config_error(tmp_path: Path) -> None:
    text = EXTRA.format(tpk=TPK, zpk=ISSUER_ZPK, port=9).replace('[hsm]\nkind = "software"\ntest_lmk = true\n', "")
    with pytest.raises(ConfigError, match="needs an HSM"):
        parse_config('[node]\nname = "x"\n' + text, tmp_path / "node.toml")


def test_pin_key_must_be_a_cryptogram(tmp_path: Path) -> None:
    text = EXTRA.format(tpk="0123456789ABCDEF0123456789ABCDEFAA", zpk=ISSUER_ZPK, port=9)
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.pin_key\.key"):
        parse_config('[node]\nname = "x"\n' + text, tmp_path / "node.toml")
