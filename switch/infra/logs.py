"""JSON-lines logging. Log calls in Bulkhead pass masked values only (switch.model.masking); this module only
formats, one object per line, so operators can ship the stream to any collector."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


# The levels ``--log-level`` accepts. ``debug`` adds one line per exchange (the node) and per decision (a cell),
# masked like every other line, plus connection opens and closes.
LEVELS = ("debug", "info", "warning", "error", "critical")


class LogLevelError(ValueError):
    """A log level that is not one of :data:`LEVELS`."""

    def __init__(self, level: str) -> None:
        super().__init__(f"unknown log level {level!r} (one of: {', '.join(LEVELS)})")
        self.level = level


def setup(level: str = "info", json_lines: bool = True) -> None:
    if level.lower() not in LEVELS:
        raise LogLevelError(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def child_args() -> list[str]:
    """The ``--log-level``/``--plain-logs`` options that give a child process (a cell, another node process) the
    logging this process was set up with, so that ``bulkhead run --log-level debug --plain-logs`` reaches them."""
    root = logging.getLogger()
    plain = not any(isinstance(h.formatter, JsonLines) for h in root.handlers)
    args = ["--log-level", logging.getLevelName(root.getEffectiveLevel()).lower()]
    return args + (["--plain-logs"] if plain else [])
