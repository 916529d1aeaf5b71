"""What a link calls back into the node: injected callables (moov-io's iso8583-connection takes its handlers as
options the same way), so a link knows no node and a test gives it just the two it needs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from switch.contracts.network import KeyChange, Network
from switch.infra.ratelog import SummaryLog
from switch.model.message import Message
from switch.runtime.links.connection import Connection
from switch.wire.framing import Frame

# A decoded request (source link, the connection to answer on, its frame, the message); called inline.
RequestHandler = Callable[[str, Connection, Frame, Message], None]
# A frame whose body did not decode (source link, its network, connection, frame, the error).
FormatErrorHandler = Callable[[str, Network, Connection, Frame, Exception], None]
# A response (or reject) nobody waits for.
LateHandler = Callable[[str, Message], None]
# A request the listener answered 91 at once without an exchange (admission control): counted, not journaled.
ShedHandler = Callable[[str, Message], None]
# A new working key a key-exchange response carried (link, the key, the message that carried it): True once
# installed (imported through the HSM, checked).
KeyHandler = Callable[[str, KeyChange, Message], Awaitable[bool]]
# A key exchange is under way on a link from this instant (perf_counter_ns: the answer that carries the key was
# received): requests received from then on wait for its outcome (switch.exchange.keywindow).
KeyChangingHandler = Callable[[str, int], None]
# The key exchange on a link is over (installed, refused or unanswered).
KeyDoneHandler = Callable[[str], None]


def _drop(_source: str, _msg: Message) -> None:
    pass


def _uncounted(_source: str, _msg: Message) -> None:
    pass


async def _refuse_key(_link: str, _change: KeyChange, _carrier: Message) -> bool:
    return False


def _no_key_change(_link: str, _since_ns: int) -> None:
    pass


def _key_done(_link: str) -> None:
    pass


@dataclass(frozen=True)
class LinkHooks:
    on_request: RequestHandler
    on_format_error: FormatErrorHandler
    on_late: LateHandler = _drop
    on_key: KeyHandler = _refuse_key
    on_shed: ShedHandler = _uncounted
    on_key_changing: KeyChangingHandler = _no_key_change
    on_key_done: KeyDoneHandler = _key_done
    # Where what a peer sent wrong is logged (format errors, unsolicited frames): one line per link, peer address
    # and kind per interval, with counts, so a peer's flood of garbage is not also a flood of log lines. The
    # listeners flush it periodically.
    log: SummaryLog = field(default_factory=lambda: SummaryLog(logging.getLogger("bulkhead.link")))
