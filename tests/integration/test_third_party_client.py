"""A third-party ISO 8583 client gets correct answers.

The client side here uses no Bulkhead code at all: pyiso8583's own encoder and decoder with its stock
``default`` spec, a plain socket and a hand-made 2-byte length prefix, exactly as a bank's test tool would.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import iso8583
import trio
from iso8583.specs import default as DEFAULT_SPEC

from tests.integration.harness import ROUTES_ONE, issuer, port_of, running_node, write_config


def exchange(port: int, doc: dict[str, str]) -> dict[str, str]:
    raw, _ = iso8583.encode(doc, DEFAULT_SPEC)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(struct.pack(">H", len(raw)) + bytes(raw))
        head = b""
        while len(head) < 2:
            head += sock.recv(2 - len(head))
        (length,) = struct.unpack(">H", head)
        body = b""
        while len(body) < length:
            body += sock.recv(length - len(body))
    decoded, _ = iso8583.decode(body, DEFAULT_SPEC)
    return decoded


BASE = {"7": "1122101010", "12": "101010", "13": "1122", "22": "051", "41": "POS00001", "42": "SHOP00000000001",
        "49": "978"}


async def test_0100_0200_0800_from_a_plain_pyiso8583_client(tmp_path: Path, db_url: str) -> None:
    async with issuer({"rules": [{"action": "decline", "bin": "4761739001010028", "code": "51"}]}) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node:
            port = port_of(node)
            auth = {"t": "0100", "2": "4761739001010010", "3": "000000", "4": "000000002500", "11": "100001",
                    "37": "000000100001", **BASE}
            purchase = {**auth, "t": "0200", "11": "100002", "37": "000000100002"}
            declined = {**purchase, "2": "4761739001010028", "11": "100003", "37": "000000100003"}
            echo = {"t": "0800", "7": "1122101010", "11": "100004", "70": "301"}
            answers = [await trio.to_thread.run_sync(exchange, port, doc)
                       for doc in (auth, purchase, declined, echo)]
    a, p, d, e = answers
    assert (a["t"], a["39"], a["11"], a["4"], a["37"]) == ("0110", "00", "100001", "000000002500", "000000100001")
    assert len(a["38"]) == 6
    assert (p["t"], p["39"], p["2"], p["41"], p["49"]) == ("0210", "00", "4761739001010010", "POS00001", "978")
    assert (d["t"], d["39"]) == ("0210", "51")
    assert (e["t"], e["39"], e["70"]) == ("0810", "00", "301")
