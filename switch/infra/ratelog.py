"""Log lines that a hostile peer cannot multiply: at most one line per key per interval, with counts.

A peer that sends 2,000 malformed frames a second, or opens connections faster than they are refused, must not
turn each event into a log line (issue 11: 49 MB of warnings from one peer's garbage). :class:`SummaryLog` logs
the first event of a key at once, counts the events after it within ``interval`` seconds, and reports the count
with the latest such event once the interval has passed: on the key's next event, or when :meth:`flush` is
called (the owner calls it periodically, so a burst that stops is still reported). Sans-I/O: the clock is
injected, nothing here sleeps.

The key is what the operator wants told apart (a link and a peer's address, a refusal's reason); the number of
keys held is bounded by ``max_keys``: past it, events of new keys are folded into one overflow key, so a
flood from many addresses costs a bounded amount of memory and still one line per interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

OVERFLOW = ("<other keys>",)


@dataclass
class _Entry:
    window_start: float  # when the line that opened this window was logged
    suppressed: int = 0  # events since, not yet reported
    fmt: str = ""  # the latest suppressed event, reported with the count
    args: tuple[object, ...] = ()


class SummaryLog:
    def __init__(self, logger: logging.Logger, *, level: int = logging.WARNING, interval: float = 10.0,
                 max_keys: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.logger = logger
        self.level = level
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self.events = 0  # every event noted, logged or not
        self.lines = 0  # lines written

    def note(self, key: Hashable, fmt: str, *args: object) -> None:
        """One event: logged now if ``key`` logged nothing within the interval, otherwise counted."""
        self.events += 1
        if not self.logger.isEnabledFor(self.level):
            return
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None and len(self._entries) >= self.max_keys:
            self.flush()  # forget the quiet keys before folding this one into the overflow key
            if len(self._entries) >= self.max_keys:
                key, entry = OVERFLOW, self._entries.get(OVERFLOW)
        if entry is not None and now - entry.window_start < self.interval:
            entry.suppressed += 1
            entry.fmt, entry.args = fmt, args
            return
        suppressed = 0 if entry is None else entry.suppressed
        self._entries[key] = _Entry(now)
        self._emit(fmt, args, suppressed, None if entry is None else now - entry.window_start)

    def flush(self) -> None:
        """Report the counts of windows that have ended, and forget keys with nothing to report."""
        now = self.clock()
        for key, entry in list(self._entries.items()):
            if now - entry.window_start < self.interval:
                continue
            if entry.suppressed:
                self._emit(entry.fmt, entry.args, entry.suppressed - 1, now - entry.window_start)
                self._entries[key] = _Entry(now)
            else:
                del self._entries[key]

    def _emit(self, fmt: str, args: tuple[object, ...], more: int, seconds: float | None) -> None:
        # ``more`` events like this one went unlogged before it (the count covers the window that just ended).
        if more:
            fmt = f"{fmt} (and {more} more in the last {seconds:.0f}s)"
        self.lines += 1
        self.logger.log(self.level, fmt, *args)
