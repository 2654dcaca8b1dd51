"""Deliver the outbox to Teams within Teams' rate limits, retrying what can be retried.

Every proactive message is first written to the outbox, and so is an answer to a person
that Teams would not take during its turn (purpose "reply", see `bot.adapter`); this sender
claims due messages, sends them through the adapter and records the outcome:

- accepted: sent, with the activity id Teams returned;
- 429: tried again after Retry-After when Teams gave one (seconds or an HTTP date),
  else after an exponential back-off with jitter; the conversation is paused as long and
  the global rate slowed for a while;
- 412, 408, 5xx, a timeout or a connection error: tried again after a back-off;
- 403 (blocked or removed the app) and 404 (chat gone): undeliverable at once;
- any other 4xx: undeliverable, with the status; after `max_attempts`: undeliverable;
- no installed chat: left pending without counting an attempt, looked at again later
  (when the person installs the app, the activity handler makes what waited due at once).

Claims. A sender writes its id (its name and a token of this start) and a lease into the
rows it claims, so no other sender takes them, and while it runs a heartbeat renews every
claim it holds (by default a 12 s lease, renewed every 2 s). A sender that dies (kill -9,
a power cut) stops renewing: its claims lapse within a lease of its last heartbeat, and
another sender, or the same one restarted, takes the messages over: within 15 s. A living
sender starts a send only while its claim, as last confirmed by the database, is sure to
outlast the send (`send_timeout`, when the adapter cuts the request off) with a margin; if
it cannot renew in time (the database unreachable, the process stalled) it stops sending
those messages (it fences itself off) rather than risk sending one that another sender
has claimed since. So there are never two live claims on a message, nor two sends of it
under way at once.

Rate limits: a global token bucket (plus a one-second window that counts requests still
in flight, so answers that arrive late cannot let a burst through) and, per conversation,
Teams' sliding windows (7 per 1 s, 8 per 2 s, 60 per 30 s, 1,800 per hour). The adapter's
answers to people in turns keep to the same windows (`RateLimiter.reply_starting`) and go
first: a message waits while an answer waits for room. Different
conversations are sent to concurrently; one conversation's messages go one at a time, in
order: a message is not claimed while an earlier one to the same person waits (a late
answer waits only behind the person's earlier late answers).

Delivery is at least once, not exactly once, in two narrow cases: Teams accepted a message
but the database never recorded it (the process died in between: it is sent again once the
claim lapses), or Teams accepted it but its answer never came (a timeout or a broken
connection: it is sent again at the retry; this is also why a turn's answer that may have
reached Teams is queued rather than lost). We prefer a duplicate to a lost audit request.
Otherwise each message is sent once: claims are exclusive, a send only starts while its
claim is sure to outlast it, and retries follow only answers that say Teams did not take
the message.

Log lines carry message, recipient and conversation row ids and status codes only: never
names, emails, Teams ids or message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import secrets
import socket
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from botframework.connector.models import ErrorResponseException
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.proactive import (
    SEND_TIMEOUT,
    UNDELIVERABLE_STATUSES,
    Delivery,
    DeliveryResult,
    conversation_reference,
    retry_after_of,
)
from messages.request_cards import UnrenderableMessageError, outbox_activity
from practice.framework import Framework
from storage import outbox, roster
from storage.database import Database
from storage.models import OutboxMessage, TeamsConversation, utc_now

log = logging.getLogger(__name__)

# The 4xx answers worth retrying (unauthorised: our credentials or token, not the person;
# timeout; precondition failed; throttled). Every 5xx is retried too; any other 4xx makes
# a message undeliverable.
RETRY_STATUSES = frozenset({401, 408, 412, 429})
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
    # risk sending what another sender has claimed since.
    lease: float = 12.0
    heartbeat: float = 2.0
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
    # sender is over the tenant's limit.
    slowdown_factor: float = 0.5
    slowdown_seconds: float = 10.0
    slowdown_share: float = 0.15
    throttle_window: float = 5.0
    throttle_minimum: int = 3
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


@dataclass(frozen=True)
class DrainReport:
    """What one `drain()` did with the messages it took."""

    sent: int = 0
    undeliverable: int = 0
    pending: int = 0  # tried, and to be tried again after a back-off longer than the wait
    not_installed: int = 0


def default_instance_id() -> str:
    """Return an id for this sender process: host and process id."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


