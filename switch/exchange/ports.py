"""The links as the exchange pipeline sees them: the connection a request came in on (:class:`Source`), a link to
a destination (:class:`Upstream`), and what they raise. The node's services are
:class:`switch.exchange.services.NodePorts`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from switch.contracts.network import Network, Rejected
from switch.exchange.identity import LinkIdentity
from switch.model.errors import BulkheadError
from switch.model.message import Message
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
