"""What the delivery tests share: a sender's `render`, virtual time, waiting for a condition."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from delivery.sender import Render
from messages.request_cards import outbox_renderer
from practice.framework import Framework
from storage.database import Database

T = TypeVar("T")
RESOLUTION = 1e-6


def render_with(database: Database, framework: Framework | None = None) -> Render:
    """Return the `render` the app gives the sender (no framework: no request cards)."""
    return outbox_renderer(database=database, framework=framework)


class VirtualClock:
    """A monotonic clock that moves only when told to, and a sleep that waits for it.

    `advance` moves time on and wakes the sleepers due by then, so a test says how much
    time passes instead of waiting for it.
    """

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        """Return the virtual time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced past `seconds` from now."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Never less than a microsecond, as a real clock's resolution: a wait computed in
        # floating point (a token bucket's) may otherwise come round to no time at all.
        wake = self.now + max(seconds, RESOLUTION)
        heapq.heappush(self._sleepers, (wake, next(self._order), woken))
        await woken

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking each sleeper at its time, and let them run."""
        await settle()  # what can run now starts its waits from now
        until = self.now + seconds
        while self._sleepers and self._sleepers[0][0] <= until:
            when, _, woken = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not woken.done():
                woken.set_result(None)
            await settle()
        self.now = until
        await settle()

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await it, moving time on to the next sleeper's whenever nothing else can run."""
        task = asyncio.ensure_future(awaitable)
        while True:
            await settle()
            if task.done():
                return task.result()
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                task.cancel()
                raise AssertionError("it waits for something that time alone will not bring")
            await self.advance(self._sleepers[0][0] - self.now)


async def settle() -> None:
    """Let every task that can run do so, without letting any time pass."""
    for _ in range(20):
        await asyncio.sleep(0)


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], within: float, what: str
) -> None:
    """Wait (letting the event loop run) until the condition holds, or fail after `within` s."""
    deadline = time.monotonic() + within
    while True:
        holds = condition()
        if not isinstance(holds, bool):
            holds = await holds
        if holds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
