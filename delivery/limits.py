"""Teams' rate limits, kept by this process for its messages and its answers to people.

A global token bucket (plus a one-second window that counts requests still in flight, so
answers that arrive late cannot let a burst through) and, per conversation, Teams' sliding
windows (7 per 1 s, 8 per 2 s, 60 per 30 s, 1,800 per hour). The answers to people in
turns keep to the same windows (`RateLimiter.reply_starting`) and go first: a message
waits while an answer waits for room. A 429 pauses its conversation; a rising share of
them slows the global rate for a while.

Every limiter counts on the monotonic clock it is given and waits with the sleep it is
given, so tests run them on virtual time.
"""

from __future__ import annotations

import asyncio
import logging
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger(__name__)

# Teams' per-conversation limits for one bot: (messages, seconds).
TEAMS_CONVERSATION_LIMITS: tuple[tuple[int, float], ...] = (
    (7, 1.0),
    (8, 2.0),
    (60, 30.0),
    (1800, 3600.0),
)


@dataclass(frozen=True)
class SendLimits:
    """How fast, how often and how patiently the sender sends. Times are in seconds."""

    # Teams allows 50 requests/s per app per tenant, answers to people included. This
    # process's answers are counted in the same window (`TeamsAdapter.replies`), so the
    # outbox leaves them room as they come; the 2 left over cover what it cannot see.
    # Several sender processes share the limit, so give each its part.
    global_rate: float = 48.0
    global_burst: int = 5
    per_conversation: tuple[tuple[int, float], ...] = TEAMS_CONVERSATION_LIMITS
    concurrency: int = 16  # conversations sent to at once
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    retry_after_cap: float = 3600.0  # a longer Retry-After is taken as this
    # A claim lasts `lease` from its last renewal; the sender renews all it holds every
    # `heartbeat`. A sender that dies (kill -9, a power cut) stops renewing, and its
    # messages are claimable by another sender, or itself restarted, a lease later (plus a
    # `poll_interval`): within 15 s by default. A living sender starts a send only while its
    # claim, as last confirmed, has `send_timeout + fence_margin` left; it cannot renew in
    # time (the database unreachable, the process stalled), it stops sending rather than
    # risk sending what another sender has claimed since. (Renewing every second rather
    # than every two shortens the lease by a second: the failover test's 15 s had about
    # 2.5 s to spare for a loaded machine, now 3.5.)
    lease: float = 11.0
    heartbeat: float = 1.0
    # The longest one send may take (the HTTP request is cut off then, not just abandoned).
    send_timeout: float = 8.0
    fence_margin: float = 1.5
    poll_interval: float = 0.5
    batch_size: int = 50
    not_installed_delay: float = 3600.0
    # A 429 pauses its conversation and its message waits as Teams asked. The global rate
    # drops by this factor for this long only when 429s make up at least this share of
    # the answers of the last `throttle_window` seconds (and are at least
    # `throttle_minimum`): a stray 429 is Teams being busy, a rising share means this
    # sender is over the tenant's limit. The share is judged over `throttle_answers`
    # answers at least (the last ones, if fewer came in the window): over fewer, stray 429s
    # make a large share by chance. With Teams refusing 5% at random, 3 of a broadcast's
    # first 20 answers are 429s about one time in thirteen, and halved the rate of its
    # first seconds; 8 of 50 happen about one time in three hundred.
    slowdown_factor: float = 0.5
    slowdown_seconds: float = 10.0
    slowdown_share: float = 0.15
    throttle_window: float = 5.0
    throttle_minimum: int = 3
    throttle_answers: int = 50
    # Added to every window, against timer granularity.
    window_margin: float = 0.02

    def __post_init__(self) -> None:
        if self.heartbeat <= 0 or self.send_timeout <= 0 or self.fence_margin < 1:
            raise ValueError("heartbeat, send_timeout positive; fence_margin 1 s or more")
        if self.lease < self.send_timeout + self.fence_margin + self.heartbeat:
            raise ValueError(
                "the lease must outlast a send and a heartbeat (send_timeout + fence_margin + "
                "heartbeat)"
            )
        if self.global_rate <= 0 or self.global_burst < 1 or self.concurrency < 1:
            raise ValueError("rate, burst and concurrency must be positive")
        if self.max_attempts < 1 or self.batch_size < 1:
            raise ValueError("max_attempts and batch_size must be positive")
        if not 0 <= self.slowdown_share <= 1 or self.throttle_window <= 0:
            raise ValueError("slowdown_share must be a share and throttle_window positive")
        if self.throttle_answers < 1:
            raise ValueError("throttle_answers must be positive")


