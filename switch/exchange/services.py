"""What the exchange pipeline needs from the rest of the node, and nothing more (the composition root, the node,
provides it): routing's link choice, keys, the HSM, the journal, the store-and-forward queue, tasks.

The pipeline reaches the node only through this protocol, so it can be driven by a test with fakes, and the node
can change how it provides each service without the pipeline knowing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from hsm.api import Hsm, InlinePinTranslation, PinKey
from switch.config.links import MacConfig
from switch.contracts.network import KeyChange, NetworkSession
from switch.exchange.context import Exchange
from switch.exchange.identity import IdentityMemory, Lookup, SentAs
from switch.exchange.inflight import InFlightOriginals
from switch.exchange.ports import TerminalGate, Upstream
from switch.model.message import Message
from switch.routing import Destination
from switch.storage.records import JournalRecord

# Where the rest of an exchange goes when it must wait for something other than its upstream answer and its
# journal row (a remote HSM, a database write): run in a task.
Job = Callable[[], Awaitable[None]]
# Submit a journal row with what to call once it committed (None) or failed (the error).
JournalSubmit = Callable[[JournalRecord, Callable[[BaseException | None], None]], None]
# Continue an exchange in a task that runs the job.
Spawn = Callable[[Exchange, Job], None]


class NodePorts(Protocol):
    """The node's services the pipeline uses."""

    @property
    def name(self) -> str:
        """The node process's name, as the journal records it."""
        ...

    @property
    def draining(self) -> bool: ...

    @property
    def hsm(self) -> Hsm | None: ...

    @property
    def inline_hsm(self) -> InlinePinTranslation | None: ...

    def choose_link(self, destination: Destination) -> Upstream | None:
        """A usable link of ``destination`` (its pool's rule), or None when none is up."""
        ...

    def upstream(self, name: str) -> Upstream | None: ...

    def session_of(self, link: str) -> NetworkSession: ...

    def terminal_gate(self, source: str) -> TerminalGate | None:
        """The ATMP's gate for a listener of the bank's terminals (``atmp = true``); None for any other link."""
        ...

    def source_key(self, source: str, request: Message) -> PinKey | None:
        """The key DE 52 of ``request`` arrives under on link ``source`` (a terminal's or the link's)."""
        ...

    def link_key(self, link: str) -> PinKey | None:
        """The zone key link ``link`` expects DE 52 under, now (key exchange changes it)."""
        ...

    async def install_key(self, link: str, change: KeyChange, carrier: Message | None = None) -> bool:
        """Install a zone PIN or MAC key from ``link``'s key exchange (``carrier``: the message that carried it);
        ends the key exchange under way on the link (:meth:`key_changing`)."""
        ...

    def key_changing(self, link: str, since_ns: int, key_type: str | None = None) -> None:
        """A key exchange (of ``key_type``, "ZPK" or "ZAK"; None: either) is under way on ``link``: requests received
        from ``since_ns`` on wait for its outcome."""
        ...

    def key_pending(self, link: str, received_ns: int) -> bool:
        """Whether a request received on ``link`` at ``received_ns`` waits for the key exchange under way."""
        ...

    async def key_settled(self, link: str) -> None:
        """Until the key exchange under way on ``link`` (if any) is over."""
        ...

    macs: dict[str, MacConfig]
    """The links with MAC (switch.exchange.mac), by name; empty on most nodes (one truth test per message)."""

    mac_failure_codes: dict[str, str]
    """What a request whose MAC fails is answered, per MAC link (the link's or its network's code)."""

    def mac_keys(self, link: str, received_ns: int) -> tuple[str, ...]:
        """The MAC keys to try on a message received on ``link`` at ``received_ns`` (two-key window)."""
        ...

    def mac_key(self, link: str) -> str:
        """The MAC key of what the node sends on ``link`` now."""
        ...

    def mac_failed(self, link: str) -> None:
        """Count a MAC that did not verify on ``link``."""
        ...

    def cutover(self, link: str, business_date: str | None) -> None: ...

    # The per-exchange services are attributes (a callable, a dict), not methods: the node binds its journal's
    # and its tasks' own methods to them, so the pipeline's call reaches the service without a hop through the
    # node (each hop is a Python call on every exchange).
    journal: JournalSubmit
    """Submit a journal row; ``on_done`` runs on the event loop once it committed (None) or failed (the error, or a
    timeout). Raises, without calling ``on_done``, when it cannot be submitted at all."""

    async def saf_enqueue(self, items: list[tuple[str, Message, str]]) -> None:
        """Queue (destination, message, original trace id) entries durably, in one transaction: all or none."""
        ...

    async def saf_holder(self, links: tuple[str, ...], original_key: str) -> str | None:
        """Which of ``links`` the queue holds an unfinished entry for ``original_key`` for, if any."""
        ...

    spawn: Spawn
    """Continue an exchange in a task that runs the job."""

    awaiting_upstream: dict[int, Exchange]
    """Exchanges sent upstream that wait for their answer, by ``id()``: a node stopped hard reverses them."""

    business_dates: dict[str, str]
    """Per link, the settlement date (MMDD) its network's last cutover set (the journal's settlement date when the
    messages carry no DE 15)."""

    upstream_identity: IdentityMemory
    """What recent originals were sent upstream under (switch.exchange.identity)."""

    async def find_upstream(self, source: str, lookup: Lookup) -> SentAs | None:
        """What the journal says ``lookup``'s original from ``source`` was sent upstream under, if anything."""
        ...

    upstream_originals: InFlightOriginals
    """Exchanges upstream that may leave an advice behind, by original: a reversal or advice for the same original
    waits for them (switch.exchange.inflight)."""

    def finished(self, x: Exchange) -> None:
        """``x`` is over (once): free its place and count it."""
        ...

    def lost_reversal(self) -> None:
        """A reversal could not be queued (counted for the operator)."""
        ...
