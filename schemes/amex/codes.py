"""American Express's DE 39: ISO 8583:1993 three-digit action codes, to and from the core's.

The table is ISO 8583:1993's (:data:`switch.contracts.codes.ISO93_ACTION_CODES`: 000 approved, 1xx declined, 2xx
declined with pick-up, 9xx the system's), which a public American Express interface uses (Hypercom ATP: ``000``
approved, ``912`` host unavailable), plus what that interface shows of American Express's own: ``800`` accepts
network management (1814; answered by the node to American Express's 1804 too), ``400`` accepts a reversal (ISO
1993), ``304`` a field edit error (read as 30). A code the table does not know is read as 05 (never an approval)
and counted (``bulkhead_unknown_response_codes``).
"""

from __future__ import annotations

from switch.contracts.codes import ISO93_ACTION_CODES
from switch.model.codes import ResponseCode as RC

NETMGMT_ACCEPTED = "800"
REVERSAL_ACCEPTED = "400"
FIELD_EDIT_ERROR = "304"

AMEX_CODES = ISO93_ACTION_CODES.extended("American Express (ISO 8583:1993 action codes)",
                                         {FIELD_EDIT_ERROR: RC.FORMAT_ERROR})
