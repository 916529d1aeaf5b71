"""What the EBCDIC networks share (Mastercard, American Express; VISA reads its code page with the same check).

Reference section 2.4: pyiso8583 and cardutil use Python's ``cp500``; danil/iso8583's Mastercard codec uses IBM
code page 037. The two agree on digits (0xF0-0xF9), letters (A = 0xC1) and space (0x40) and differ at seven code
points (``[ ! ] ^ ¢ ¬ |``). A network object decodes and encodes its reference code page (cp500); a link whose
peer writes another one has its framer translate each body between the two (:class:`Recoder`): decoded with one
compiled codec, re-encoded with the other. Both code pages map all 256 bytes one to one, so nothing is lost, and the
translation costs a decode and an encode per message on such a link only.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from switch.model.errors import DecodeError, EncodeError
from switch.wire.codec import Codec
from switch.wire.framing.base import Frame, FrameEncodeError, Framer

DEFAULT_CODE_PAGE = "cp500"
CODE_PAGES = ("cp500", "cp037")  # the two the public implementations use (reference section 2.4)


# A field of an all-EBCDIC layout: (kind, size), kind "n"/"a" fixed text of size characters, "ll"/"lll" text after
# 2/3 EBCDIC length digits, "b" fixed bytes, "lllb" bytes after 3 EBCDIC length digits.
Layout = tuple[str, int]


def _field(layout: Layout, code_page: str) -> dict[str, Any]:
    kind, size = layout
    if kind in ("n", "a"):
        return {"data_enc": code_page, "len_enc": code_page, "len_type": 0, "max_len": size}
    if kind == "b":
        return {"data_enc": "b", "len_enc": code_page, "len_type": 0, "max_len": size}
    if kind == "lllb":
        return {"data_enc": "b", "len_enc": code_page, "len_type": 3, "max_len": size}
    if kind in ("ll", "lll"):
        return {"data_enc": code_page, "len_enc": code_page, "len_type": len(kind), "max_len": size}
    raise ValueError(f"unknown layout kind {kind!r}")


def ebcdic_spec(layout: Mapping[int, Layout], code_page: str = DEFAULT_CODE_PAGE) -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec dict of bodies whose MTI and text are in ``code_page`` (EBCDIC), with binary primary and
    secondary bitmaps, and whose fields are laid out as ``layout`` says."""
    spec: dict[str, dict[str, Any]] = {
        "h": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 0},
        "t": {"data_enc": code_page, "len_enc": code_page, "len_type": 0, "max_len": 4},
        "p": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8},
        "1": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8},
    }
    for number, entry in layout.items():
        spec[str(number)] = _field(entry, code_page)
    return spec


def binary_fields(layout: Mapping[int, Layout]) -> frozenset[int]:
    """The fields of ``layout`` that carry bytes (bytes in the canonical message too)."""
    return frozenset(number for number, (kind, _) in layout.items() if kind in ("b", "lllb"))


def code_page_problem(name: str) -> str | None:
    """Why ``name`` cannot be a link's code page (None: it can). Text fields are cut by byte counts and the
    translation must lose nothing, so it must be a single-byte code page that maps all 256 bytes one to one."""
    try:
        codecs.lookup(name)
    except LookupError:
        return f"unknown code page {name!r}"
    every = bytes(range(256))
    try:
        single = len(text := every.decode(name)) == 256 and text.encode(name) == every
    except (UnicodeError, ValueError):
        single = False
    return None if single else f"{name!r} is not a single-byte code page mapping all 256 bytes one to one"


class Recoder:
    """Bodies between a link's code page (``link``, a codec of the network's spec in that code page) and the
    network's reference one (``reference``). Sans-I/O; holds no per-message state, so one serves every connection
    of a link."""

    __slots__ = ("link", "reference")

    def __init__(self, link: Codec, reference: Codec) -> None:
        self.link = link
        self.reference = reference

    def __repr__(self) -> str:
        return f"Recoder({self.link.name} <-> {self.reference.name})"

    def inbound(self, body: bytes) -> bytes:
        """A body from the link in the reference code page. One the link's codec cannot read goes on as it came:
        the network's decoder then says what is wrong with it (and the link answers as for any such body)."""
        try:
            mti, fields = self.link.decode(body)
            return self.reference.encode(mti, fields)
        except (DecodeError, EncodeError, ValueError):
            return body

    def outbound(self, body: bytes) -> bytes:
        """A body the network encoded, in the link's code page. The network built it, so it decodes; a character
        the link's code page cannot carry is our error, not the peer's."""
        try:
            mti, fields = self.reference.decode(body)
            return self.link.encode(mti, fields)
        except (DecodeError, EncodeError, ValueError) as exc:
            raise FrameEncodeError(f"not expressible in the link's code page: {type(exc).__name__}") from None


class RecodingFramer:
    """A framer whose bodies are translated by ``recoder`` on the way in and out (a link whose code page is not
    the network's reference one); framing itself, keep-alives and errors are the inner framer's."""

    __slots__ = ("inner", "recoder")

    def __init__(self, inner: Framer, recoder: Recoder) -> None:
        self.inner = inner
        self.recoder = recoder

    def receive_data(self, data: bytes) -> None:
        self.inner.receive_data(data)

    def next_frame(self) -> Frame | None:
        frame = self.inner.next_frame()
        if frame is None or frame.keepalive or not frame.body:
            return frame
        return Frame(self.recoder.inbound(frame.body), frame.header)

    def encode(self, body: bytes, reply_to: Frame | None = None) -> bytes:
        return self.inner.encode(self.recoder.outbound(body) if body else body, reply_to)

    def keepalive_reply(self, frame: Frame) -> bytes | None:
        return self.inner.keepalive_reply(frame)

    def keepalive_probe(self) -> bytes | None:
        return self.inner.keepalive_probe()

    @property
    def buffered(self) -> int:
        return self.inner.buffered