async def first_of(event: asyncio.Event, sleep: Awaitable[None]) -> None:
    """Wait until the event is set or the sleep is over, whichever comes first."""
    waiters: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(event.wait()),
        asyncio.ensure_future(sleep),
    ]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class SlidingWindows:
    """Allow a request only while every (count, seconds) window has room.

    A request counts from when it starts until `seconds` after it finished: the time the
    far end counts it lies in between, so counting this way never undercounts.
    """

    def __init__(
        self,
        limits: Sequence[tuple[int, float]],
        margin: float,
        monotonic: Monotonic,
        sleep: Sleep,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._limits = [(count, seconds + margin) for count, seconds in limits]
        self._horizon = max(seconds for _, seconds in self._limits)
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._changed = asyncio.Event()

    def wait(self, now: float) -> float | None:
        """Return 0 if a request may start now, else seconds to wait (None: until one ends)."""
        self._forget_before(now - self._horizon)
        finished = list(self._finished)
        longest = 0.0
        for count, seconds in self._limits:
            recent = len(finished) - bisect_right(finished, now - seconds)
            excess = self._in_flight + recent - count + 1
            if excess <= 0:
                continue
            if excess > recent:
                return None
            # The oldest `excess` recent requests must age out of the window first.
            oldest = finished[len(finished) - recent + excess - 1]
            longest = max(longest, oldest + seconds - now)
        return longest

    async def acquire(self) -> None:
        """Wait for room, then count a request as started."""
        while True:
            delay = self.wait(self._monotonic())
            if delay is not None and delay <= 0:
                self._in_flight += 1
                return
            self._changed.clear()
            if delay is None:
                await self._changed.wait()
            else:
                await first_of(self._changed, self._sleep(delay))

    def set_limits(self, limits: Sequence[tuple[int, float]], margin: float) -> None:
        """Count against other limits from now on (what was counted stays counted)."""
        self._limits = [(count, seconds + margin) for count, seconds in limits]
        self._horizon = max(seconds for _, seconds in self._limits)
        self._changed.set()

    def started(self, count: int) -> None:
        """Count requests as started now without waiting for room (replies to people)."""
        self._in_flight += count

    def finish(self) -> None:
        """Count a started request as finished now."""
        now = self._monotonic()
        self._in_flight -= 1
        # Here too, not only in `wait`: answers to people finish while no message waits.
        self._forget_before(now - self._horizon)
        self._finished.append(now)
        self._changed.set()

    def counted(self) -> int:
        """Return how many requests are in flight or still within the longest window."""
        self._forget_before(self._monotonic() - self._horizon)
        return self._in_flight + len(self._finished)

    def _forget_before(self, moment: float) -> None:
        while self._finished and self._finished[0] <= moment:
            self._finished.popleft()

    def cancel(self) -> None:
        """Forget a request that was let through but never started."""
        self._in_flight -= 1
        self._changed.set()

    @property
    def idle(self) -> bool:
        """Return whether nothing in flight or within the windows is counted."""
        now = self._monotonic()
        return self._in_flight == 0 and (
            not self._finished or self._finished[-1] <= now - self._horizon
        )


class TokenBucket:
    """Let requests through at a steady rate, with a small burst, first come first served."""

    def __init__(self, rate: float, burst: int, monotonic: Monotonic, sleep: Sleep) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = monotonic()
        self._lock = asyncio.Lock()
        self._factor = 1.0
        self._slow_until = 0.0

    def set_rate(self, rate: float) -> None:
        """Change the steady rate from now on (the tokens gained so far are kept)."""
        self._refill(self._monotonic())
        self._rate = rate

    def slow_down(self, factor: float, seconds: float) -> None:
        """Lower the rate by this factor for a while (after Teams throttled us)."""
        now = self._monotonic()
        self._refill(now)
        self._factor = factor
        self._slow_until = max(self._slow_until, now + seconds)

    def current_rate(self, now: float) -> float:
        """Return the rate at this moment."""
        return self._rate * self._factor if now < self._slow_until else self._rate

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self.current_rate(now))
        self._stamp = now

    async def take(self) -> None:
        """Wait for a token and take it."""
        async with self._lock:
            while True:
                now = self._monotonic()
                self._refill(now)
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.current_rate(now))


