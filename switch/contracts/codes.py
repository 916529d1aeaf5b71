"""Response codes on the wire and in the core: one table per network, in both directions.

A network's DE 39 values are mapped to the core's :class:`~switch.model.codes.ResponseCode` when a message is
decoded and back when one is encoded. A code the table does not know never crashes anything: it maps to the
table's documented default (a decline: an unknown code is never taken for an approval) and is counted, so an
operator sees it (``unknown`` by code; exported as a metric).

Tables: :data:`ISO87_CODES` (ISO 8583:1987, two characters: every core code as itself) and
:data:`ISO93_ACTION_CODES` (ISO 8583:1993 three-digit action codes; the correspondence follows the public ISO
1993 table and jPOS CMF, whose 1000-series lines up with the 1993 100-series).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from switch.model.codes import ResponseCode

RC = ResponseCode
MAX_UNKNOWN = 64  # distinct unknown codes counted one by one


class CodeTable:
    """Wire code <-> core code for one network.

    ``to_core`` maps what the network sends; ``unknown_default`` is the core code of anything else (counted in
    ``unknown``). ``to_wire`` maps the core's codes to the network's; a core code missing there is sent as
    ``wire_default``. A table that maps every core code to itself (:attr:`identity`) skips both lookups where it
    can (the node's hot path).
    """

    def __init__(self, name: str, to_core: Mapping[str, ResponseCode], *, unknown_default: ResponseCode,
                 to_wire: Mapping[ResponseCode, str] | None = None, wire_default: str | None = None) -> None:
        self.name = name
        self._to_core: dict[str, str] = {wire: core.value for wire, core in to_core.items()}
        if to_wire is None:  # the first wire code listed for each core code
            to_wire = {}
            for wire, core in to_core.items():
                to_wire.setdefault(core, wire)
        self._to_wire: dict[str, str] = {core.value: wire for core, wire in to_wire.items()}
        self.unknown_default = unknown_default
        self.wire_default = wire_default if wire_default is not None else self._to_wire[unknown_default.value]
        self.identity = all(w == c for w, c in self._to_core.items()) and all(
            c == w for c, w in self._to_wire.items())
        self.unknown: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"CodeTable({self.name}, {len(self._to_core)} codes, unknown -> {self.unknown_default.value})"

    def core(self, wire: str) -> str:
        """The core code (a :class:`ResponseCode` value) of a wire code; the default for an unknown one."""
        found = self._to_core.get(wire)
        if found is None:
            # Counted by the code as received, cut to a few characters and to a few dozen distinct codes (the rest
            # as "other"): a peer sending garbage cannot grow the count, or the metric it feeds, without bound.
            key = wire[:4] if wire[:4] in self.unknown or len(self.unknown) < MAX_UNKNOWN else "other"
            self.unknown[key] += 1
            return self.unknown_default.value
        return found

    def wire(self, core: str) -> str:
        """The network's code for a core code; a code that is already one of the network's own (UnionPay's A0,
        answered to a request whose MAC fails) goes out as it is."""
        found = self._to_wire.get(core)
        if found is not None:
            return found
        return core if core in self._to_core else self.wire_default

    def knows(self, wire: str) -> bool:
        return wire in self._to_core

    def core_or_same(self, wire: str) -> str:
        """The core code of a wire code the table knows, else the code as it is (a request's or an advice's DE 39,
        such as a reversal's reason, is the sender's: it is translated where it can be, never replaced)."""
        found = self._to_core.get(wire)
        return found if found is not None else wire

    def extended(self, name: str, to_core: Mapping[str, ResponseCode]) -> CodeTable:
        """This table with more wire codes read (``to_core``; a network's own codes beside a standard table's); the
        core's codes still go out as this table sends them."""
        known = {wire: ResponseCode(core) for wire, core in self._to_core.items()}
        return CodeTable(name, {**known, **to_core}, unknown_default=self.unknown_default,
                         to_wire={ResponseCode(core): wire for core, wire in self._to_wire.items()},
                         wire_default=self.wire_default)

    def wire_or_same(self, core: str) -> str:
        """The network's code for a core code the table knows, else the code as it is (see :meth:`core_or_same`)."""
        found = self._to_wire.get(core)
        return found if found is not None else core


ISO87_CODES = CodeTable("ISO 8583:1987", {code.value: code for code in ResponseCode},
                        unknown_default=RC.DO_NOT_HONOUR)

# ISO 8583:1993 action codes (DE 39, n3): 0xx approved, 1xx declined, 2xx declined with pick-up, 9xx the system's
# own. Several 1993 codes can mean the same core code; the first listed is the one sent.
_ISO93: dict[str, ResponseCode] = {
    "000": RC.APPROVED, "001": RC.HONOUR_WITH_ID, "002": RC.APPROVED_PARTIAL, "003": RC.APPROVED_VIP,
    "004": RC.APPROVED_UPDATE_TRACK3,
    "100": RC.DO_NOT_HONOUR, "101": RC.EXPIRED_CARD, "102": RC.SUSPECTED_FRAUD, "103": RC.CONTACT_ACQUIRER,
    "104": RC.RESTRICTED_CARD, "105": RC.CALL_SECURITY, "106": RC.PIN_TRIES_EXCEEDED, "107": RC.REFER_TO_ISSUER,
    "108": RC.REFER_TO_ISSUER_SPECIAL, "109": RC.INVALID_MERCHANT, "110": RC.INVALID_AMOUNT,
    "111": RC.INVALID_CARD_NUMBER, "112": RC.DO_NOT_HONOUR, "113": RC.UNACCEPTABLE_FEE,
    "114": RC.NO_UNIVERSAL_ACCOUNT, "115": RC.FUNCTION_NOT_SUPPORTED, "116": RC.INSUFFICIENT_FUNDS,
    "117": RC.INCORRECT_PIN, "118": RC.NO_CARD_RECORD, "119": RC.NOT_PERMITTED_CARDHOLDER,
    "120": RC.NOT_PERMITTED_TERMINAL, "121": RC.EXCEEDS_AMOUNT_LIMIT, "122": RC.SECURITY_VIOLATION,
    "123": RC.EXCEEDS_COUNT_LIMIT, "124": RC.VIOLATION_OF_LAW, "125": RC.DO_NOT_HONOUR,
    "200": RC.PICK_UP, "201": RC.EXPIRED_CARD_PICK_UP, "202": RC.SUSPECTED_FRAUD_PICK_UP,
    "203": RC.CONTACT_ACQUIRER_PICK_UP, "204": RC.RESTRICTED_CARD_PICK_UP, "205": RC.CALL_SECURITY_PICK_UP,
    "206": RC.PIN_TRIES_EXCEEDED_PICK_UP, "207": RC.PICK_UP_SPECIAL, "208": RC.LOST_CARD, "209": RC.STOLEN_CARD,
    "400": RC.APPROVED, "480": RC.UNABLE_TO_LOCATE, "800": RC.APPROVED,
    "902": RC.INVALID_TRANSACTION, "903": RC.RE_ENTER, "904": RC.FORMAT_ERROR, "905": RC.BANK_NOT_SUPPORTED,
    "906": RC.CUTOVER_IN_PROGRESS, "907": RC.ISSUER_INOPERATIVE, "908": RC.NO_ROUTE, "909": RC.SYSTEM_MALFUNCTION,
    "911": RC.RESPONSE_TOO_LATE, "912": RC.ISSUER_INOPERATIVE, "913": RC.DUPLICATE, "914": RC.UNABLE_TO_LOCATE,
    "915": RC.RECONCILIATION_ERROR, "923": RC.REQUEST_IN_PROGRESS,
}
# Core codes without a 1993 counterpart of their own go out as the nearest one.
_ISO93_OUT: dict[ResponseCode, str] = {
    RC.ERROR: "909", RC.CUSTOMER_CANCELLATION: "400", RC.CUSTOMER_DISPUTE: "100", RC.INVALID_RESPONSE: "904",
    RC.NO_ACTION_TAKEN: "909", RC.SUSPECTED_MALFUNCTION: "909", RC.FILE_UPDATE_NOT_SUPPORTED: "115",
    RC.DUPLICATE_FILE_UPDATE: "913", RC.FILE_UPDATE_FIELD_ERROR: "904", RC.FILE_UPDATE_LOCKED: "909",
    RC.FILE_UPDATE_FAILED: "909", RC.COMPLETED_PARTIALLY: "400", RC.NO_CREDIT_ACCOUNT: "114",
    RC.NO_INVESTMENT_ACCOUNT: "114", RC.NO_CHEQUE_ACCOUNT: "114", RC.NO_SAVINGS_ACCOUNT: "114",
    RC.ORIGINAL_AMOUNT_INCORRECT: "110", RC.HARD_CAPTURE: "200", RC.NO_SUCH_ISSUER: "908",
}
ISO93_ACTION_CODES = CodeTable("ISO 8583:1993 action codes", _ISO93, unknown_default=RC.DO_NOT_HONOUR,
                               to_wire={**{core: wire for wire, core in reversed(_ISO93.items())}, **_ISO93_OUT},
                               wire_default="909")
