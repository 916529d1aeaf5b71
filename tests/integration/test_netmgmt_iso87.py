"""ISO 8583:1987 network management through a real node over loopback, as the generic network does it with a
link's ``options``: a group sign-on (one 0800 per institution, one refused), a key exchange the peer starts and
one the node starts (the key in DE 125 under the link's ZMK, never journaled in clear), and a cutover (DE 15)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio
from sqlalchemy import select

from bench.ports import free_port
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from schemes.generic import SCHEME
from switch.infra.db.engine import make_engine, sqlite_url
from switch.model.message import Message
from switch.storage.models import JOURNAL
from switch.wire.framing import LengthFraming
from tests.integration.harness import ROUTES_ONE, running_node, write_config
from tests.integration.test_links import admin, wait_until

HSM = SoftwareHsm(Lmk.thales_test())
ZMK = HSM.generate_key("000").under_lmk
ZPK1 = HSM.generate_key_exported("001", ZMK)  # the zone PIN key the link starts with
ZPK2 = HSM.generate_key_exported("001", ZMK)  # sent by the peer
ZPK3 = HSM.generate_key_exported("001", ZMK)  # asked for by the node

OPTIONS = f"""
zmk = "{ZMK}"
pin_key = {{ type = "ZPK", key = "{ZPK1.under_lmk}" }}
options = {{ institutions = ["111111", "222222"], key_exchange_code = "161", cutover_code = "201" }}

[hsm]
kind = "software"
test_lmk = true
"""


@dataclass
class Host:
    """The network's host: answers every 0800 with 00 except sign-ons for ``refused`` institutions (05), and
    never answers those for ``silent`` ones."""

    port: int = 0
    received: list[Message] = field(default_factory=list)
    answers: dict[str, Message] = field(default_factory=dict)  # the node's answers to our requests, by STAN
    refused: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    stream: trio.SocketStream | None = None
    framer = LengthFraming("binary2").framer()

    def signons(self) -> list[tuple[str, str]]:
        return [(str(m[70]), str(m.get(33))) for m in self.received if m.mti == "0800" and m[70] in ("001", "002")]

    async def send(self, msg: Message) -> None:
        assert self.stream is not None
        await self.stream.send_all(self.framer.encode(SCHEME.encode(msg)))

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        framer = LengthFraming("binary2").framer()
        while data := await stream.receive_some(65536):
            framer.receive_data(bytes(data))
            while (frame := framer.next_frame()) is not None:
                msg = SCHEME.decode(frame.body)
                if msg.is_response:
                    self.answers[str(msg.stan)] = msg
                    continue
                self.received.append(msg)
                if msg[70] == "001" and msg.get(33) in self.silent:
                    continue
                refused = msg[70] == "001" and msg.get(33) in self.refused
                reply = SCHEME.make_response(msg, "05" if refused else "00")
                if msg[70] == "161":
                    reply[125] = ZPK3.under_zmk + ZPK3.kcv
                await stream.send_all(framer.encode(SCHEME.encode(reply), reply_to=frame))


@asynccontextmanager
async def host() -> AsyncIterator[Host]:
    h = Host()
    h.port = free_port()  # a connector's host: see harness.issuer()
    listeners = await trio.open_tcp_listeners(h.port, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, h.handle, listeners)
        yield h
        nursery.cancel_scope.cancel()


async def test_group_sign_on_key_exchanges_and_cutover_by_the_links_options(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "node.db")
    async with host() as peer:
        conf = write_config(tmp_path, db, {"up": peer.port}, ROUTES_ONE.format(link="up"), extra=OPTIONS)
        async with running_node(conf) as node:
            # A group sign-on: one 0800 per institution, DE 33 naming it.
            assert sorted(peer.signons()) == [("001", "111111"), ("001", "222222")]
            await admin(node, "links.signoff", name="up")
            # One institution refused: the link is not signed on, and the operator sees the refusal's code.
            peer.refused = {"111111"}
            on = await admin(node, "links.signon", name="up")
            assert (on["response_code"], on["state"]) == ("05", "connected")
            assert sorted(peer.signons()[-2:]) == [("001", "111111"), ("001", "222222")]  # both were still sent
            # One that does not answer: the same, with no code (and the other is still asked).
            peer.refused, peer.silent = set(), {"111111"}
            on = await admin(node, "links.signon", name="up")
            assert (on["response_code"], on["state"]) == (None, "connected")
            assert sorted(peer.signons()[-2:]) == [("001", "111111"), ("001", "222222")]
            peer.silent = set()
            on = await admin(node, "links.signon", name="up")
            assert (on["response_code"], on["state"]) == ("00", "signed_on")

            # The peer changes the zone PIN key: DE 125 = the key under the ZMK and its check value.
            await peer.send(Message("0800", {7: "1207101010", 11: "900001", 70: "161",
                                             125: ZPK2.under_zmk + ZPK2.kcv}))
            await wait_until(lambda: "900001" in peer.answers)
            assert peer.answers["900001"][39] == "00"
            assert HSM.key_check_value("001", node.link_keys["up"].key)[:6] == ZPK2.kcv[:6]

            # The node asks for one itself (the operator's `bulkhead links rekey up`).
            rekey = await admin(node, "links.rekey", name="up")
            assert rekey["installed"] is True and rekey["response_code"] == "00"
            assert HSM.key_check_value("001", node.link_keys["up"].key)[:6] == ZPK3.kcv[:6]

            # A key whose check value does not match is refused (96) and the key in use stays.
            await peer.send(Message("0800", {7: "1207101011", 11: "900002", 70: "161",
                                             125: ZPK2.under_zmk + "000000"}))
            await wait_until(lambda: "900002" in peer.answers)
            assert peer.answers["900002"][39] == "96"
            assert HSM.key_check_value("001", node.link_keys["up"].key)[:6] == ZPK3.kcv[:6]

            # A cutover: the link's business date moves.
            await peer.send(Message("0800", {7: "1207235959", 11: "900003", 15: "1208", 70: "201"}))
            await wait_until(lambda: "900003" in peer.answers)
            assert peer.answers["900003"][39] == "00" and node.business_dates["up"] == "1208"

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            rows = {r.stan: r for r in conn.execute(select(JOURNAL))}
    finally:
        engine.dispose()
    assert rows["900001"].outcome == "network" and rows["900002"].response_code == "96"
    assert '"125":"<' in rows["900001"].request  # the key the peer sent is journaled as its length only
    for row in rows.values():
        assert ZPK2.under_zmk not in row.request
