"""A supervised process dies with its supervisor, in every window (issue 11, item 2).

A supervisor that is killed (SIGKILL, OOM) cannot stop its children. A child that outlives it keeps its port and
its lock, so the next node would sign on to an orphan and fail on the orphan's lock. Polling the parent from the
child misses the window before the poll starts: a cell polled only after loading its state, about a second after
it was started.

:func:`die_with_parent` runs first thing in the child, given the pid its supervisor had when it started the
child:

- On Linux it asks the kernel to send SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``, prctl(2)). The
  signal is delivered whatever the child is doing: importing, loading its state, or serving. It arrives as an
  ordinary first SIGTERM, so the child stops in order.
- Then it checks the parent is still the one it was started by. If the parent died between the fork and the
  prctl call, the child has already been reparented and no signal will ever come, so it exits at once.
- Where prctl is not available, the parent check and the caller's own poll (e.g. the cell's watcher) remain.

The supervisor passes its pid as ``--parent PID`` (see :data:`PARENT_OPTION`). Children also leave the terminal's
process group (``start_new_session``, switch.infra.procsup), so a Ctrl-C reaches the node alone, and the node
stops its children after it has drained (issue 11, item 3).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys

log = logging.getLogger("bulkhead.supervisor")

PARENT_OPTION = "--parent"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_ORPHANED = 4  # the supervisor was gone before the child could attach to it


def parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux). False where not supported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int, what: str) -> None:
    """Tie this process's life to ``parent``'s (the supervisor's pid when it started us). If the parent is
    already gone, exit with :data:`EXIT_ORPHANED`. ``what`` names the process in the log line ("cell 3")."""
    parent_death_signal()
    if os.getppid() != parent:  # reparented already: the supervisor died before the signal was armed
        log.warning("%s: the supervising process (pid %d) is gone; not starting", what, parent)
        sys.exit(EXIT_ORPHANED)


def ignore_terminal_signals() -> None:
    """A supervised process takes no orders from the terminal: its supervisor stops it, after draining. Ctrl-C
    (SIGINT) and a closed terminal (SIGHUP) reach the node, which then stops its children in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
