"""Mastercard (Banknet / CIS over MIP): the network registered as ``mastercard`` (setup.cfg, ``bulkhead.schemes``).

Modules: ``spec`` (the EBCDIC body's field formats), ``fields`` (DE 48 TCC and sub-elements, DE 61, 63, 95, 112),
``codes`` (DE 39), ``link`` (framing and options, the code page), ``session`` (network management: group sign-on,
echo, key exchange), ``network`` (the contract). What stands in for facts the public sources do not confirm is
listed in the README, "Mastercard".
"""

from schemes.ebcdic import DEFAULT_CODE_PAGE
from schemes.mastercard.codes import MASTERCARD_CODES
from schemes.mastercard.link import codec_for
from schemes.mastercard.network import ECHO_FIELDS, MASKING, MastercardNetwork
from schemes.mastercard.spec import BINARY_FIELDS

NETWORK = MastercardNetwork(
    name="mastercard",
    codec=codec_for(DEFAULT_CODE_PAGE),
    binary_fields=BINARY_FIELDS,
    echo_fields=ECHO_FIELDS,
    description="Mastercard Banknet/CIS (MIP): 2-byte length, EBCDIC MTI and fields, binary bitmaps",
    masking=MASKING,
    codes=MASTERCARD_CODES,
    framings=("binary2",),
)

__all__ = ["NETWORK"]
