"""The pipeline's steps for what a link asks of a message beyond routing: the switch's own identity upstream
(switch.exchange.identity) and the MAC through the HSM on links configured for it (switch.exchange.mac). A mixin of
:class:`switch.exchange.pipeline.Pipeline`, kept apart so that the pipeline reads as the common path; links
without an identity or a MAC never enter these steps.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Union

from hsm.errors import HsmError
from switch.exchange import identity, mac
from switch.exchange.context import Exchange
from switch.exchange.identity import LinkIdentity
from switch.exchange.lifecycle import DECIDE, NO_ANSWER, Outcome
from switch.exchange.services import NodePorts
from switch.model.codes import ResponseCode
from switch.model.errors import EncodeError
from switch.model.message import Message

log = logging.getLogger("bulkhead.pipeline")

# A step: the exchange in, the next step out (None: parked or over).
Step = Callable[[Exchange], Union["Step", None]]
# An async action: runs in a task, then hands back the step to continue with.
Action = Callable[[Exchange], Awaitable[Step | None]]


class LinkSteps:
    """Identity and MAC steps (see the module docstring); the pipeline provides the steps they hand on to."""

    node: NodePorts

    if TYPE_CHECKING:
        def _later(self, x: Exchange, action: Action) -> None: ...
        def _route(self, x: Exchange) -> Step | None: ...
        def _pin(self, x: Exchange) -> Step | None: ...
        def _send(self, x: Exchange) -> Step | None: ...
        def _send_now(self, x: Exchange) -> Step | None: ...
        def _take_answer(self, x: Exchange, answer: Message) -> Step | None: ...
        async def _fallback(self, x: Exchange) -> Step | None: ...
        def _respond(self, x: Exchange) -> Step | None: ...
        def _journal(self, x: Exchange) -> Step | None: ...
        async def _unencodable(self, x: Exchange) -> Step | None: ...

    # -- the switch's own identity upstream (switch.exchange.identity) ---------------------------------------
    def _identify(self, x: Exchange, link: LinkIdentity) -> None:
        """Rewrite the request into the link's identity now, or note the journal lookups that must come first (a
        repeat or reversal whose original the memory no longer holds: :meth:`_lookup_identity`, in a task)."""
        msg = x.request
        memory = self.node.upstream_identity
        if link.own_stan and (msg.mti[3] in "13" or 90 in msg.fields):
            lookups = identity.needs_lookup(msg, x.source, memory)
            if lookups:
                x.identity_lookups = lookups
                return
        x.source_ids = identity.rewrite(msg, x.source, link, memory)

    async def _lookup_identity(self, x: Exchange) -> None:
        """What the journal says the original was sent under, then the rewrite (:meth:`_identify`'s second half).
        A journal that cannot be read leaves the original unknown: the message goes under a fresh identity (the
        network then cannot match it, as it could not without the switch)."""
        lookups, x.identity_lookups = x.identity_lookups, None
        link = x.link.identity if x.link is not None else None
        if not lookups or link is None:
            return
        memory = self.node.upstream_identity
        for lookup in lookups:
            try:
                found = await self.node.find_upstream(x.source, lookup)
            except Exception as exc:
                log.warning("exchange %s: journal not read for the original's upstream identity (%s)", x.trace_id,
                            type(exc).__name__)
                found = None
            if found is None:
                log.info("exchange %s: %s names an original not sent upstream from here (stan %s)", x.trace_id,
                         x.request.mti, lookup.stan)
            identity.remember(x.request, x.source, memory, lookup, found)
        x.source_ids = identity.rewrite(x.request, x.source, link, memory)

    async def _identified(self, x: Exchange) -> Step | None:
        await self._lookup_identity(x)
        msg = x.request
        return self._pin if 52 in msg.fields and self.node.source_key(x.source, msg) is not None else self._send

    # -- MAC (switch.exchange.mac) ----------------------------------------------------------------------------
    async def _verify_request_mac(self, x: Exchange) -> Step | None:
        """A request from a MAC link: routed only when its MAC verifies (under the key of its receive time, then
        the other one within the two-key window); otherwise answered with the link's MAC-failure code, counted,
        and never routed."""
        msg, source = x.request, x.source
        if self.node.key_pending(source, msg.meta.received_ns):
            await self.node.key_settled(source)
        hsm = self.node.hsm
        if hsm is None:
            return self._mac_error(x, "no HSM")
        try:
            verified = await mac.verify(hsm, self.node.macs[source], self.node.mac_keys(source, msg.meta.received_ns),
                                        msg, x.frame.body)
        except HsmError as exc:
            return self._mac_error(x, f"HSM error {exc.code}")
        if not verified:
            self.node.mac_failed(source)
            log.warning("exchange %s from %s: %s stan %s: MAC does not verify; answering %s", x.trace_id, source,
                        msg.mti, msg.stan, self.node.mac_failure_codes[source])
            x.notes.append("MAC does not verify")
            x.decide(DECIDE, x.network.make_response(msg, self.node.mac_failure_codes[source]), Outcome.DECLINED)
            return self._respond
        mac.strip(msg)  # its MAC belongs to the link it came on, not to where it goes
        return self._route

    def _mac_error(self, x: Exchange, why: str) -> Step:
        log.error("exchange %s: MAC not checked or made (%s); answering 96", x.trace_id, why)
        x.notes.append(f"MAC not checked or made: {why}")
        x.decide(DECIDE, x.network.make_response(x.request, ResponseCode.SYSTEM_MALFUNCTION), Outcome.ERROR)
        return self._respond

    async def _verify_answer_mac(self, x: Exchange, answer: Message) -> Step | None:
        """A response on a MAC link counts only when its MAC verifies (the current key, then the previous one
        within the window: a response to a request sent under the old key). One that does not is no valid answer:
        counted, and the exchange goes the way of an unanswered one (stand-in or 91, and a reversal)."""
        link, hsm = x.link, self.node.hsm
        assert link is not None
        if self.node.key_pending(link.name, answer.meta.received_ns):
            # Received after the answer that carried a new MAC key (a key exchange the node asked for, or the
            # network's): it may be MACed under that key, which the HSM is still importing.
            await self.node.key_settled(link.name)
        keys = self.node.mac_keys(link.name, answer.meta.received_ns)
        try:
            verified = hsm is not None and answer.meta.wire is not None and await mac.verify(
                hsm, self.node.macs[link.name], keys, answer, answer.meta.wire)
        except HsmError as exc:
            log.error("exchange %s: response MAC not checked (HSM error %s)", x.trace_id, exc.code)
            verified = False
        if verified:
            mac.strip(answer)
            return functools.partial(self._take_answer, answer=answer)
        self.node.mac_failed(link.name)
        log.warning("exchange %s: the response from %s has a MAC that does not verify: taken as no answer",
                    x.trace_id, link.name)
        x.notes.append("response MAC does not verify")
        x.advance(NO_ANSWER)
        return await self._fallback(x)

    async def _sign_request(self, x: Exchange) -> Step | None:
        """The request's MAC under the destination link's current MAC key, right before it is sent."""
        link, hsm = x.link, self.node.hsm
        assert link is not None
        if hsm is None:
            return self._mac_error(x, "no HSM")
        msg = x.request  # already under the link's identity (switch.exchange.identity): what is sent is signed
        try:
            await mac.sign(hsm, self.node.macs[link.name], self.node.mac_key(link.name), link.network, msg)
        except HsmError as exc:
            return self._mac_error(x, f"HSM error {exc.code}")
        except EncodeError as exc:
            log.warning("exchange %s: cannot encode for %s: %s", x.trace_id, link.name, exc)
            x.decide(DECIDE, x.network.make_response(x.request, ResponseCode.FORMAT_ERROR), Outcome.FORMAT_ERROR)
            return self._respond
        return self._send_now

    async def _sign_response(self, x: Exchange) -> Step | None:
        assert x.response is not None
        try:
            x.body = await self._signed(x, x.response)
        except HsmError as exc:  # sent without a MAC: the network answers or drops it as its rules say
            log.error("exchange %s: response MAC not made (HSM error %s)", x.trace_id, exc.code)
            x.body = x.network.encode(x.response)
        except Exception as exc:
            log.warning("exchange %s: response not encodable (%s); answering 96", x.trace_id, type(exc).__name__)
            return await self._unencodable(x)
        return self._journal

    async def _signed(self, x: Exchange, response: Message) -> bytes:
        """``response`` encoded, with its MAC when its source is a MAC link."""
        hsm = self.node.hsm
        cfg = self.node.macs.get(x.source)
        if cfg is None or hsm is None or x.request.is_network:
            return x.network.encode(response)
        return await mac.sign(hsm, cfg, self.node.mac_key(x.source), x.network, response)
