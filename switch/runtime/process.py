"""``python -m switch.runtime.process``: one of a node's extra processes (``[node] processes`` > 1), started and
restarted by the primary's :class:`~switch.runtime.workers.WorkerSupervisor`. It builds the node and hands it to
the control loop of :mod:`switch.runtime.workers`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from switch.config import load_config
from switch.infra import logs
from switch.infra.lifeline import LIFELINE_OPTION, hold_lifeline, ignore_terminal_signals
from switch.model.errors import BulkheadError
from switch.runtime.node import Node
from switch.runtime.workers import run_process

log = logging.getLogger("bulkhead.workers")
EXIT_OK, EXIT_CONFIG, EXIT_FAILED = 0, 2, 1


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if args.lifeline is not None:
        hold_lifeline(args.lifeline, f"node process {args.process}")
    ignore_terminal_signals()  # Ctrl-C reaches the primary, which passes on one SIGTERM
    logs.setup(args.log_level, json_lines=not args.plain_logs)
    try:
        ports = dict(_port(p) for p in args.port)
        config = load_config(args.conf)
        node = Node(config, process=args.process, listener_ports=ports, routes=args.routes)
    except (BulkheadError, ValueError) as exc:
        log.error("node process %d: not started: %s", args.process, exc)
        return EXIT_CONFIG
    try:
        trio.run(run_process, node)
    except BaseException as exc:  # every way out becomes an exit code; the supervisor restarts us
        log.error("node process %d: stopped by %s", args.process, type(exc).__name__)
        return EXIT_FAILED
    return EXIT_OK


def _port(text: str) -> tuple[str, int]:
    name, _, port = text.partition("=")
    if not name or not port.isdigit():
        raise ValueError(f"--port {text!r}: expected LISTENER=PORT")
    return name, int(port)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m switch.runtime.process", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conf", type=Path, required=True, help="the node's node.toml")
    parser.add_argument("--process", type=int, required=True, help="process number, 1 .. processes - 1")
    parser.add_argument("--routes", type=Path, required=True, help="the routing table the primary runs on")
    parser.add_argument("--port", action="append", default=[], help="LISTENER=PORT the primary bound")
    parser.add_argument("--log-level", default="info", choices=logs.LEVELS)
    parser.add_argument("--plain-logs", action="store_true")
    parser.add_argument(LIFELINE_OPTION, type=int, default=None,
                        help="the primary's lifeline pipe (stop when it goes away)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
