"""VISA (BASE I / V.I.P.): the network registered as ``visa`` (setup.cfg, ``bulkhead.schemes``).

Modules: ``framing`` (VMLH, session control, the BASE I header chain on the wire), ``header`` (the 22-byte header
and the reject header field by field), ``spec`` (the body's field formats and the link dialects), ``dialect`` (a
link's codec and the translation to the reference dialect), ``fields`` (DE 44, 60, 62, 63, 126 inside),
``codes`` (DE 39), ``link`` (link options), ``network`` (the contract; network management is ISO 8583:1987's,
``schemes.iso87.Iso87Session``, with the link's DE 70 codes and key field).
What stands in for facts the public sources do not confirm is listed in the README, "VISA (BASE I)".
"""

from schemes.visa.codes import VISA_CODES
from schemes.visa.dialect import codec_for
from schemes.visa.network import ECHO_FIELDS, MASKING, VisaNetwork
from schemes.visa.spec import DEFAULT_DIALECT

NETWORK = VisaNetwork(
    name="visa",
    codec=codec_for(DEFAULT_DIALECT),
    binary_fields=frozenset({52, 55, 64, 96, 128}),
    echo_fields=ECHO_FIELDS,
    description="VISA BASE I / V.I.P.: VMLH + BASE I header, BCD numerics, EBCDIC text",
    masking=MASKING,
    codes=VISA_CODES,
    framings=("visa",),
)

__all__ = ["NETWORK"]
