"""bench.ports: ports below the ephemeral range, free when handed out, never handed to two processes at once."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ports import FLOOR, NoFreePortError, PortPool, ephemeral_start, free_port, free_port_block

REPO = Path(__file__).resolve().parents[2]

# A second process that takes ``count`` ports from the same pool, prints them and keeps them until its stdin closes.
HOLDER = """
import sys
from pathlib import Path
from bench.ports import PortPool
pool = PortPool(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
print(*(pool.take() for _ in range(int(sys.argv[4]))), flush=True)
sys.stdin.read()
"""


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_ports_lie_below_the_ephemeral_range_and_are_free_and_distinct() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(FLOOR <= port < ephemeral_start() for port in ports)
    assert all(_bindable(port) for port in ports)


def test_a_block_is_consecutive_free_and_apart_from_single_ports() -> None:
    before = free_port()
    base = free_port_block(8)
    after = free_port()
    block = range(base, base + 8)
    assert base + 8 <= ephemeral_start()
    assert before not in block and after not in block
    assert all(_bindable(port) for port in block)


def test_a_port_someone_has_bound_is_passed_by(tmp_path: Path) -> None:
    base = free_port_block(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 1))  # bound, not even listening
        pool = PortPool(base, base + 3, tmp_path / "ports.lock")
        got = {pool.take() for _ in range(2)}
        assert got == {base, base + 2}
        with pytest.raises(NoFreePortError, match=re.escape(f"no 1 consecutive free ports in {base}..{base + 2}")):
            pool.take()


def test_a_block_skips_past_a_taken_port(tmp_path: Path) -> None:
    base = free_port_block(6)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 2))
        pool = PortPool(base, base + 6, tmp_path / "ports.lock")
        assert pool.take(3) == base + 3
        with pytest.raises(NoFreePortError):
            pool.take(3)  # base, base + 1 are free, but not three in a row


def test_a_port_reserved_by_another_process_is_not_handed_out_before_anyone_binds_it(tmp_path: Path) -> None:
    """Two test runs at once: the other process holds two ports of a four-port pool without binding them; this
    process gets exactly the other two, then none."""
    base = free_port_block(4)
    lock = tmp_path / "ports.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(base), str(base + 4), str(lock), "2"], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        theirs = {int(p) for p in holder.stdout.readline().split()}
        assert len(theirs) == 2
        pool = PortPool(base, base + 4, lock)
        ours = {pool.take(), pool.take()}
        assert ours == set(range(base, base + 4)) - theirs
        with pytest.raises(NoFreePortError):
            pool.take()
    finally:
        holder.communicate("", timeout=10)
    # The holder has exited: the kernel dropped its locks, and its ports are free again (ours stay ours).
    assert {pool.take(), pool.take()} == theirs


def test_a_pool_is_a_real_range() -> None:
    with pytest.raises(ValueError, match="1 <= low < high <= 65536"):
        PortPool(30000, 30000, Path("unused"))
    with pytest.raises(ValueError, match=re.escape("count: 1..4")):
        PortPool(30000, 30004, Path("unused")).take(5)


def test_the_ephemeral_range_is_read_from_the_kernel(tmp_path: Path) -> None:
    sysctl = tmp_path / "ip_local_port_range"
    sysctl.write_text("40000\t60999\n")
    assert ephemeral_start(sysctl) == 40000
    assert ephemeral_start(tmp_path / "missing") == 32768
