"""A codec generated from a pyiso8583 spec dict: pyiso8583's behaviour at a fraction of its cost.

``compile_codec(name, spec)`` returns an object implementing :class:`switch.wire.codec.Codec` whose
``decode`` returns what :class:`switch.wire.codec.PyIsoCodec` returns and whose ``encode`` produces the same
bytes, raising :class:`switch.model.errors.DecodeError` / :class:`switch.model.errors.EncodeError` where
pyiso8583 rejects. pyiso8583 (4.x) stays the oracle: ``tests/codec`` compares the two on vectors, generated
messages and mutated input. No trio, no sqlalchemy.
"""

from switch.wire.compiled._spec import SpecError
from switch.wire.compiled.codec import CompiledCodec, compile_codec

__all__ = ["CompiledCodec", "SpecError", "compile_codec"]
