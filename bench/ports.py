"""Loopback ports chosen before anything listens on them, for the benchmark and the test suite.

Binding port 0, closing the socket and handing the number on is not safe: that number lies in the kernel's
ephemeral range (``net.ipv4.ip_local_port_range``, 32768-60999 by default), which is where the local end of every
outgoing connection on the machine comes from. Between the probe closing and a server binding the number, a
connection of a concurrent test run (or of the node itself) can take it, and the server fails with EADDRINUSE; a
connector that retries a port nobody listens on can even connect to itself (TCP simultaneous open). The kernel
never picks a port below the range, so a port from here can only be taken by a process that binds it by number.

Which to use:
- a server whose port is read back once it listens (``task_status.started(port)``, a node's listeners through
  ``Node.listeners`` or the ``status`` admin command): bind port 0 and keep the socket; nothing needed here;
- a number that must be known before its server binds, or that must stay meaningful after the server stops (a
  connector's hosts, ``[cells] base_port``, a node or issuer restarted on the same port, a port that must refuse
  connections): :func:`free_port` or :func:`free_port_block`.

Each port handed out is free at that moment (a bind to 127.0.0.1 succeeds) and reserved for the life of this
process by a POSIX lock on its byte of one shared lock file, so another process using this module (a second
pytest run, a benchmark) passes it by even before anything binds it; the kernel drops the locks when the process
exits, however it exits. This process never hands a port out twice, and starts its search at an offset keyed by
its pid, so concurrent runs start far apart.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import tempfile
import threading
from pathlib import Path

FLOOR = 20000  # below: well-known service ports (PostgreSQL's 5432) and the demo configuration's (8583, 9700...)
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_START = 32768  # the default, and where other systems' ranges start at the earliest
LOCK_FILE = Path(tempfile.gettempdir()) / "bulkhead-ports.lock"


class NoFreePortError(OSError):
    """Every port of the pool is taken (bound by someone, or reserved by another process)."""


def ephemeral_start(path: Path = EPHEMERAL_RANGE) -> int:
    """The first port of the kernel's ephemeral range."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: BSD and macOS start at 49152, Windows at 49152
        return LINUX_EPHEMERAL_START


class PortPool:
    """Ports ``low`` .. ``high - 1``, reserved across processes through byte locks on ``lock_file``."""

    def __init__(self, low: int, high: int, lock_file: Path) -> None:
        if not 0 < low < high <= 65536:
            raise ValueError(f"a port pool is 1 <= low < high <= 65536, not {low}..{high}")
        self.low, self.high = low, high
        self._lock_file = lock_file
        self._fd: int | None = None
        # A multiplicative hash spreads the consecutive pids of runs started together across the range.
        self._next = (os.getpid() * 2654435761) % (high - low)
        self._handed_out: set[int] = set()
        self._mutex = threading.Lock()  # a node under test may run in a thread of its own

    def take(self, count: int = 1) -> int:
        """The first of ``count`` consecutive ports, each free now and now reserved by this process."""
        size = self.high - self.low
        if not 1 <= count <= size:
            raise ValueError(f"count: 1..{size}, not {count}")
        with self._mutex:
            for _ in range(size):  # one lap over every start position
                if self._next + count > size:
                    self._next = 0
                base = self.low + self._next
                taken = self._reserve_block(base, count)
                if taken == count:
                    self._next += count
                    self._handed_out.update(range(base, base + count))
                    return base
                self._next += taken + 1  # past the port that was not free
        raise NoFreePortError(errno.EADDRINUSE, f"no {count} consecutive free ports in {self.low}..{self.high - 1}")

    def _reserve_block(self, base: int, count: int) -> int:
        """Reserve ``base`` .. ``base + count - 1``; if one is not free, release the ones reserved before it and
        return how many those were (``count`` when all were reserved)."""
        for k in range(count):
            if not self._reserve(base + k):
                for port in range(base, base + k):
                    self._release(port)
                return k
        return count

    def _reserve(self, port: int) -> bool:
        if port in self._handed_out:  # our own lock would not stop us: POSIX locks are per process
            return False
        fd = self._open()
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another process holds it
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # bound by someone who does not use this module (or in TIME_WAIT)
                self._release(port)
                return False
        return True

    def _release(self, port: int) -> None:
        fcntl.lockf(self._open(), fcntl.LOCK_UN, 1, port, os.SEEK_SET)

    def _open(self) -> int:
        # One descriptor for the life of the process: POSIX locks are per process and closing any descriptor of
        # the file would drop them all.
        if self._fd is None:
            try:
                fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o666)
            except PermissionError:  # another user's, not writable for us: we meet their runs at the bind only
                fd = os.open(self._lock_file.with_name(f"{self._lock_file.name}.{os.getuid()}"),
                             os.O_RDWR | os.O_CREAT, 0o600)
            else:
                with contextlib.suppress(PermissionError):  # only its owner may, and did when creating it
                    os.fchmod(fd, 0o666)  # other users' runs share it: the umask took bits off
            self._fd = fd
        return self._fd


_pool: PortPool | None = None


def _default_pool() -> PortPool:
    global _pool
    if _pool is None:
        start = ephemeral_start()
        if start - FLOOR < 1000:
            raise NoFreePortError(errno.EADDRINUSE, f"the ephemeral range starts at {start} ({EPHEMERAL_RANGE}): "
                                  f"no room for test ports between {FLOOR} and it")
        _pool = PortPool(FLOOR, start, LOCK_FILE)
    return _pool


def free_port() -> int:
    """A loopback port below the ephemeral range, free now and reserved for this process (see the module)."""
    return _default_pool().take(1)


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive loopback ports below the ephemeral range (``[cells] base_port``)."""
    return _default_pool().take(count)
