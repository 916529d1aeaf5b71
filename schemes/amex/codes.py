"""American Express's DE 39: ISO 8583:1993 three-digit action codes, to and from the core's.

The table is ISO 8583:1993's (:data:`switch.contracts.codes.ISO93_ACTION_CODES`: 000 approved, 1xx declined, 2xx
declined with pick-up, 9xx the system's), which a public American Express interface uses (Hypercom ATP: ``000``
approved, ``912`` host unavailable), plus what that interface shows of American Express's own: ``800`` accepts
network management (1814; answered by the node to American Express's 1804 too), ``400`` accepts a reversal (ISO
1993), ``304`` a field edit error (read as 30). A code the table does not know is read as 05 (never an approval)
and counted (``bulkhead_unknown_response_codes``).
"""

from __future__ import annotations

from switch.contracts.codes import ISO93_ACTION_CODES, CodeTable
from switch.model.codes import ResponseCode as RC

NETMGMT_ACCEPTED = "800"
REVERSAL_ACCEPTED = "400"
FIELD_EDIT_ERROR = "304"

_TO_CORE: dict[str, RC] = {wire: RC(core) for wire, core in ISO93_ACTION_CODES._to_core.items()}
_TO_WIRE: dict[RC, str] = {RC(core): wire for core, wire in ISO93_ACTION_CODES._to_wire.items()}

AMEX_CODES = CodeTable(
    "American Express (ISO 8583:1993 action codes)",
    {**_TO_CORE, FIELD_EDIT_ERROR: RC.FORMAT_ERROR},
    unknown_default=RC.DO_NOT_HONOUR,
    to_wire=_TO_WIRE,
    wire_default=ISO93_ACTION_CODES.wire_default,
)
