"""``bulkhead wire decode|encode``: one captured frame of each network, read field by field through the network
contract and masked; a message encoded back from JSON; bad input ends in a clear error (exit 1), never a
traceback."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from schemes.generic import SCHEME
from schemes.visa import NETWORK as VISA
from schemes.visa.header import build_base1_header, build_reject
from switch.cli.main import main as bulkhead
from switch.model.message import Message
from tests.integration.harness import PAN, purchase
from tests.schemes.unionpay.vectors import EASY_0200


def run(*args: str, data: bytes = b"") -> Result:
    return CliRunner().invoke(bulkhead, ["wire", *args], input=data)


def test_a_generic_capture_is_printed_masked_and_encodes_back_byte_for_byte(tmp_path: Path) -> None:
    msg = purchase(stan=42)
    msg.fields[52] = bytes.fromhex("0123456789ABCDEF")
    body = SCHEME.encode(msg)
    (tmp_path / "capture.bin").write_bytes(body)
    shown = run("decode", "--network", "generic", str(tmp_path / "capture.bin"))
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "network generic  request"
    assert "  2                               476173******0010" in lines
    assert "  52                              <8 bytes hidden>" in lines
    assert PAN not in shown.output and "0123456789" not in shown.output
    as_json = run("decode", "--network", "generic", "--hex", "--json", "-", data=body.hex().encode())
    document = json.loads(as_json.output)
    assert (document["kind"], document["header"], document["message"]["11"]) == ("request", {}, "000042")
    # What an operator does with it: put the clear values back where it printed masked ones, encode.
    document["message"].update({"2": PAN, "52": "0123456789ABCDEF"})
    encoded = run("encode", "--network", "generic", data=json.dumps(document["message"]).encode())
    assert encoded.exit_code == 0, encoded.output
    assert bytes.fromhex(encoded.output.strip()) == body


def test_a_visa_capture_shows_its_base1_header_and_a_reject_its_code() -> None:
    msg = Message("0100", {2: PAN, 3: "000000", 4: "000000001000", 7: "1207101010", 11: "000123",
                           12: "101010", 13: "1207", 18: "5999", 22: "051", 25: "00", 32: "123456",
                           37: "734112000123", 41: "TERM0001", 42: "MERCHANT0000001", 49: "840"})
    body = VISA.encode(msg)
    header = build_base1_header(bytes.fromhex("400000"), bytes.fromhex("123456"), len(body))
    shown = run("decode", "--network", "visa", "--json", data=header + body)
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["kind"] == "request"
    assert (document["header"]["destination"], document["header"]["source"]) == ("400000", "123456")
    assert document["message"]["2"] == "476173******0010" and PAN not in shown.output
    rejected = build_reject(header, "0503", len(body)) + body
    shown = run("decode", "--network", "visa", "--json", data=rejected)
    document = json.loads(shown.output)
    assert (document["kind"], document["header"]["reject code (H14)"]) == ("reject", "0503")
    assert document["message"]["11"] == "000123"


def test_a_public_unionpay_frame_is_read_with_its_46_byte_header() -> None:
    # A balance inquiry from com.easy.iso8583's tests, as UnionPay sends it without the 4-digit length.
    shown = run("decode", "--network", "unionpay", "--json", data=EASY_0200)
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["kind"] == "request" and document["message"]["mti"] == "0200"
    assert document["header"]["total_length"] == str(len(EASY_0200))
    assert document["header"]["reject_code"] == "00000"
    assert "******" in document["message"]["2"]


def test_what_does_not_decode_says_why_and_exits_1() -> None:
    body = SCHEME.encode(purchase(stan=7))
    cut = run("decode", "--network", "generic", "--body", data=body[:-5])
    assert cut.exit_code == 1 and cut.output.startswith("Error: generic: ") and "Traceback" not in cut.output
    assert run("decode", "--network", "generic", "--hex", data=b"0x12zz").exit_code == 1
    short = run("decode", "--network", "unionpay", data=EASY_0200[:30])
    assert short.exit_code == 1 and "unionpay" in short.output
    assert run("decode", "--network", "nowhere", data=body).exit_code == 2
    assert run("encode", "--network", "generic", data=b"{not json").exit_code == 1
    assert run("encode", "--network", "generic", data=b'{"mti": "0200", "fields": {"x": "1"}}').exit_code == 1
