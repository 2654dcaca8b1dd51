"""A per-person limit on inbound messages, so one person (or a stuck client) cannot flood us."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from time import monotonic


class MessageRateLimit:
    """At most `count` messages per `seconds` for each person, in this process."""

    def __init__(self, count: int, seconds: float, clock: Callable[[], float] = monotonic) -> None:
        self._count = count
        self._seconds = seconds
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}

    def allow(self, person: str) -> tuple[bool, bool]:
        """Return (allowed, tell_them): refuse over the limit, and say so once per window."""
        now = self._clock()
        window = self._seen.setdefault(person, deque())
        while window and window[0] <= now - self._seconds:
            window.popleft()
        if len(window) < self._count:
            window.append(now)
            return True, False
        warned = self._warned.get(person)
        tell = warned is None or warned <= now - self._seconds
        if tell:
            self._warned[person] = now
        self._forget_idle(now)
        return False, tell

    def _forget_idle(self, now: float) -> None:
        # Keep memory flat over a long run: drop people who have gone quiet.
        if len(self._seen) > 10_000:
            for person in [
                p for p, w in self._seen.items() if not w or w[-1] <= now - self._seconds
            ]:
                self._seen.pop(person, None)
                self._warned.pop(person, None)
