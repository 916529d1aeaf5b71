"""Ways of feeding a framer: the whole stream at once, byte by byte, or in given chunks."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from switch.wire.framing import Frame, Framer, MalformedFrame


def drain(framer: Framer) -> list[Frame]:
    out: list[Frame] = []
    while (frame := framer.next_frame()) is not None:
        out.append(frame)
    return out


def feed_chunks(framer: Framer, chunks: Iterable[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        out.extend(drain(framer))
    return out


def feed_whole(framer: Framer, data: bytes) -> list[Frame]:
    return feed_chunks(framer, [data])


def feed_bytewise(framer: Framer, data: bytes) -> list[Frame]:
    return feed_chunks(framer, [data[i:i + 1] for i in range(len(data))])


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (sorted, deduplicated, clipped to the data)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def feed_tolerant(framer: Framer, chunks: Iterable[bytes]) -> list[Frame | MalformedFrame]:
    """Like :func:`feed_chunks`, but a frame the framer delimits and cannot read (MalformedFrame, which leaves the
    stream in step) is collected in order with the frames, as a connection hands it to its link."""
    out: list[Frame | MalformedFrame] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        while True:
            try:
                frame = framer.next_frame()
            except MalformedFrame as exc:
                out.append(exc)
                continue
            if frame is None:
                break
            out.append(frame)
    return out


def tolerant_ways(data: bytes) -> dict[str, list[bytes]]:
    """``data`` whole, byte by byte, and in three-byte pieces (frames across reads, several in one read)."""
    return {"whole": [data], "bytewise": [data[i:i + 1] for i in range(len(data))],
            "threes": [data[i:i + 3] for i in range(0, len(data), 3)]}
