"""One sender for all instances on one database, within one Teams budget, and failover.

Teams allows an app 50 requests a second per tenant, whichever instance makes them. So of
the instances on one PostgreSQL database, one at a time sends the outbox: the *leader*,
which holds a lease in the database (`storage.sending`) and renews it every `heartbeat`.

The budget (`PQF_SEND_RATE`, 48 of Teams' 50) is shared without settings per instance.
Every other instance gives its answers to people a *share*: half as much again as it
answered per second over the last 10 s through the Connector, plus one (`answer_share`;
one for an instance that has made none: a press of an Action.Execute button is answered in
its HTTP response, which costs Teams' budget nothing, so an idle cluster leaves the outbox
48 - 2 = 46 requests/s with three instances); it keeps
its answers within that share (an answer over it waits, within its turn's time, for the
next second: bursts are smoothed, not refused by Teams) and writes the share in its
heartbeat. The leader counts its own answers in its own limiter as they are made
(`delivery.answers`) and gives the outbox the budget less the others' shares
(`outbox_rate`). A share grows by at most `step` a heartbeat, so the leader hears of it
within a heartbeat, while the 2 requests/s between the budget and Teams' limit cover the
difference meanwhile; it shrinks at once.

Failover: a leader that dies stops renewing; its lease lapses within `lease` of its last
renewal and another instance takes it at its next heartbeat. The dead leader's claimed
messages lapse on their own lease (`delivery.claims`, 11 s by default) and the new leader
takes them then: within 15 s of the death. A leader that cannot renew (the database
unreachable, the process stalled) stops its sender once the lease it last confirmed has
passed; its claims fence each send on their own, so a message is never sent by two
instances at once, whatever the leases do. A leader that stops in good order gives the
lease up, and another takes it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from delivery.answers import RequestCounter
from delivery.limits import Monotonic, RateLimiter, Sleep, first_of
from storage import sending
from storage.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaderTimes:
    """How often instances beat, how long the lease lasts, how the budget is shared (s)."""

    lease: float = 10.0
    heartbeat: float = 1.0
    # Another instance not seen for this long no longer counts (it stopped or died).
    stale: float = 5.0
    # An instance's answers per second are taken over this many seconds.
    answers_window: int = 10
    # An instance's share for its answers: never below `share_floor`, growing by at most
    # `step` a heartbeat, never above `share_cap`.
    share_floor: float = 1.0
    step: float = 2.0
    share_cap: float = 20.0
    # The outbox keeps at least this rate, however busy the others' answers.
    floor: float = 5.0

    def __post_init__(self) -> None:
        if self.heartbeat <= 0 or self.lease < 3 * self.heartbeat:
            raise ValueError("the lease must last at least three heartbeats")
        if self.answers_window < 1 or self.floor <= 0 or self.stale <= self.heartbeat:
            raise ValueError("answers_window, floor positive; stale longer than a heartbeat")
        if not 1 <= self.share_floor <= self.share_cap or not 0 < self.step <= 2:
            # The budget's 2 requests/s below Teams' limit cover a share's growth until the
            # leader has heard of it.
            raise ValueError("1 <= share_floor <= share_cap; 0 < step <= 2")


class AnswerSeconds:
    """This instance's answers to people, counted per second of the wall clock."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._counts: deque[tuple[int, int]] = deque()  # (second, count), oldest first

    def note(self, second: int) -> None:
        """Count one answer begun in this second."""
        if self._counts and self._counts[-1][0] >= second:  # this second (or the clock stepped)
            self._counts[-1] = (self._counts[-1][0], self._counts[-1][1] + 1)
        else:
            self._counts.append((second, 1))
        self._forget(second)

    def per_second(self, now: int) -> float:
        """Return the answers per second over the `keep` whole seconds before `now`."""
        self._forget(now)
        return sum(c for s, c in self._counts if s < now) / self._keep

    def _forget(self, now: int) -> None:
        while self._counts and self._counts[0][0] < now - self._keep:
            self._counts.popleft()


def answer_share(per_second: float, *, floor: float, cap: float) -> float:
    """Return the requests per second an instance allows its answers, answering this fast."""
    return min(cap, max(floor, float(math.ceil(1.5 * per_second + 1))))


def outbox_rate(budget: float, others_share: float, floor: float) -> float:
    """Return the rate the outbox may use: the budget less the other instances' shares."""
    return max(floor, min(budget, budget - others_share))


class CountedReplies:
    """The answers to people, kept within Teams' limits and counted per second for the others."""

    def __init__(
        self, counter: RequestCounter, seconds: AnswerSeconds, clock: Callable[[], datetime]
    ) -> None:
        self._counter = counter
        self._seconds = seconds
        self._clock = clock

    async def reply_starting(self, conversation: str, within: float) -> bool:
        self._seconds.note(math.floor(self._clock().timestamp()))
        return await self._counter.reply_starting(conversation, within)

    def reply_finished(self, conversation: str) -> None:
        self._counter.reply_finished(conversation)


class Members(Protocol):
    """Where the instances beat and the lease is kept (`DatabaseMembers` on the database)."""

    async def beat(
        self, *, instance: str, now: datetime, share: float, lease: float | None
    ) -> sending.Heartbeat:
        """Record this instance and its share; take or renew the lease if `lease` is given."""
        ...

    async def resign(self, *, instance: str, now: datetime) -> None:
        """Give up the lease if held, and forget this instance."""
        ...


