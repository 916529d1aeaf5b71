"""The links as the exchange pipeline sees them: the connection a request came in on (:class:`Source`), a link to
a destination (:class:`Upstream`), and what they raise. The node's services are
:class:`switch.exchange.services.NodePorts`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from switch.contracts.network import Network, Rejected
from switch.exchange.identity import LinkIdentity
from switch.model.errors import BulkheadError
from switch.model.message import FieldValue, Message
from switch.wire.framing import Frame

# What a request's waiter is given: the response, the network's rejection of the request, or None (no answer in
# time, or the connection dropped first).
Answer = Message | Rejected | None


class LinkDown(BulkheadError):
    """The link cannot carry a request now (not connected or not signed on)."""


class DuplicateKeyError(BulkheadError):
    """A request with the same match key is already in flight on this link."""


class ConnectionClosed(Exception):
    """The connection is closed (or was closed for queueing too much): a response's source is gone, or a link's
    own connection went away."""


class Source(Protocol):
    """The connection a request came in on."""

    def send_frame(self, body: bytes, reply_to: Frame | None = None) -> None:
        """Queue ``body`` framed as a reply to ``reply_to``; :class:`ConnectionClosed` when it is closed."""
        ...

    def exchange_started(self) -> None: ...

    def exchange_done(self) -> None: ...


class Upstream(Protocol):
    """A link to a destination."""

    @property
    def name(self) -> str: ...

    @property
    def timeout_ms(self) -> int: ...

    @property
    def identity(self) -> LinkIdentity | None:
        """The switch's own identity on this link (its STAN, RRN, DE 32/33), None when it keeps the source's."""
        ...

    @property
    def network(self) -> Network:
        """The link's network: what a MAC is computed over is the message as it encodes it."""
        ...

    def send(self, msg: Message, timeout: float, on_answer: Callable[[Answer], None]) -> None:
        """Send without waiting; ``on_answer`` gets the answer (or None at ``timeout``) from the link's reader or
        the node's timer. Raises :class:`LinkDown`, :class:`DuplicateKeyError` or
        :class:`~switch.model.errors.EncodeError` before anything is sent (``on_answer`` is then never called)."""
        ...


class Refusal(Protocol):
    """Why a terminal's request is refused before anything else is done with it."""

    @property
    def code(self) -> str: ...

    @property
    def reason(self) -> str: ...


class TerminalGate(Protocol):
    """The ATMP as the pipeline sees it, for the requests of one listener of terminals."""

    def admit(self, request: Message) -> Refusal | None:
        """None: the terminal (DE 41) may send this request; else the code to answer and why (unknown terminal,
        out of service, closed, supervisor mode). Synchronous: from the node's copy of the registry."""
        ...

    def checks_mac(self, request: Message) -> bool:
        """Whether ``request`` must carry a MAC under its terminal's TAK (a terminal configured for MAC)."""
        ...

    async def verify_mac(self, request: Message, body: bytes) -> bool:
        """Whether the MAC of ``request`` (decoded from ``body``) verifies under its terminal's TAK."""
        ...

    def local(self, request: Message) -> bool:
        """Whether the ATMP answers ``request`` itself (never routed): confirmations, network management, totals."""
        ...

    async def answer(self, request: Message) -> Message:
        """The ATMP's answer to a :meth:`local` request (its effects are durable when it returns)."""
        ...

    def prepare(self, request: Message, destination: Upstream) -> dict[int, FieldValue]:
        """A routed request before it goes to ``destination``: the terminal's surcharge (DE 28) on a foreign card;
        the fields that are the terminal's business only (its note counts, its device events) taken off and
        returned, so that the issuer never sees them and the ATMP reads them back when the answer comes."""
        ...

    def follows(self, request: Message, response: Message) -> bool:
        """Whether :meth:`after` must see this exchange before the terminal is answered."""
        ...

    async def after(self, request: Message, response: Message) -> None:
        """Record what the answered exchange means for the terminal (a reversal advice's dispense outcome and cash),
        durably, before the answer leaves: the terminal sends it again until it is answered."""
        ...

    def signs(self, request: Message) -> bool:
        """Whether the answer to ``request`` carries a MAC under the terminal's TAK."""
        ...

    async def sign(self, response: Message, request: Message) -> bytes:
        """``response`` encoded with its MAC under the TAK of the terminal that sent ``request``."""
        ...
