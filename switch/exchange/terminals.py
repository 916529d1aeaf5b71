"""The pipeline's steps for requests from the bank's own terminals (a listener with ``atmp = true``): the ATM
processor (ATMP, :mod:`switch.runtime.atmhost` on the node, its rules in :mod:`atmp`) admits the terminal, checks
its MAC, answers what only concerns it (dispense confirmations, key exchange, device status, totals), gives each
terminal's own PIN key, and records the outcome of a reversal advice (the cash that did not go out) before the
terminal is answered. A mixin of :class:`switch.exchange.pipeline.Pipeline`, as :mod:`switch.exchange.linksteps`
is: requests from other listeners never enter these steps (one dictionary lookup decides).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hsm.errors import HsmError
from switch.exchange import identity
from switch.exchange.context import Exchange
from switch.exchange.lifecycle import DECIDE, Outcome
from switch.exchange.linksteps import Action, Step
from switch.exchange.services import NodePorts
from switch.model.codes import ResponseCode, is_approval

log = logging.getLogger("bulkhead.pipeline")


class TerminalSteps:
    """Steps for a terminal's requests; see the module docstring."""

    if TYPE_CHECKING:
        node: NodePorts

        def _later(self, x: Exchange, action: Action) -> None: ...
        def _route(self, x: Exchange) -> Step | None: ...
        def _network(self, x: Exchange) -> Step | None: ...
        def _respond(self, x: Exchange) -> Step | None: ...
        def _journal(self, x: Exchange) -> Step | None: ...
        async def _unencodable(self, x: Exchange) -> Step | None: ...

    def _terminal(self, x: Exchange) -> Step | None:
        gate = x.gate
        assert gate is not None
        msg = x.request
        refusal = gate.admit(msg)
        if refusal is not None:
            log.info("exchange %s from %s: terminal %s refused: %s", x.trace_id, x.source, msg.text(41) or "-",
                     refusal.reason)
            x.notes.append(f"terminal refused: {refusal.reason}")
            x.decide(DECIDE, x.network.make_response(msg, ResponseCode(refusal.code)), Outcome.DECLINED)
            return self._respond
        if gate.checks_mac(msg) or gate.local(msg):
            self._later(x, self._terminal_checked)
            return None
        return self._network if msg.is_network else self._route

    async def _terminal_checked(self, x: Exchange) -> Step | None:
        gate = x.gate
        assert gate is not None
        msg = x.request
        if gate.checks_mac(msg):
            try:
                good = await gate.verify_mac(msg, x.frame.body)
            except HsmError as exc:
                log.error("exchange %s: terminal MAC not checked (HSM error %s)", x.trace_id, exc.code)
                good = False
            if not good:
                log.warning("exchange %s: terminal %s: MAC does not verify", x.trace_id, msg.text(41) or "-")
                x.notes.append("terminal MAC does not verify")
                self.node.mac_failed(x.source)
                x.decide(DECIDE, x.network.make_response(msg, ResponseCode.SECURITY_VIOLATION), Outcome.DECLINED)
                return self._respond
        if not gate.local(msg):
            return self._network if msg.is_network else self._route
        response = await gate.answer(msg)
        code = response.response_code
        outcome = Outcome.NETWORK if msg.is_network else (
            Outcome.APPROVED if code is not None and is_approval(code) else Outcome.DECLINED)
        x.decide(DECIDE, response, outcome)
        return self._respond

    async def _terminal_respond(self, x: Exchange) -> Step | None:
        """The ATMP's record of the exchange, then the answer under the terminal's MAC where it has one."""
        gate, response = x.gate, x.response
        assert gate is not None and response is not None
        if gate.follows(x.request, response):
            sent = x.request
            if x.source_ids:  # as the terminal sent it: its DE 90 names its own 0200, not what went upstream
                sent = sent.copy()
                identity.restore(sent, x.source_ids)
            await gate.after(sent, response)
        if not gate.signs(x.request):
            try:
                x.body = x.network.encode(response)
            except Exception as exc:
                log.warning("exchange %s: response not encodable (%s); answering 96", x.trace_id,
                            type(exc).__name__)
                return await self._unencodable(x)
            return self._journal
        try:
            x.body = await gate.sign(response, x.request)
        except HsmError as exc:  # sent without a MAC: the terminal refuses it and asks again
            log.error("exchange %s: terminal response MAC not made (HSM error %s)", x.trace_id, exc.code)
            x.body = x.network.encode(response)
        except Exception as exc:
            log.warning("exchange %s: response not encodable (%s); answering 96", x.trace_id, type(exc).__name__)
            return await self._unencodable(x)
        return self._journal