class DatabaseMembers:
    """The members and the lease in the database."""

    def __init__(self, database: Database, stale: float) -> None:
        self._database = database
        self._stale = timedelta(seconds=stale)

    async def beat(
        self, *, instance: str, now: datetime, share: float, lease: float | None
    ) -> sending.Heartbeat:
        async with self._database.session() as session:
            return await sending.heartbeat(
                session=session,
                instance=instance,
                now=now,
                share=share,
                stale=self._stale,
                lease=None if lease is None else timedelta(seconds=lease),
            )

    async def resign(self, *, instance: str, now: datetime) -> None:
        async with self._database.session() as session:
            await sending.resign(session=session, instance=instance, now=now)


class Sender(Protocol):
    """What the leader runs: `delivery.sender.OutboxSender`."""

    async def run(self, stop: asyncio.Event) -> None: ...


class SendingLeader:
    """Beat for this instance; while it holds the lease, run the sender at its share."""

    def __init__(
        self,
        *,
        members: Members,
        instance: str,
        sender: Sender | None,
        limiter: RateLimiter,
        budget: float,
        seconds: AnswerSeconds,
        clock: Callable[[], datetime],
        monotonic: Monotonic,
        sleep: Sleep = asyncio.sleep,
        times: LeaderTimes | None = None,
    ) -> None:
        self._members = members
        self.instance = instance
        self._sender = sender  # None: this instance never sends (PQF_RUN_SENDER=false)
        self._limiter = limiter
        self._budget = budget
        self._seconds = seconds
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self.times = times or LeaderTimes()
        self._sure_until: float | None = None  # while leader: the lease is sure until then
        self.share = self.times.share_floor  # for this instance's answers, while not leader
        self._sending: asyncio.Task[None] | None = None
        self._stop_sending = asyncio.Event()
        self.term = 0
        self.terms = 0  # how many times this instance became the leader

    @property
    def leading(self) -> bool:
        """Whether this instance holds the lease, as far as it is sure."""
        return self._sure_until is not None and self._monotonic() < self._sure_until

    @property
    def sending(self) -> bool:
        """Whether this instance's sender is running (or finishing its sends)."""
        return self._sending is not None and not self._sending.done()

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until `stop` is set; then stop sending and give up the lease."""
        try:
            while not stop.is_set():
                await self.beat()
                await first_of(stop, self._sleep(self._next_wait()))
                self._check_lease()
        finally:
            await self._stop_sender()
            if self._sender is not None:
                try:
                    await self._members.resign(instance=self.instance, now=self._clock())
                except Exception as error:
                    log.warning("could not give up the sending lease: %s", type(error).__name__)

    def _next_wait(self) -> float:
        wait = self.times.heartbeat
        if self._sure_until is not None:  # wake when the lease would lapse, if sooner
            wait = min(wait, max(0.0, self._sure_until - self._monotonic()))
        return wait

    async def beat(self) -> None:
        """One heartbeat: record this instance, renew or take the lease, share the budget."""
        since = self._monotonic()
        now = self._clock()
        wanted = answer_share(
            self._seconds.per_second(math.floor(now.timestamp())),
            floor=self.times.share_floor,
            cap=self.times.share_cap,
        )
        # Grown a step at a time, and kept to before the leader has heard of it; shrunk at once.
        self.share = min(wanted, self.share + self.times.step)
        try:
            found = await self._members.beat(
                instance=self.instance,
                now=now,
                share=self.share,
                lease=self.times.lease if self._sender is not None else None,
            )
        except Exception as error:
            # The lease lasts as long as it was last confirmed; `_check_lease` ends it then.
            log.warning("sending heartbeat failed: %s", type(error).__name__)
            self._check_lease()
            return
        if found.leader:
            if not self.leading:
                self.terms += 1
                log.info("instance %s sends the outbox (term %d)", self.instance, found.term)
            self._sure_until = since + self.times.lease
            self.term = found.term
            self._limiter.set_rate(outbox_rate(self._budget, found.others_share, self.times.floor))
            self._start_sender()
        else:
            self._lose("another instance holds the lease")
            # No other instance alive (the leader has not beaten yet, or there is none):
            # the answers keep to the budget; else to this instance's share.
            self._limiter.set_rate(self.share if found.others else self._budget)

    def _check_lease(self) -> None:
        if self._sure_until is not None and not self.leading:
            self._lose("the lease lapsed unrenewed")

    def _lose(self, why: str) -> None:
        if self._sure_until is not None:
            log.warning("instance %s stops sending the outbox: %s", self.instance, why)
        self._sure_until = None
        self.term = 0
        self._stop_sending.set()
        self._limiter.set_rate(self.share)

    def _start_sender(self) -> None:
        # Not while the sender runs, or still finishes the sends of a term lost since: a
        # later heartbeat starts it again.
        if self._sender is None or self.sending:
            return
        self._stop_sending = asyncio.Event()
        self._sending = asyncio.create_task(
            self._run_sender(self._sender, self._stop_sending), name="outbox-sender"
        )

    @staticmethod
    async def _run_sender(sender: Sender, stop: asyncio.Event) -> None:
        try:
            await sender.run(stop)
        except Exception as error:  # started again at the next heartbeat
            log.error("outbox sender failed: %s", type(error).__name__)

    async def _stop_sender(self) -> None:
        self._stop_sending.set()
        if self._sending is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._sending
