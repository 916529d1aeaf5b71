"""A supervised process dies with its supervisor, in every window (issue 11, item 2).

A supervisor that is killed (SIGKILL, OOM) cannot stop its children. A child that outlives it keeps its port and
its lock, so the next node would sign on to an orphan and fail on the orphan's lock. Polling the parent from the
child missed the window before the poll started: a cell polled only after loading its state, about a second
after it was started.

The supervisor holds the write end of a pipe (:class:`Lifeline`) and never writes to it. Each child gets the
read end (``--lifeline FD``). The first thing the child does (:func:`hold_lifeline`) is start a thread that
blocks reading it. When the supervisor process ends, however it ends, the kernel closes the write end. The read
then returns end of file, and the thread sends the child SIGTERM, an ordinary first signal, so the child stops in
order. If the supervisor died before the child started watching, the read returns end of file at once.

Linux's parent-death signal (prctl PR_SET_PDEATHSIG) was the first design and is not used. It fires when the
thread that forked the child exits, not when the process does. trio starts processes from its worker threads,
which exit after 10 s idle, so every cell got SIGTERM 10 s after each start.

Children also leave the terminal's process group (``start_new_session``, switch.infra.procsup) and ignore
SIGINT and SIGHUP (:func:`ignore_terminal_signals`). A Ctrl-C therefore reaches the node alone, and the node
stops its children after it has drained (issue 11, item 3).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading

log = logging.getLogger("bulkhead.supervisor")

LIFELINE_OPTION = "--lifeline"


class Lifeline:
    """The supervisor's side: a pipe whose read end every child inherits (:attr:`fd`, passed with ``pass_fds``)
    and whose write end only this process holds (both ends are close-on-exec here, PEP 446). :meth:`close` once
    every child has stopped."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()

    def close(self) -> None:
        for fd in (self.fd, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


def hold_lifeline(fd: int, what: str) -> None:
    """The child's side, first thing at start: SIGTERM this process when the supervisor holding the pipe's write
    end goes away. ``what`` names the process in the log line ("cell 3")."""
    os.set_inheritable(fd, False)  # this process's own children (none today) must not keep the supervisor "alive"

    def watch() -> None:
        try:
            while os.read(fd, 64):  # the supervisor never writes: anything read is ignored, b"" is its end
                pass
        except OSError:
            pass
        log.warning("%s: the supervising process is gone; stopping", what)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def ignore_terminal_signals() -> None:
    """A supervised process takes no orders from the terminal: its supervisor stops it, after draining. Ctrl-C
    (SIGINT) and a closed terminal (SIGHUP) reach the node, which then stops its children in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
