"""Progress a user can follow when no terminal shows a bar: one log line every few seconds.

Why: under nohup, CI or SLURM (where real runs live) stdout is a file, the Rich bars are off, and the final
scoring of 6,000 rows or a generation of 10,000 comments printed nothing for minutes. Layer: beside ``io``;
imports nothing of this package.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable

EVERY_S_VARIABLE = "EMOREASON_PROGRESS_EVERY_S"
DEFAULT_EVERY_S = 30.0


def progress_interval_s() -> float:
    """Seconds between progress lines: ``EMOREASON_PROGRESS_EVERY_S``, else 30."""
    value = os.environ.get(EVERY_S_VARIABLE)
    try:
        return float(value) if value else DEFAULT_EVERY_S
    except ValueError:
        raise ValueError(f"{EVERY_S_VARIABLE}={value!r} is not a number of seconds") from None


class RateLog:
    """Logs ``<what>: done/total (rate/s, ETA)`` at most every ``every_s`` seconds, then a closing line.

    ``enabled`` defaults to "stdout is not a terminal" (a terminal has its bar). A run that finishes before
    the first interval stays silent: the line would repeat the summary printed right after it.
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        *,
        unit: str = "rows",
        every_s: float | None = None,
        enabled: bool | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.every_s = progress_interval_s() if every_s is None else every_s
        self.enabled = (not sys.stdout.isatty()) if enabled is None else enabled
        self.log = logger or logging.getLogger(__name__)
        self.clock = clock
        self.done = 0
        self.lines = 0
        self.started = self.last = clock()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more finished units; log a line when ``every_s`` has passed since the last one."""
        self.done += n
        now = self.clock()
        if self.enabled and now - self.last >= self.every_s:
            self.last = now
            self.lines += 1
            self.log.info("%s", self._line(now))

    def finish(self) -> None:
        """The closing line (done, elapsed, rate), only when progress lines were logged before it."""
        if self.enabled and self.lines:
            now = self.clock()
            elapsed = max(now - self.started, 1e-9)
            rate = self.done / elapsed
            self.log.info(
                "%s: done, %d %s in %.0f s (%.1f/s)", self.what, self.done, self.unit, elapsed, rate
            )

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            eta = (self.total - self.done) / rate if rate else float("inf")
            counts = f"{self.done}/{self.total} {self.unit} ({100 * self.done / self.total:.0f}%"
            return f"{self.what}: {counts}, {rate:.1f}/s, ETA {eta:.0f} s)"
        return f"{self.what}: {self.done} {self.unit} ({rate:.1f}/s)"
