"""``python -m switch.cells --conf node.toml --cell K``: one cell process (what the node's supervisor runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from switch.cells.host import main


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m switch.cells", description=__doc__)
    parser.add_argument("--conf", type=Path, required=True, help="node.toml (or its folder) with a [cells] table")
    parser.add_argument("--cell", type=int, required=True, help="cell number, 0 .. count - 1")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--plain-logs", action="store_true", help="human-readable log lines instead of JSON")
    parser.add_argument("--watch-parent", action="store_true", help="stop when the parent process goes away")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse(sys.argv[1:])
    sys.exit(main(args.conf, args.cell, log_level=args.log_level, json_logs=not args.plain_logs,
                  watch_parent=args.watch_parent))