class RateLimiter:
    """The global limits and each conversation's, with pauses Teams asked for.

    Every window counts a request from its start until a window's length after it ended,
    so each lasts its round trip longer than Teams' count of it (which starts when it
    arrives, in between): the rate reached falls as the round trip grows. Of 46 allowed,
    on virtual time: 45.1/s with no delay, 43.0/s at 50 ms, 37.9/s at 200 ms. Counting the
    global window from the start instead kept 45.1/s at any delay, but a loaded machine
    delays requests between the limiter and the wire: the failover test then had 20 of
    its 600 messages refused over the global limit. The strict count stays.
    """

    def __init__(
        self,
        limits: SendLimits,
        monotonic: Monotonic,
        sleep: Sleep,
    ) -> None:
        self._limits = limits
        self._monotonic = monotonic
        self._sleep = sleep
        self._bucket = TokenBucket(limits.global_rate, limits.global_burst, monotonic, sleep)
        self._global = SlidingWindows(
            [(max(1, math.floor(limits.global_rate)), 1.0)], limits.window_margin, monotonic, sleep
        )
        self._conversations: dict[str, SlidingWindows] = {}
        self._paused_until: dict[str, float] = {}
        self._acquired = 0
        # Answers to people waiting for room: the outbox lets them have it first.
        self._replies_waiting = 0
        self._no_reply_waits = asyncio.Event()
        self._no_reply_waits.set()
        self._answers: deque[float] = deque()  # when each recent send finished
        self._rate = limits.global_rate
        self._throttles: deque[float] = deque()  # when each recent 429 came
        self.slowdowns = 0  # times a rising share of 429s slowed the outbox down

    async def acquire(self, conversation: str) -> None:
        """Wait until a message to this conversation may start; then `finish` or `cancel`."""
        while True:  # a pause can be extended while we wait
            pause = self._paused_until.get(conversation, 0.0) - self._monotonic()
            if pause <= 0:
                break
            await self._sleep(pause)
        self._paused_until.pop(conversation, None)
        window = self._window(conversation)
        # The conversation first: its waits are the long ones, and no global room is
        # held meanwhile.
        await window.acquire()
        try:
            await self._bucket.take()
            await self._no_reply_waits.wait()
            await self._global.acquire()
        except BaseException:
            window.cancel()
            raise
        self._counted_one()

    def _window(self, conversation: str) -> SlidingWindows:
        window = self._conversations.get(conversation)
        if window is None:
            window = SlidingWindows(
                self._limits.per_conversation,
                self._limits.window_margin,
                self._monotonic,
                self._sleep,
            )
            self._conversations[conversation] = window
        return window

    def _counted_one(self) -> None:
        self._acquired += 1
        if self._acquired % 1000 == 0:
            self._forget_idle()

    def finish(self, conversation: str) -> None:
        """Count the message to this conversation as sent (or failed) now."""
        self._global.finish()
        self._conversations[conversation].finish()
        now = self._monotonic()
        self._answers.append(now)
        self._forget_answers(now)

    def cancel(self, conversation: str) -> None:
        """Forget a message that was let through but not sent."""
        self._global.cancel()
        self._conversations[conversation].cancel()

    async def reply_starting(self, conversation: str, within: float) -> bool:
        """Wait, `within` seconds at most, for room for an answer to this chat; count it started.

        Answers to people go first: the outbox waits while one waits for room. But they keep
        to the limits too (the global rate, the chat's 8 requests in 2 s, a pause Teams
        asked for): a request over them is refused and counted all the same, and the retries
        of many refused answers keep everyone over the limit. Return False if the time ran
        out (the answer is counted all the same: it goes, and Teams decides).
        """
        deadline = self._monotonic() + max(0.0, within)
        window = self._window(conversation)
        self._replies_waiting += 1
        self._no_reply_waits.clear()
        try:
            while True:
                now = self._monotonic()
                pause = self._paused_until.get(conversation, 0.0) - now
                waits = [window.wait(now), self._global.wait(now)]
                room = pause <= 0 and all(w is not None and w <= 0 for w in waits)
                left = deadline - now
                if room or left <= 0:
                    # Counted before the outbox may look again: the room is the answer's.
                    window.started(1)
                    self._global.started(1)
                    self._counted_one()
                    return room
                delay = max([pause, *(w for w in waits if w is not None)])
                if None in waits:  # room comes when a request in flight ends: look again soon
                    delay = min(delay, 0.02) if delay > 0 else 0.02
                await self._sleep(min(left, max(delay, 0.001)))
        finally:
            self._replies_waiting -= 1
            if not self._replies_waiting:
                self._no_reply_waits.set()

    def set_rate(self, rate: float) -> None:
        """Send the outbox at this rate from now on: its share of the budget just now.

        The answers to people that this limiter counts still count in the same window; the
        rate only leaves room for requests it cannot see (other instances' answers).
        """
        if rate == self._rate:
            return
        self._rate = rate
        self._bucket.set_rate(rate)
        self._global.set_limits([(max(1, math.floor(rate)), 1.0)], self._limits.window_margin)

    @property
    def budget_rate(self) -> float:
        """The rate set (the budget, or the leader's share of it), before any slow-down."""
        return self._rate

    def reply_finished(self, conversation: str) -> None:
        """Count an answer to this chat as finished now."""
        self._global.finish()
        self._window(conversation).finish()

    def throttled(self, conversation: str, pause: float) -> None:
        """Pause a conversation Teams throttled; if 429s are frequent, slow everything."""
        now = self._monotonic()
        self._paused_until[conversation] = max(
            self._paused_until.get(conversation, 0.0), now + pause
        )
        self._throttles.append(now)
        share = self.throttled_share(now)
        if share >= self._limits.slowdown_share:
            at_pace = self._bucket.current_rate(now) == self._rate
            self._bucket.slow_down(self._limits.slowdown_factor, self._limits.slowdown_seconds)
            if at_pace:  # not slowed down already: a new slow-down, said once
                self.slowdowns += 1
                log.warning(
                    "Teams refused %.0f%% of the last %d answers with 429: sending at %.1f/s "
                    "for %.0f s",
                    share * 100, len(self._answers), self._bucket.current_rate(now),
                    self._limits.slowdown_seconds,
                )  # fmt: skip

    @property
    def global_rate(self) -> float:
        """The messages per second allowed now (lower while slowed down)."""
        return self._bucket.current_rate(self._monotonic())

    def throttled_share(self, now: float) -> float:
        """Return the share of the recent answers that were 429s (0 until there are enough).

        Recent: of the last `throttle_window` seconds, or the last `throttle_answers`
        answers if fewer came in that time.
        """
        self._forget_answers(now)
        since = min(now - self._limits.throttle_window, self._answers[0] if self._answers else now)
        while self._throttles and self._throttles[0] < since:
            self._throttles.popleft()
        if (
            len(self._answers) < self._limits.throttle_answers
            or len(self._throttles) < self._limits.throttle_minimum
        ):
            return 0.0
        return len(self._throttles) / max(len(self._answers), len(self._throttles))

    def _forget_answers(self, now: float) -> None:
        since = now - self._limits.throttle_window
        keep = self._limits.throttle_answers
        while len(self._answers) > keep and self._answers[0] < since:
            self._answers.popleft()

    def _forget_idle(self) -> None:
        for key in [k for k, w in self._conversations.items() if w.idle]:
            del self._conversations[key]
