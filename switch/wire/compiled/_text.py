"""Text fields in a single-byte code page other than Latin-1 (EBCDIC: cp500, cp037, ...), without a codec lookup.

``bytes.decode(name)`` looks its codec up by name on every call, except for the few names CPython special-cases
(ascii, latin-1, utf-8): 40 bytes of cp500 cost about 2 µs that way, against 0.2 µs for Latin-1. A code page that
maps the 256 byte values one to one onto U+0000-U+00FF (cp500 and cp037 do: reference section 2.4) is a
permutation of Latin-1, so ``raw.translate(table).decode("latin-1")`` gives exactly its text, and
``text.encode("latin-1").translate(back)`` exactly its bytes; a character above U+00FF fails in Latin-1 where it
fails in the code page (UnicodeEncodeError either way), and decoding cannot fail in either. Any other code page,
or a name that is not a codec (its error is pyiso8583's to report, per message), keeps ``decode``/``encode`` by name.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from functools import cache

Decode = Callable[[bytes], str]
Encode = Callable[[str], bytes]

# Names CPython decodes and encodes without a lookup (Objects/unicodeobject.c, the normalised names).
_BUILTIN = frozenset({"ascii", "latin-1", "iso8859-1", "utf-8"})


@cache
def latin1_permutation(enc: str) -> tuple[bytes, bytes] | None:
    """(code page byte -> Latin-1 byte, Latin-1 byte -> code page byte) when ``enc`` is a permutation of Latin-1
    other than Latin-1 itself; None otherwise."""
    try:
        name = codecs.lookup(enc).name
    except LookupError:
        return None
    if name in _BUILTIN:
        return None
    try:
        text = bytes(range(256)).decode(enc)
    except (UnicodeError, ValueError):
        return None
    if len(text) != 256 or sorted(map(ord, text)) != list(range(256)):
        return None
    forward = bytes(map(ord, text))
    back = bytearray(256)
    for byte, latin1 in enumerate(forward):
        back[latin1] = byte
    return forward, bytes(back)


def decoder(enc: str) -> Decode:
    """``raw -> raw.decode(enc)``, the same text and the same exceptions."""
    tables = latin1_permutation(enc)
    if tables is None:
        return lambda raw: raw.decode(enc)
    forward = tables[0]
    return lambda raw: raw.translate(forward).decode("latin-1")


def encoder(enc: str) -> Encode:
    """``text -> text.encode(enc)``, the same bytes and the same exceptions."""
    tables = latin1_permutation(enc)
    if tables is None:
        return lambda text: text.encode(enc)
    back = tables[1]
    return lambda text: text.encode("latin-1").translate(back)
