"""Text in EBCDIC code pages through translation tables (switch.wire.compiled._text): the same text, bytes and
exceptions as decoding and encoding by the code page's name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.wire.compiled._text import decoder, encoder, latin1_permutation

EVERY_BYTE = bytes(range(256))


@pytest.mark.parametrize("enc", ["cp500", "cp037"])
def test_ebcdic_code_pages_are_latin1_permutations(enc: str) -> None:
    assert latin1_permutation(enc) is not None
    assert decoder(enc)(EVERY_BYTE) == EVERY_BYTE.decode(enc)
    text = EVERY_BYTE.decode(enc)
    assert encoder(enc)(text) == text.encode(enc) == EVERY_BYTE


@pytest.mark.parametrize("enc", ["ascii", "latin-1", "utf-8", "cp1140", "cp273", "gbk", "no-such-codec"])
def test_other_encodings_keep_the_lookup(enc: str) -> None:
    # Latin-1 itself and the names CPython special-cases need no table; cp1140 (the euro sign where cp500 has the
    # currency sign) and cp273 map onto characters beyond Latin-1; multi-byte and unknown codecs are not
    # single-byte. All of them still decode and encode by name.
    assert latin1_permutation(enc) is None
    if enc not in ("gbk", "no-such-codec"):
        text = EVERY_BYTE[:128].decode(enc)
        assert decoder(enc)(EVERY_BYTE[:128]) == text
        assert encoder(enc)(text) == text.encode(enc)


def test_examples() -> None:
    assert decoder("cp500")(bytes.fromhex("C1C2C3F0F1F240")) == "ABC012 "
    assert encoder("cp500")("ABC012 ") == bytes.fromhex("C1C2C3F0F1F240")
    assert encoder("cp037")("[!]") == bytes.fromhex("BA5ABB")  # where cp500 and cp037 differ
    assert encoder("cp500")("[!]") == bytes.fromhex("4A4F5A")


@given(st.text(max_size=40))
def test_encode_fails_exactly_where_the_code_page_fails(text: str) -> None:
    try:
        expected: bytes | type[Exception] = text.encode("cp500")
    except UnicodeEncodeError:
        expected = UnicodeEncodeError
    try:
        got: bytes | type[Exception] = encoder("cp500")(text)
    except UnicodeEncodeError:
        got = UnicodeEncodeError
    assert got == expected


def test_an_unknown_codec_still_fails_per_call() -> None:
    with pytest.raises(LookupError):
        decoder("no-such-codec")(b"x")
    with pytest.raises(LookupError):
        encoder("no-such-codec")("x")