# -- rate limiting ------------------------------------------------------------------------


class SlidingWindows:
    """Allow a request only while every (count, seconds) window has room.

    A request counts from when it starts until `seconds` after it finished: the time the
    far end counts it lies in between, so counting this way never undercounts.
    """

    def __init__(
        self,
        limits: Sequence[tuple[int, float]],
        margin: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), delay)

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

    def __init__(
        self, rate: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._monotonic = monotonic
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = monotonic()
        self._lock = asyncio.Lock()
        self._factor = 1.0
        self._slow_until = 0.0

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
                await asyncio.sleep((1 - self._tokens) / self.current_rate(now))


class RateLimiter:
    """The global limits and each conversation's, with pauses Teams asked for."""

    def __init__(
        self,
        limits: SendLimits,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limits = limits
        self._monotonic = monotonic
        self._sleep = sleep
        self._bucket = TokenBucket(limits.global_rate, limits.global_burst, monotonic)
        self._global = SlidingWindows(
            [(max(1, math.floor(limits.global_rate)), 1.0)], limits.window_margin, monotonic
        )
        self._conversations: dict[str, SlidingWindows] = {}
        self._paused_until: dict[str, float] = {}
        self._acquired = 0
        # Answers to people waiting for room: the outbox lets them have it first.
        self._replies_waiting = 0
        self._no_reply_waits = asyncio.Event()
        self._no_reply_waits.set()
        self._answers: deque[float] = deque()  # when each recent send finished
        self._throttles: deque[float] = deque()  # when each recent 429 came

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
                self._limits.per_conversation, self._limits.window_margin, self._monotonic
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
        self._answers.append(self._monotonic())

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
        if self.throttled_share(now) >= self._limits.slowdown_share:
            self._bucket.slow_down(self._limits.slowdown_factor, self._limits.slowdown_seconds)

    @property
    def global_rate(self) -> float:
        """The messages per second allowed now (lower while slowed down)."""
        return self._bucket.current_rate(self._monotonic())

    def throttled_share(self, now: float) -> float:
        """Return the share of the recent answers that were 429s (0 until there are a few)."""
        since = now - self._limits.throttle_window
        for times in (self._answers, self._throttles):
            while times and times[0] < since:
                times.popleft()
        if len(self._throttles) < self._limits.throttle_minimum:
            return 0.0
        return len(self._throttles) / max(len(self._answers), len(self._throttles))

    def _forget_idle(self) -> None:
        for key in [k for k, w in self._conversations.items() if w.idle]:
            del self._conversations[key]


# -- the sender ---------------------------------------------------------------------------


@dataclass
class _Tally:
    """The latest outcome of each message a drain touched, and when retries are due."""

    track: bool = True  # `run` keeps no tally: it would grow for as long as the bot runs
    outcomes: dict[int, Delivery] = field(default_factory=dict)
    retry_at: dict[int, datetime] = field(default_factory=dict)

    def note(self, message_id: int, outcome: Delivery, retry_at: datetime | None = None) -> None:
        if not self.track:
            return
        self.outcomes[message_id] = outcome
        if retry_at is not None:
            self.retry_at[message_id] = retry_at
        else:
            self.retry_at.pop(message_id, None)

    def hand_over(self, *, due_by: datetime) -> None:
        """Forget the retries due by then: they were claimable, so someone else has them."""
        for message_id in [i for i, when in self.retry_at.items() if when <= due_by]:
            del self.retry_at[message_id]
            del self.outcomes[message_id]

    def report(self) -> DrainReport:
        counts = {outcome: 0 for outcome in Delivery}
        for outcome in self.outcomes.values():
            counts[outcome] += 1
        return DrainReport(
            sent=counts[Delivery.SENT],
            undeliverable=counts[Delivery.UNDELIVERABLE],
            pending=counts[Delivery.FAILED],
            not_installed=counts[Delivery.NOT_INSTALLED],
        )


class _Claims:
    """The outbox messages this sender holds, and until when each claim is sure to last.

    A claim is sure until `lease` after the moment its claim or last renewal was *sent* to
    the database (this process's monotonic clock): the row's `claimed_until` is at least
    that, so while it has not passed no other sender can have taken the message.
    """

    def __init__(self, lease: float, monotonic: Callable[[], float]) -> None:
        self._lease = lease
        self._monotonic = monotonic
        self._sure_until: dict[int, float] = {}
        self._renewed = asyncio.Event()

    def took(self, message_ids: Sequence[int], *, since: float) -> None:
        """Hold these messages, claimed by a statement sent at `since`."""
        for message_id in message_ids:
            self._sure_until[message_id] = since + self._lease

    def renewed(self, message_ids: set[int], *, asked: Sequence[int], since: float) -> list[int]:
        """Extend the claims renewed by a statement sent at `since`; return those lost."""
        renewed_until = since + self._lease
        lost = []
        for message_id in asked:
            until = self._sure_until.get(message_id)
            # Recorded meanwhile (gone), or claimed afresh after the renewal was sent (a
            # later, surer claim): this renewal says nothing about it.
            if until is None or until > renewed_until:
                continue
            if message_id in message_ids:
                self._sure_until[message_id] = renewed_until
            else:
                del self._sure_until[message_id]
                lost.append(message_id)
        self._renewed.set()
        self._renewed = asyncio.Event()
        return lost

    def drop(self, message_ids: Sequence[int]) -> None:
        """Forget messages recorded, deferred or given back: no longer held."""
        for message_id in message_ids:
            self._sure_until.pop(message_id, None)

    def held(self) -> list[int]:
        """Return the ids of the messages held."""
        return list(self._sure_until)

    def left(self, message_id: int) -> float | None:
        """Return the seconds the claim on a message is sure to last, None if not held."""
        until = self._sure_until.get(message_id)
        return None if until is None else until - self._monotonic()

    async def next_renewal(self, at_most: float) -> None:
        """Wait until the next renewal, or `at_most` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._renewed.wait(), max(0.0, at_most))


class OutboxSender:
    """Claims due outbox messages and delivers them to Teams within its rate limits."""

    def __init__(
        self,
        *,
        database: Database,
        adapter: CloudAdapter,
        app_id: str,
        limits: SendLimits | None = None,
        clock: Callable[[], datetime] = utc_now,
        instance_id: str | None = None,
        on_attempt: Callable[[Delivery, int], None] | None = None,
        framework: Framework | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rate_clock: Callable[[], float] | None = None,
    ) -> None:
        self._database = database
        # Makes the request cards a month's dispatch queues unmade (messages.request_cards).
        self._framework = framework
        # Told of every attempt's outcome and HTTP status (0 if none): for the metrics.
        self._on_attempt = on_attempt
        self._adapter = adapter
        self._app_id = app_id
        self._limits = limits or SendLimits()
        self._clock = clock
        self._monotonic = monotonic
        self.name = (instance_id or default_instance_id())[:55]
        # What the sender writes in the rows it claims: its name and a token of this start,
        # so that a restarted process (in a container, often with the same host name and
        # process id) or a second one given the same name never takes another's claims as
        # its own.
        self.instance_id = f"{self.name}#{secrets.token_hex(4)}"
        self._claims = _Claims(self._limits.lease, monotonic)
        # Teams' rate limits are counted on `rate_clock` (seconds, like `monotonic`, which it
        # is by default): a test whose people answer at machine speed runs it ahead, as its
        # fake Teams does, to stand for the time people take over each card.
        self._limiter = RateLimiter(self._limits, rate_clock or monotonic)
        # Jitter only spreads retries out; it needs no cryptographic strength.
        self._random = random.Random()  # noqa: S311
        self._slots = asyncio.Semaphore(self._limits.concurrency)
        self._sending: set[asyncio.Task[DeliveryResult]] = set()

    @property
    def limits(self) -> SendLimits:
        return self._limits

    @property
    def limiter(self) -> RateLimiter:
        """The limits this sender keeps (answers to people can be counted in them too)."""
        return self._limiter

    # -- the loops ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Send due messages until `stop` is set; sends under way are finished first."""
        log.info("outbox sender %s started", self.instance_id)
        await self._pump(_Tally(track=False), stop=stop)
        log.info("outbox sender %s stopped", self.instance_id)

    async def drain(self, *, max_wait: float = 60.0) -> DrainReport:
        """Send everything due now, waiting out retries due within `max_wait` seconds."""
        tally = _Tally()
        deadline = self._monotonic() + max_wait
        while True:
            started = self._clock()
            await self._pump(tally, stop=None)
            # A retry that was due and yet not ours to claim went to another sender.
            tally.hand_over(due_by=started)
            if not tally.retry_at:
                break
            delay = (min(tally.retry_at.values()) - self._clock()).total_seconds()
            if self._monotonic() + delay > deadline:
                break
            # A little past the time, so the claim's `next_attempt_at <= now` holds.
            await asyncio.sleep(max(0.0, delay) + 0.01)
        return tally.report()

    async def _pump(self, tally: _Tally, *, stop: asyncio.Event | None) -> None:
        """Claim and send until stopped (with `stop`) or until nothing is claimable."""
        groups: set[asyncio.Task[None]] = set()
        heartbeat = asyncio.create_task(self._keep_claims(), name="outbox-heartbeat")
        try:
            while stop is None or not stop.is_set():
                claimed = 0
                # Claim only while conversations are waiting for a free slot: what one
                # sender holds and cannot send yet, another could.
                if len(groups) < self._limits.concurrency:
                    try:
                        claimed = await self._claim_and_start(tally, groups)
                    except Exception as error:
                        if stop is None:
                            raise
                        log.error("outbox claim failed: %s", type(error).__name__)
                if claimed:
                    continue
                if not groups and stop is None:
                    return
                waiters: set[asyncio.Future[Any]] = set(groups)
                if stop is not None:
                    waiters.add(asyncio.ensure_future(stop.wait()))
                try:
                    await asyncio.wait(
                        waiters,
                        timeout=self._limits.poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for waiter in waiters - groups:
                        waiter.cancel()
        finally:
            for group in groups:
                group.cancel()
            await asyncio.gather(*groups, return_exceptions=True)
            # A send once started is finished and recorded, even when stopping; its claim
            # is kept alive meanwhile.
            await asyncio.gather(*self._sending, return_exceptions=True)
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _keep_claims(self) -> None:
        """Renew the claims this sender holds, every heartbeat, for as long as it runs."""
        while True:
            await asyncio.sleep(self._limits.heartbeat)
            await self._renew_claims()

    async def _renew_claims(self) -> None:
        """Extend every claim held by a lease from now; forget those another sender took."""
        held = self._claims.held()
        if not held:
            return
        since = self._monotonic()
        now = self._clock()
        try:
            async with self._database.session() as session:
                renewed = await outbox.renew_claims(
                    session=session,
                    message_ids=held,
                    instance_id=self.instance_id,
                    now=now,
                    until=now + timedelta(seconds=self._limits.lease),
                )
        except Exception as error:
            # Sends stop once what is left of the claims is too short for one (the fence).
            log.warning("could not renew %d outbox claims: %s", len(held), type(error).__name__)
            return
        lost = self._claims.renewed(renewed, asked=held, since=since)
        if lost:
            log.warning("outbox sender %s lost %d claims", self.instance_id, len(lost))

    async def _claim_and_start(self, tally: _Tally, groups: set[asyncio.Task[None]]) -> int:
        """Claim a batch of due messages and start one task per person; return how many."""
        since = self._monotonic()
        now = self._clock()
        async with self._database.session() as session:
            messages = await outbox.claim_due(
                session=session,
                instance_id=self.instance_id,
                now=now,
                lease=timedelta(seconds=self._limits.lease),
                limit=self._limits.batch_size,
            )
            by_recipient: dict[int, list[OutboxMessage]] = {}
            for message in messages:
                by_recipient.setdefault(message.recipient_id, []).append(message)
            conversations = await self._conversations_of(session, list(by_recipient))
        self._claims.took([m.id for m in messages if m.id is not None], since=since)
        for recipient_id, queue in by_recipient.items():
            group = asyncio.create_task(
                self._send_queue(recipient_id, queue, conversations.get(recipient_id), tally)
            )
            groups.add(group)
            group.add_done_callback(groups.discard)
        return len(messages)

    async def _conversations_of(
        self, session: AsyncSession, recipient_ids: list[int]
    ) -> dict[int, TeamsConversation]:
        """Return the installed personal chat of each recipient who has one."""
        staff = await roster.staff_by_ids(session=session, ids=recipient_ids)
        found: dict[int, TeamsConversation] = {}
        for staff_id, person in staff.items():
            if person.aad_object_id:
                conversation = await roster.conversation_of(
                    session=session, aad_object_id=person.aad_object_id
                )
                if conversation is not None:
                    found[staff_id] = conversation
        return found

    async def _send_queue(
        self,
        recipient_id: int,
        queue: list[OutboxMessage],
        conversation: TeamsConversation | None,
        tally: _Tally,
    ) -> None:
        """Send one person's claimed messages in order; give back the rest on a failure."""
        unsent = 0  # queue[unsent:] have not been handed to a send
        try:
            if conversation is None:
                await self._not_installed(recipient_id, queue, tally)
                unsent = len(queue)
                return
            async with self._slots:
                for message in queue:
                    assert message.id is not None
                    await self._limiter.acquire(conversation.conversation_id)
                    send = asyncio.create_task(self._send_claimed(message, conversation))
                    unsent += 1
                    self._sending.add(send)
                    send.add_done_callback(self._sending.discard)
                    # Shielded: when stopping, a send under way is finished and recorded.
                    result = await asyncio.shield(send)
                    tally.note(message.id, result.outcome, result.retry_at)
                    if result.outcome not in (Delivery.SENT, Delivery.UNDELIVERABLE):
                        return  # the rest wait behind this one, to keep the order
        except Exception as error:
            log.error(
                "outbox messages of recipient %s failed: %s", recipient_id, type(error).__name__
            )
        finally:
            rest = [m.id for m in queue[unsent:] if m.id is not None]
            if rest:
                await self._give_back(rest)

    async def _give_back(self, message_ids: list[int]) -> None:
        self._claims.drop(message_ids)
        try:
            async with self._database.session() as session:
                await outbox.release(
                    session=session, message_ids=message_ids, instance_id=self.instance_id
                )
        except Exception as error:
            # They come back when the lease lapses.
            log.warning("could not give back %d claims: %s", len(message_ids), type(error).__name__)

    async def _not_installed(
        self, recipient_id: int, queue: list[OutboxMessage], tally: _Tally
    ) -> None:
        until = self._clock() + timedelta(seconds=self._limits.not_installed_delay)
        ids = [m.id for m in queue if m.id is not None]
        self._claims.drop(ids)
        async with self._database.session() as session:
            await outbox.defer_until_installed(
                session=session, message_ids=ids, instance_id=self.instance_id, until=until
            )
        for message_id in ids:
            tally.note(message_id, Delivery.NOT_INSTALLED)
        log.info(
            "recipient %s has no installed chat; %d messages wait until %s",
            recipient_id,
            len(ids),
            f"{until:%Y-%m-%d %H:%M}",
        )

    # -- one message --------------------------------------------------------------------

    async def deliver(self, message_id: int) -> DeliveryResult:
        """Claim one pending message and send it now, whatever its retry time."""
        since = self._monotonic()
        now = self._clock()
        async with self._database.session() as session:
            message = await outbox.claim_one(
                session=session,
                message_id=message_id,
                instance_id=self.instance_id,
                now=now,
                lease=timedelta(seconds=self._limits.lease),
            )
            if message is None:
                return DeliveryResult(message_id, Delivery.FAILED, "not pending")
            conversations = await self._conversations_of(session, [message.recipient_id])
        self._claims.took([message_id], since=since)
        conversation = conversations.get(message.recipient_id)
        if conversation is None:
            await self._not_installed(message.recipient_id, [message], _Tally(track=False))
            return DeliveryResult(message_id, Delivery.NOT_INSTALLED)
        await self._limiter.acquire(conversation.conversation_id)
        return await self._send_claimed(message, conversation)

    async def _send_claimed(
        self, message: OutboxMessage, conversation: TeamsConversation
    ) -> DeliveryResult:
        """Send one claimed message (the limiter already let it through) and record it."""
        assert message.id is not None
        key = conversation.conversation_id
        activity: Activity | None = None
        failure: BaseException | None = None
        try:
            try:
                # Made first: the time a send may take is then the request's alone.
                activity = await self._activity_of(message)
            except Exception as error:
                failure = error
            if not await self._claim_holds(message.id):
                self._limiter.cancel(key)
                log.warning("outbox message %s: claim lost before sending", message.id)
                return DeliveryResult(message.id, Delivery.FAILED, "claim lost")
        except BaseException:
            self._limiter.cancel(key)
            raise
        activity_id: str | None = None
        if activity is None:
            self._limiter.cancel(key)  # nothing was sent
        else:
            try:
                # The adapter cuts the request off at `send_timeout`; this only backs it up.
                activity_id = await asyncio.wait_for(
                    self._post(activity, conversation), self._limits.send_timeout + 1
                )
            except Exception as error:
                failure = error
            finally:
                self._limiter.finish(key)
        result = await self._record(message, conversation, activity_id, failure)
        if self._on_attempt is not None:
            self._on_attempt(result.outcome, _describe(failure)[0] if failure else 200)
        return result

    async def _claim_holds(self, message_id: int) -> bool:
        """Say whether the claim is sure to outlast a send, waiting for a heartbeat if need be."""
        needed = self._limits.send_timeout + self._limits.fence_margin
        while True:
            left = self._claims.left(message_id)
            if left is None:
                return False
            if left >= needed:
                return True
            if left <= 0:
                # Never renewed in time: another sender may have it now. This one fences
                # itself off from the message rather than risk sending it twice.
                self._claims.drop([message_id])
                return False
            await self._claims.next_renewal(left)

    async def _activity_of(self, message: OutboxMessage) -> Activity:
        """Return the activity of an outbox message (making a request card now if need be)."""
        made = await outbox_activity(
            database=self._database, framework=self._framework, message=message
        )
        return Activity().deserialize(made)

    async def _post(self, activity: Activity, conversation: TeamsConversation) -> str | None:
        """Send an activity to the person's chat; return Teams' activity id."""
        sent: list[str | None] = []
        failures: list[Exception] = []

        async def send(context: TurnContext) -> None:
            context.turn_state[SEND_TIMEOUT] = self._limits.send_timeout
            try:
                response = await context.send_activity(activity)
            except Exception as error:
                # Raised here, botbuilder would hand it to on_turn_error, which apologises
                # to the person and swallows it; we want it.
                failures.append(error)
                return
            sent.append(response.id if response else None)

        await self._adapter.continue_conversation(
            conversation_reference(conversation), send, self._app_id
        )
        if failures:
            raise failures[0]
        if not sent:
            raise RuntimeError("the adapter did not run the send")
        return sent[0]

    async def _record(
        self,
        message: OutboxMessage,
        conversation: TeamsConversation,
        activity_id: str | None,
        failure: BaseException | None,
    ) -> DeliveryResult:
        """Write the outcome of one attempt to the outbox and return it."""
        assert message.id is not None
        now = self._clock()
        attempt = message.attempts + 1
        self._claims.drop([message.id])
        if failure is None:
            async with self._database.session() as session:
                recorded = await outbox.record_sent(
                    session=session, message_id=message.id, activity_id=activity_id, now=now
                )
            if not recorded:
                log.warning("outbox message %s was sent by another sender too", message.id)
            log.info("outbox message %s sent (attempt %d)", message.id, attempt)
            return DeliveryResult(message.id, Delivery.SENT)

        if isinstance(failure, UnrenderableMessageError):
            return await self._undeliverable(message, str(failure))
        status, detail = _describe(failure)
        if status in UNDELIVERABLE_STATUSES or (
            400 <= status < 500 and status not in RETRY_STATUSES
        ):
            return await self._undeliverable(message, detail)
        if attempt >= self._limits.max_attempts:
            return await self._undeliverable(
                message, f"gave up after {attempt} attempts (last: {detail})"
            )
        retry_after = None
        if status == 429 and isinstance(failure, ErrorResponseException):
            retry_after = retry_after_of(failure, now)
        if retry_after is not None:
            delay = min(retry_after, self._limits.retry_after_cap)
        else:
            delay = self._backoff(attempt)
        if status == 429:
            self._limiter.throttled(conversation.conversation_id, delay)
        retry_at = now + timedelta(seconds=delay)
        async with self._database.session() as session:
            recorded = await outbox.record_retry(
                session=session,
                message_id=message.id,
                instance_id=self.instance_id,
                error=detail,
                next_attempt_at=retry_at,
            )
        log.info(
            "outbox message %s: %s on attempt %d; next try in %.1f s",
            message.id,
            detail,
            attempt,
            delay,
        )
        if not recorded:
            log.warning("outbox message %s: claim lost before recording", message.id)
        return DeliveryResult(message.id, Delivery.FAILED, detail, retry_at)

    async def _undeliverable(self, message: OutboxMessage, error: str) -> DeliveryResult:
        assert message.id is not None
        async with self._database.session() as session:
            recorded = await outbox.record_undeliverable(
                session=session, message_id=message.id, instance_id=self.instance_id, error=error
            )
        log.warning("outbox message %s undeliverable: %s", message.id, error)
        if not recorded:
            log.warning("outbox message %s: claim lost before recording", message.id)
        return DeliveryResult(message.id, Delivery.UNDELIVERABLE, error)

    def _backoff(self, attempt: int) -> float:
        """Return an exponential back-off with jitter for the attempt that just failed."""
        ceiling = min(self._limits.backoff_cap, self._limits.backoff_base * 2.0 ** (attempt - 1))
        # Between half and all of it, so retries spread out but still grow.
        return ceiling * self._random.uniform(0.5, 1.0)


def _describe(failure: BaseException) -> tuple[int, str]:
    """Return the HTTP status (0 if none) and a log-safe description of a failed send."""
    if isinstance(failure, ErrorResponseException):
        status = getattr(getattr(failure, "response", None), "status_code", 0)
        status = status if isinstance(status, int) else 0
        return status, f"HTTP {status}"
    if isinstance(failure, TimeoutError):
        return 0, "timed out"
    return 0, f"{type(failure).__name__}"
