"""UnionPay (CUPS): the 46-byte header framing (``framing``, ``header``), the body (``spec``, ``fields``), response
codes (``codes``), network management and link options (``session``), all behind the network contract
(``network``). Registered as ``unionpay`` in the ``bulkhead.schemes`` entry-point group; the README's "UnionPay
(CUPS)" section lists every value that stands in for a fact no public source confirms."""

from schemes.unionpay.codes import UNIONPAY_CODES
from schemes.unionpay.network import ECHO_FIELDS, MASKING, UnionPayNetwork
from schemes.unionpay.spec import SPEC
from switch.wire.compiled import compile_codec

SCHEME = UnionPayNetwork(
    name="unionpay",
    codec=compile_codec("unionpay", SPEC),
    binary_fields=frozenset({52, 55, 64, 96, 128}),
    echo_fields=ECHO_FIELDS,
    description="UnionPay CUPS: 46-byte header, ASCII fields, binary bitmap, GBK text",
    masking=MASKING,
    codes=UNIONPAY_CODES,
    framings=("unionpay",),
)

__all__ = ["SCHEME", "SPEC", "UnionPayNetwork"]
