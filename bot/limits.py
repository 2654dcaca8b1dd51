"""Limits on what people send: a per-person message limit, so one person (or a stuck client)
cannot flood us; one turn at a time per chat; and bursts of the same card press answered once."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from time import monotonic

from botbuilder.schema import Activity


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


class OneTurnAtATime:
    """Run each chat's turns one after another, in the order they came (in this process).

    A second press that arrives while the first is still being answered then sees what the
    first did (an audit submitted, a card answered) instead of racing it.
    """

    def __init__(self) -> None:
        self._chats: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, chat: str) -> AsyncIterator[None]:
        """Hold the chat's turn while the block runs."""
        lock, users = self._chats.get(chat, (asyncio.Lock(), 0))
        self._chats[chat] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._chats[chat]
            if users == 1:
                del self._chats[chat]  # nobody else waits: keep memory flat
            else:
                self._chats[chat] = (lock, users - 1)


class RepeatedPresses:
    """Notice a burst of the same press of the same card: a double click, an impatient hand.

    The first press does what it says and the first repeat is answered (it is told what
    happened, e.g. that the audit is already submitted); further repeats within `seconds`
    are dropped, so a burst never gets one message per press.
    """

    def __init__(self, seconds: float = 10.0, clock: Callable[[], float] = monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._seen: dict[Hashable, tuple[float, int]] = {}  # first seen, and how often

    def allow(self, press: Hashable) -> bool:
        """Return whether to handle this press (False: a repeat beyond the first)."""
        now = self._clock()
        # Oldest first (insertion order): forget the presses whose burst is over.
        while self._seen:
            oldest = next(iter(self._seen))
            if self._seen[oldest][0] > now - self._seconds:
                break
            del self._seen[oldest]
        first, count = self._seen.get(press, (now, 0))
        self._seen[press] = (first, count + 1)
        return count < 2


def press_of(activity: Activity) -> tuple[str, str, str]:
    """Return what makes two card presses the same: the chat, the card and what it sent."""
    chat = activity.conversation.id if activity.conversation else ""
    sent = json.dumps(activity.value, sort_keys=True, default=str)
    return (
        str(chat or ""),
        str(activity.reply_to_id or ""),
        hashlib.sha256(sent.encode("utf-8")).hexdigest(),
    )
