"""Show the progress of long command-line work on a terminal, and nothing in scripts.

`pqf-bot import-staff`, `dispatch`, `purge` and the like take a `TerminalProgress`: on an
interactive terminal it redraws one line per stage ("saving staff: 1,200/4,000 (30%)")
on standard error, at most ten times a second; when standard error is a file or a pipe
(cron, CI, a script capturing the output) it writes nothing, so only the result is left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_SECONDS = 0.1


class TerminalProgress:
    """A `storage.progress.Progress` drawing on a terminal; silent anywhere else."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._shown = self._stream.isatty()
        self._stage: str | None = None
        self._drawn_at = float("-inf")
        self._width = 0

    @property
    def shown(self) -> bool:
        """Return whether progress is being drawn (standard error is a terminal)."""
        return self._shown

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Redraw the line for this stage, if it is time to."""
        if not self._shown:
            return
        if stage != self._stage:  # a new stage: start its line at once
            self._end_line()
            self._stage = stage
            self._drawn_at = float("-inf")
        finished = total > 0 and done >= total
        now = self._clock()
        if not finished and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        line = f"{stage}: {done:,}/{total:,}"
        if total > 0:
            line += f" ({100 * min(done, total) // total}%)"
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        if finished:
            self._end_line()
        self._stream.flush()

    def close(self) -> None:
        """Finish the line being drawn, so what follows starts on a line of its own."""
        if self._shown:
            self._end_line()
            self._stream.flush()

    def _end_line(self) -> None:
        if self._width:
            self._stream.write("\n")
        self._width = 0
        self._stage = None
