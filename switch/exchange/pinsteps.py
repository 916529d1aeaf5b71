"""The pipeline's PIN step: DE 52 (and a PIN change's new PIN block, DE 125, from a terminal) translated from the
source's key (a terminal's TPK or DUKPT key, a zone's ZPK) to the destination's zone key through the HSM, inline
with an in-process HSM, in a task with any other. A mixin of :class:`switch.exchange.pipeline.Pipeline`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hsm.api import PinKey, translate_pin
from hsm.errors import HsmError
from switch.exchange.context import Exchange
from switch.exchange.lifecycle import DECIDE, Outcome
from switch.exchange.linksteps import Action, Step
from switch.exchange.ports import Upstream
from switch.exchange.services import NodePorts
from switch.model.codes import ResponseCode

log = logging.getLogger("bulkhead.pipeline")

# HSM error codes that mean the PIN block itself is bad (the cardholder's or terminal's data, not the switch):
# 20 PIN block does not contain valid values, 24 PIN length out of range (payShield host command manual).
_PIN_DATA_ERRORS = frozenset({"20", "24"})


class PinSteps:
    """See the module docstring."""

    if TYPE_CHECKING:
        node: NodePorts

        def _later(self, x: Exchange, action: Action) -> None: ...
        def _send(self, x: Exchange) -> Step | None: ...
        def _respond(self, x: Exchange) -> Step | None: ...

    def _pin_args(self, x: Exchange, link: Upstream) -> bool | tuple[PinKey, PinKey, str, str]:
        """What translating DE 52 from the source's key (a terminal's TPK: CA; a zone's ZPK: CC) to the
        destination's ZPK takes; True when there is nothing to translate (a source without a key forwards DE 52
        as it came: source and destination share the zone key), False with the response decided when it cannot
        be done."""
        msg = x.request
        source_key = self.node.source_key(x.source, msg)
        if source_key is None:
            return True
        destination_key = self.node.link_key(link.name)
        block = msg.fields[52]
        pan = msg.pan
        if destination_key is None or self.node.hsm is None or not isinstance(block, bytes) or not pan \
                or len(pan) < 13:
            why = ("no pin_key on " + link.name) if destination_key is None else "no PAN or PIN block to translate"
            log.warning("exchange %s: PIN cannot be translated (%s)", x.trace_id, why)
            code = ResponseCode.SYSTEM_MALFUNCTION if destination_key is None else ResponseCode.FORMAT_ERROR
            x.decide(DECIDE, x.network.make_response(msg, code), Outcome.ERROR)
            return False
        # 12 right-most digits without the check digit (ISO 9564-1 format 0); the PLUS format (04) of older ATM
        # fleets binds the PIN to the whole PAN, which the HSM takes in that field (payShield format 04).
        account = pan if source_key.format == "04" else pan[-13:-1]
        return source_key, destination_key, block.hex().upper(), account

    def _pin(self, x: Exchange) -> Step | None:
        """Translate DE 52 for the destination: inline with an in-process HSM (tens of microseconds of CPU, less
        than handing the exchange to a task), in a task with any other."""
        assert x.link is not None
        if self.node.key_pending(x.source, x.request.meta.received_ns):  # its key is being changed: wait for it
            self._later(x, self._translate_pin)
            return None
        args = self._pin_args(x, x.link)
        if args is True:
            return self._send
        if args is False:
            return self._respond
        inline = self.node.inline_hsm
        if inline is None:
            self._later(x, self._translate_pin)
            return None
        source, destination, block, account = args
        new_pin = x.request.fields.get(125) if x.gate is not None else None
        try:
            result = inline.translate_pin_now(source, destination, block, account)
            if isinstance(new_pin, str):  # a PIN change's new PIN block, under the same key (switch.exchange.terminals)
                x.request.fields[125] = inline.translate_pin_now(source, destination, new_pin, account).pin_block
        except HsmError as exc:
            return self._pin_failed(x, exc)
        x.request.fields[52] = bytes.fromhex(result.pin_block)
        return self._send

    async def _translate_pin(self, x: Exchange) -> Step | None:
        assert x.link is not None and self.node.hsm is not None
        await self.node.key_settled(x.source)
        args = self._pin_args(x, x.link)
        if isinstance(args, bool):
            return self._send if args else self._respond
        source, destination, block, account = args
        new_pin = x.request.fields.get(125) if x.gate is not None else None
        try:
            result = await translate_pin(self.node.hsm, source, destination, block, account)
            if isinstance(new_pin, str):
                x.request.fields[125] = (await translate_pin(self.node.hsm, source, destination, new_pin,
                                                             account)).pin_block
        except HsmError as exc:
            return self._pin_failed(x, exc)
        x.request.fields[52] = bytes.fromhex(result.pin_block)
        return self._send

    def _pin_failed(self, x: Exchange, exc: HsmError) -> Step:
        bad_block = exc.code in _PIN_DATA_ERRORS
        log.info("exchange %s: PIN translation failed (HSM error %s)", x.trace_id, exc.code)
        code = ResponseCode.INCORRECT_PIN if bad_block else ResponseCode.SYSTEM_MALFUNCTION
        x.decide(DECIDE, x.network.make_response(x.request, code),
                 Outcome.DECLINED if bad_block else Outcome.ERROR)
        x.notes.append(f"PIN translation failed: HSM error {exc.code}")
        return self._respond
