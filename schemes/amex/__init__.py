"""American Express: the network registered as ``amex`` (setup.cfg, ``bulkhead.schemes``).

Modules: ``spec`` (the ISO 8583:1993 EBCDIC body), ``fields`` (the 1993 fields and their ISO 8583:1987
counterparts: POS data code, function and reason codes, DE 12, 30, 56), ``codes`` (DE 39 action codes), ``link``
(framing counting its own length, network management codes, the code page), ``network`` (the contract; network
management is ISO 8583:1987's session with the 1993 function codes in the canonical DE 70). What stands in for facts
the public sources do not confirm is listed in the README, "American Express".
"""

from schemes.amex.codes import AMEX_CODES
from schemes.amex.link import codec_for
from schemes.amex.network import ECHO_FIELDS, AmexNetwork
from schemes.amex.spec import BINARY_FIELDS
from schemes.ebcdic import DEFAULT_CODE_PAGE

NETWORK = AmexNetwork(
    name="amex",
    codec=codec_for(DEFAULT_CODE_PAGE),
    binary_fields=BINARY_FIELDS,
    echo_fields=ECHO_FIELDS,
    description="American Express: 2-byte length counting itself, ISO 8583:1993 MTIs and action codes, EBCDIC",
    codes=AMEX_CODES,
    framings=("binary2",),
    # No counterpart of ISO 8583:1987's DE 28 in the public American Express layout (README "American Express"):
    # an ATM of the bank sends no surcharge on an American Express card.
    acquirer_fee=False,
)

__all__ = ["NETWORK"]
