"""Process locks: an exclusive ``flock`` on a file, held while a process owns something (a node's var_dir, a
cell's state).

The kernel drops a flock when its process dies, however it dies, so a crash never leaves a stale lock (unlike a
PID file). The holder writes its pid and a line saying what it is into the file. That is for people and for
:func:`holder`, which lets a starting node recognise a stray process; the flock is what counts.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from switch.model.errors import BulkheadError


class LockHeldError(BulkheadError):
    """Another process holds the lock."""


@dataclass(frozen=True)
class Holder:
    """What the lock file says about the process that holds it (both may be missing: an older holder, or one
    that died between taking the lock and writing)."""

    pid: int | None
    what: str


class ProcessLock:
    """An exclusive, non-blocking ``flock`` on ``path``; :meth:`acquire` raises ``error`` (a
    :class:`LockHeldError` by default) naming the holder when another process has it."""

    def __init__(self, path: Path, what: str, error: type[BulkheadError] = LockHeldError) -> None:
        self.path = path
        self.what = what  # written into the file: "node demo", "cell 3"
        self.error = error
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            found = holder(self.path)
            by = f"pid {found.pid}" if found.pid is not None else "another process"
            raise self.error(f"{self.path} is held by {by}" + (f" ({found.what})" if found.what else "")) \
                from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{self.what}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None


def is_held(path: Path) -> bool:
    """True when some process holds the lock on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our shared lock, if we got it
    return False


def holder(path: Path) -> Holder:
    """What the lock file at ``path`` says about its holder."""
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return Holder(None, "")
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    return Holder(pid, lines[1].strip() if len(lines) > 1 else "")
