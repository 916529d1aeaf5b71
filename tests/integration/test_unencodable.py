"""A request carrying a field its destination's network cannot encode, through a real node: answered 30 (format
error) to its source in the source's own dialect, journaled, nothing sent upstream, nothing hung.

The destination here is a generic ISO 8583:1987 connector, which is what a processor cell's link is
(``processors.cell.config``: scheme ``generic``, framing ``binary2``): UnionPay's DE 43 in GBK does not fit its
ASCII-only DE 43, and VISA's third-bitmap fields (129-192) are not in its spec at all. Which fields are refused
rather than dropped is listed in the README ("Fields a destination cannot carry").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from schemes.generic import SCHEME as GENERIC
from schemes.unionpay import SCHEME as UNIONPAY
from schemes.unionpay.header import CupsHeader
from schemes.visa import NETWORK as VISA
from schemes.visa.framing import VisaFramer
from schemes.visa.header import is_reject
from switch.infra.db.engine import make_engine
from switch.model.errors import EncodeError
from switch.storage.models import JOURNAL
from tests.integration.harness import purchase
from tests.integration.test_malformed_forms import (
    BANK_ID,
    CUPS_ID,
    NODE_STATION,
    VISA_STATION,
    cups_frame,
    cups_header,
    node_with_network_listeners,
    peer,
)

GBK_NAME = "中国银联CHINA UNIONPAY SIMULATOR".ljust(36)  # 40 bytes in GBK: four characters of two bytes each


def journal(db_url: str) -> dict[str, tuple[str, str | None, str | None, str]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as db:
            return {r.stan: (r.outcome, r.response_code, r.destination, r.response or "")
                    for r in db.execute(select(JOURNAL))}
    finally:
        engine.dispose()


async def test_unionpay_gbk_merchant_name_to_a_cell_link_is_answered_30(tmp_path: Path, db_url: str) -> None:
    from schemes.unionpay.framing import UnionPayFraming

    request = purchase(stan=11)
    request[43] = GBK_NAME
    body = UNIONPAY.encode(request)
    assert "中国银联".encode("gbk") in body  # the GBK bytes UnionPay sent
    async with node_with_network_listeners(tmp_path, db_url) as node, \
            peer(node, "cups", UnionPayFraming(source_id=CUPS_ID, destination_id=BANK_ID).framer()) as cups:
        before = node.outbound["issuer"].sent  # its sign-on
        await cups.send(cups_frame(cups_header(body), body))
        answer = await cups.frame()
        header = CupsHeader.parse(answer.header)
        # Under the reply header (ids swapped, no reject code), in UnionPay's body layout: 0210, DE 39 30.
        assert (header.source_id, header.destination_id, header.reject_code) == (BANK_ID, CUPS_ID, "00000")
        assert answer.body[:4] == b"0210"
        response = UNIONPAY.decode(answer.body)
        assert (response[39], response[11]) == ("30", "000011")
        assert node.outbound["issuer"].sent == before  # nothing went to the destination
        # A request without the GBK name on the same connection goes through as usual.
        plain = UNIONPAY.encode(purchase(stan=12))
        await cups.send(cups_frame(cups_header(plain), plain))
        assert UNIONPAY.decode((await cups.frame()).body)[39] == "00"
    rows = journal(db_url)
    assert rows["000011"][:3] == ("format_error", "30", "issuer")
    assert rows["000012"][:2] == ("approved", "00")


async def test_visa_third_bitmap_fields_to_a_generic_link_are_answered_30(tmp_path: Path, db_url: str) -> None:
    request = purchase(stan=13)
    request[134] = "0102"  # a VSDC chip field of VISA's third bitmap (hex of its bytes in the canonical form)
    visa_side = VisaFramer(source_station=VISA_STATION, destination_station=NODE_STATION)
    async with node_with_network_listeners(tmp_path, db_url) as node, peer(node, "visa", VisaFramer()) as visa:
        before = node.outbound["issuer"].sent
        await visa.send(visa_side.encode(VISA.encode(request)))
        answer = await visa.frame()
        # A plain reply header (stations swapped), BCD MTI 0210, DE 39 30 in EBCDIC.
        assert not is_reject(answer.header)
        assert answer.header[5:8].hex() == VISA_STATION and answer.header[8:11].hex() == NODE_STATION
        assert answer.body[:2] == b"\x02\x10"
        response = VISA.decode(answer.body)
        assert (response[39], response[11]) == ("30", "000013")
        assert node.outbound["issuer"].sent == before
    assert journal(db_url)["000013"][:2] == ("format_error", "30")


@pytest.mark.parametrize("source", [GENERIC, UNIONPAY])
def test_another_networks_de48_is_not_sent_as_visas(source: object) -> None:
    # DE 48 is private use: VISA's is bytes (their hex in the canonical form), a generic acquirer's or UnionPay's is
    # text with another layout. "ABCD" would even pass for hex: refused, so the source is answered 30.
    request = purchase(stan=14)
    request[48] = "ABCD"
    decoded = source.decode(source.encode(request))  # type: ignore[attr-defined]
    with pytest.raises(EncodeError) as info:
        VISA.encode(decoded)
    assert info.value.field == "48"
    del decoded.fields[48]
    assert VISA.decode(VISA.encode(decoded))[11] == "000014"  # without it the request is VISA's to carry
    visa_own = VISA.decode(VISA.encode(request))  # VISA's own DE 48 goes back out as it came
    assert VISA.decode(VISA.encode(visa_own))[48] == "ABCD"
