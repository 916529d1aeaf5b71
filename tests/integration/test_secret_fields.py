"""The secret fields each network declares, through a real node: a request carrying every one of them, with clear
values no masked form can contain, from a generic acquirer, UnionPay, VISA and Mastercard; none of those values
appears in the journal rows, in the log output or in ``bulkhead journal show``.

Declared secret (switch.model.masking and each network's MASKING): 14, 35, 36, 45, 52, 53, 55, 64, 96, 125-128
whole (UnionPay shows its DE 53 flags), the PAN as 6/4; UnionPay's DE 61.2 and 61.6 (identity document number,
CVN2) within DE 61; VISA's 126.10 (CVV2) within DE 126; Mastercard's DE 48 sub-elements 10, 11 (keys), 43 (the
authentication value) and 92 (CVC 2) within DE 48.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from schemes.generic import SCHEME as GENERIC
from schemes.mastercard import NETWORK as MASTERCARD
from schemes.unionpay import SCHEME as UNIONPAY
from schemes.unionpay.framing import UnionPayFraming
from schemes.visa import NETWORK as VISA
from schemes.visa.fields import build_de126
from schemes.visa.framing import VisaFramer
from switch.infra.db.engine import make_engine
from switch.model.message import Message
from switch.storage.models import JOURNAL
from switch.wire.framing import LengthFraming
from tests.integration.harness import PAN, Cli, purchase
from tests.integration.test_malformed_forms import (
    BANK_ID,
    CUPS_ID,
    NODE_STATION,
    VISA_STATION,
    node_with_network_listeners,
    peer,
)

COMMON = {
    35: f"{PAN}=31071015550001111", 45: f"B{PAN}^HOLDER/SECRET^31071015550002222",
    52: bytes.fromhex("A1B2C3D4E5F60718"), 55: bytes.fromhex("9F2608C0FFEE0BADF00D01"), 125: "XKEYSECRET7777",
}
CLEAR = [PAN, "1015550001111", "HOLDER/SECRET", "1015550002222", "A1B2C3D4E5F60718", "a1b2c3d4e5f60718",
         "C0FFEE0BADF00D", "c0ffee0badf00d", "XKEYSECRET7777", "PRIV127SECRET", "PRIV126SECRET", "9988776655443322",
         "5EC2E75EC2E7", "5ec2e75ec2e7", "ID4455667788990011", "CUP919", "105919", "F1F0F5F9F1F9",
         "Q7Z", "UCAFSECRETVALUE42", "KEYBLOCK8866", "PINKEY5544"]


def request(stan: int, extra: dict[int, str | bytes]) -> Message:
    msg = purchase(stan=stan)
    for number, value in {**COMMON, **extra}.items():
        msg[number] = value
    return msg


GENERIC_EXTRA: dict[int, str | bytes] = {53: "9988776655443322", 96: bytes.fromhex("5EC2E75EC2E75EC2"),
                                         126: "PRIV126SECRET", 127: "PRIV127SECRET"}
UNIONPAY_EXTRA: dict[int, str | bytes] = {61: "00ID4455667788990011    CUP919  ",
                                          96: bytes.fromhex("5EC2E75EC2E75EC2"), 127: "PRIV127SECRET"}
VISA_EXTRA: dict[int, str | bytes] = {126: build_de126({10: "105919"})}
MASTERCARD_EXTRA: dict[int, str | bytes] = {
    48: "R" + "9203Q7Z" + "4317UCAFSECRETVALUE42" + "1112KEYBLOCK8866" + "1010PINKEY5544" + "4207" + "0103210",
    53: "9988776655443322", 125: bytes.fromhex("5EC2E75EC2E75EC2"), 126: "PRIV126SECRET", 127: "PRIV127SECRET"}


async def test_secret_fields_never_reach_the_journal_logs_or_cli(tmp_path: Path, db_url: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    generic_framing = LengthFraming("binary2")
    cups_side = UnionPayFraming(source_id=CUPS_ID, destination_id=BANK_ID)
    visa_side = VisaFramer(source_station=VISA_STATION, destination_station=NODE_STATION)
    async with node_with_network_listeners(tmp_path, db_url) as node:
        async with peer(node, "acquirer", generic_framing.framer()) as acquirer:
            await acquirer.send(generic_framing.framer().encode(GENERIC.encode(request(41, GENERIC_EXTRA))))
            assert GENERIC.decode((await acquirer.frame()).body)[11] == "000041"
        async with peer(node, "cups", cups_side.framer()) as cups:
            await cups.send(cups_side.framer().encode(UNIONPAY.encode(request(42, UNIONPAY_EXTRA))))
            assert UNIONPAY.decode((await cups.frame()).body)[11] == "000042"
        async with peer(node, "visa", VisaFramer()) as visa:
            await visa.send(visa_side.encode(VISA.encode(request(43, VISA_EXTRA))))
            assert VISA.decode((await visa.frame()).body)[11] == "000043"
        mc_side = MASTERCARD.link_options(None, None).framer()
        async with peer(node, "mastercard", MASTERCARD.link_options(None, None).framer()) as mc:
            await mc.send(mc_side.encode(MASTERCARD.encode(request(44, MASTERCARD_EXTRA))))
            assert MASTERCARD.decode((await mc.frame()).body)[11] == "000044"
        cli = Cli(tmp_path / "node.toml", (PAN,))
        shown = [(await cli("journal", "show", "--stan", stan)).output for stan in ("41", "42", "43", "44")]
    engine = make_engine(db_url)
    try:
        with engine.connect() as db:
            rows = {r.stan: f"{r.request}\n{r.response}\n{r.response_delta}" for r in db.execute(select(JOURNAL))}
    finally:
        engine.dispose()
    assert {"000041", "000042", "000043", "000044"} <= set(rows)
    for where, text in [*(("journal " + k, v) for k, v in rows.items()), ("log", caplog.text),
                        *(("journal show", out) for out in shown)]:
        for clear in CLEAR:
            assert clear not in text, f"{clear} in the {where}"
    assert all(any(f"00004{n}" in out for n in range(1, 5)) for out in shown)  # the rows were shown
    assert "92=<3 hidden>" in rows["000044"] and "42=0103210" in rows["000044"]  # DE 48 shown but its secrets
