"""The read side of a simple frame server (the issuer simulator, a processor cell's internal link).

:func:`read_frames` is the loop both run per connection: bytes in, frames out to a callback, until the peer
closes. The write side is :class:`switch.infra.outbox.Outbox`. The node's own links read through
:meth:`switch.runtime.links.connection.Connection.frames`, which adds idle timeouts and keep-alive replies.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from switch.wire.framing import Frame, Framer

READ_SIZE = 65536


async def read_frames(stream: trio.SocketStream, framer: Framer, on_frame: Callable[[Frame], None]) -> None:
    """Feed what arrives on ``stream`` to ``framer`` and call ``on_frame`` for every complete frame (keep-alives
    included), in order. Returns on EOF or a broken or closed stream. A
    :class:`~switch.model.errors.FramingError` propagates: the byte stream cannot be delimited any more, so the
    caller counts it and closes the connection."""
    while True:
        try:
            data = await stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return
        framer.receive_data(data)
        while (frame := framer.next_frame()) is not None:
            on_frame(frame)
