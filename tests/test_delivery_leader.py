"""The sending leader: one instance sends, within the budget less the others' answers, on
virtual time; the lease's rows on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from delivery.leader import (
    AnswerSeconds,
    CountedReplies,
    LeaderTimes,
    SendingLeader,
    answer_share,
    outbox_rate,
)
from delivery.limits import RateLimiter, SendLimits
from storage import sending
from storage.database import Database
from tests.delivery_helpers import VirtualClock, settle

EPOCH = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TIMES = LeaderTimes(lease=10.0, heartbeat=1.0, stale=5.0, answers_window=10, floor=5.0)
FLOOR = TIMES.share_floor


class MemoryMembers:
    """The lease and the heartbeats as the database keeps them, in memory."""

    def __init__(self) -> None:
        self.holder: str | None = None
        self.until = EPOCH
        self.term = 0
        self.seen: dict[str, tuple[datetime, float]] = {}
        self.unreachable: set[str] = set()

    async def beat(
        self, *, instance: str, now: datetime, share: float, lease: float | None
    ) -> sending.Heartbeat:
        if instance in self.unreachable:
            raise ConnectionError("database unreachable")
        self.seen[instance] = (now, share)
        leader = False
        if lease is not None and (self.holder == instance or self.until <= now):
            if self.holder != instance:
                self.term += 1
                self.holder = instance
            self.until = now + timedelta(seconds=lease)
            leader = True
        others = [
            share
            for name, (seen, share) in self.seen.items()
            if name != instance and seen > now - timedelta(seconds=TIMES.stale)
        ]
        return sending.Heartbeat(
            leader=leader,
            term=self.term if leader else 0,
            others=len(others),
            others_share=sum(others),
        )

    async def resign(self, *, instance: str, now: datetime) -> None:
        if self.holder == instance:
            self.until = now
        self.seen.pop(instance, None)


class CountingSender:
    """Stands for the outbox sender: counts how many instances send at once."""

    running: ClassVar[set[str]] = set()

    def __init__(self, name: str, together: list[int]) -> None:
        self.name = name
        self.together = together
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        CountingSender.running.add(self.name)
        self.together.append(len(CountingSender.running))
        try:
            await stop.wait()
        finally:
            CountingSender.running.discard(self.name)


class Instance:
    def __init__(self, name: str, members: MemoryMembers, clock: VirtualClock, together: list[int]):
        self.clock = clock
        self.limiter = RateLimiter(SendLimits(global_rate=48.0), clock.monotonic, clock.sleep)
        self.seconds = AnswerSeconds(TIMES.answers_window)
        self.sender = CountingSender(name, together)
        self.wall: Callable[[], datetime] = lambda: EPOCH + timedelta(seconds=clock.now)
        self.replies = CountedReplies(self.limiter, self.seconds, self.wall)
        self.leader = SendingLeader(
            members=members,
            instance=name,
            sender=self.sender,
            limiter=self.limiter,
            budget=48.0,
            seconds=self.seconds,
            clock=self.wall,
            monotonic=clock.monotonic,
            sleep=clock.sleep,
            times=TIMES,
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.leader.run(self.stop))

    async def answer(self, count: int) -> None:
        for number in range(count):
            await self.replies.reply_starting(f"chat-{number}", within=5.0)
            self.replies.reply_finished(f"chat-{number}")

    async def halt(self) -> None:
        self.stop.set()
        await settle()
        await self.task


@pytest.fixture
def clock() -> VirtualClock:  # type: ignore[override]
    CountingSender.running = set()
    return VirtualClock(start=0.0)


async def test_one_instance_leads_alone_at_the_full_budget(clock: VirtualClock) -> None:
    members, together = MemoryMembers(), []
    alone = Instance("a", members, clock, together)
    await clock.advance(0.5)
    assert alone.leader.leading
    assert alone.leader.sending
    assert alone.limiter.budget_rate == 48.0, "its own answers count in its own limiter"
    await alone.answer(7)
    await clock.advance(3.0)
    assert alone.limiter.budget_rate == 48.0
    await alone.halt()
    assert not alone.leader.sending
    assert members.until == EPOCH + timedelta(seconds=clock.now), "gave the lease up"


async def test_one_of_two_leads_leaving_the_others_share_free(clock: VirtualClock) -> None:
    members, together = MemoryMembers(), []
    first = Instance("a", members, clock, together)
    await clock.advance(0.5)
    second = Instance("b", members, clock, together)
    await clock.advance(3.0)
    assert first.leader.leading
    assert not second.leader.leading
    assert first.leader.sending
    assert not second.leader.sending
    # A quiet instance keeps the floor for its answers, and the outbox has the rest.
    assert second.limiter.budget_rate == FLOOR
    assert first.limiter.budget_rate == 48.0 - FLOOR
    # It answers 4 people a second: a share of 1.5 x 4 + 1 = 7, reached in steps of 2 a
    # heartbeat, each step heard by the leader within a heartbeat.
    shares: list[tuple[float, float]] = []
    answering = []
    for _ in range(14):
        answering.append(asyncio.create_task(second.answer(4)))
        await clock.advance(1.0)
        shares.append((second.leader.share, first.limiter.budget_rate))
    await clock.advance(2.0)
    await asyncio.gather(*answering)
    # (Answers that waited for room spill into the next second: 4 and a little a second.)
    assert shares[-1][0] in (7.0, 8.0), shares
    assert shares[-1][1] == 48.0 - shares[-1][0], "the leader has heard of the last step"
    assert all(share + rate <= 48.0 + TIMES.step for share, rate in shares)
    # The answers over the share wait for room: at most the share begin in any second.
    begun: list[float] = []

    async def burst() -> None:
        for number in range(14):
            await second.limiter.reply_starting(f"chat-{number}", within=5.0)
            begun.append(clock.now)
            second.limiter.reply_finished(f"chat-{number}")

    share = second.leader.share
    task = asyncio.create_task(burst())
    await clock.advance(3.0)
    await task
    assert len(begun) == 14
    assert max(sum(1 for t in begun if s <= t < s + 1.0) for s in begun) <= share
    # Quiet again, the share shrinks back to the floor and the outbox has it back.
    await clock.advance(12.0)
    assert second.leader.share == FLOOR
    assert first.limiter.budget_rate == 48.0 - FLOOR
    assert max(together) == 1
    await first.halt()
    await second.halt()


async def test_an_idle_cluster_leaves_the_outbox_all_but_one_a_second_an_instance(
    clock: VirtualClock,
) -> None:
    members, together = MemoryMembers(), []
    first = Instance("a", members, clock, together)
    await clock.advance(0.5)
    second = Instance("b", members, clock, together)
    third = Instance("c", members, clock, together)
    await clock.advance(3.0)
    assert first.leader.leading
    # Presses answered in place make no Connector answers: the others keep one a second.
    assert second.limiter.budget_rate == third.limiter.budget_rate == FLOOR == 1.0
    assert first.limiter.budget_rate == 48.0 - 2 * FLOOR >= 46.0
    # A burst of answers on a quiet instance: the first goes at once, the rest wait for
    # room within their turn's time (none refused), never more than the share in a second,
    # while the share grows a step a heartbeat and the leader leaves it free.
    begun: list[tuple[float, float]] = []  # (when, the share then)
    in_time: list[bool] = []

    async def answer(number: int) -> None:
        in_time.append(await second.replies.reply_starting(f"chat-{number}", within=10.0))
        begun.append((clock.now, second.limiter.budget_rate))
        second.replies.reply_finished(f"chat-{number}")

    started = clock.now
    burst = [asyncio.create_task(answer(n)) for n in range(8)]
    budgets: list[float] = []
    for _ in range(10):
        await clock.advance(1.0)
        budgets.append(first.limiter.budget_rate + second.leader.share + third.leader.share)
    await asyncio.gather(*burst)
    assert in_time == [True] * 8, "every answer found room within its time"
    assert begun[0][0] == started, "the first answer waits for nothing"
    assert begun[1][0] - started >= 0.9, "the second waits for the next second"
    for when, _share in begun:
        in_a_second = [share for t, share in begun if when <= t < when + 1.0]
        assert len(in_a_second) <= max(in_a_second), begun
    assert max(share for _, share in begun) > FLOOR, "the share grew with the answers"
    assert all(total <= 48.0 + TIMES.step for total in budgets), budgets
    # Quiet again: back to one a second, and the outbox to 46.
    await clock.advance(12.0)
    assert second.leader.share == FLOOR
    assert first.limiter.budget_rate == 48.0 - 2 * FLOOR
    assert max(together) == 1
    for instance in (first, second, third):
        await instance.halt()


async def test_a_dead_leader_is_replaced_once_its_lease_lapses_never_before(
    clock: VirtualClock,
) -> None:
    members, together = MemoryMembers(), []
    first = Instance("a", members, clock, together)
    await clock.advance(0.5)
    second = Instance("b", members, clock, together)
    await clock.advance(2.0)
    assert first.leader.leading
    # The leader can no longer reach the database (or, to the others, it died).
    members.unreachable.add("a")
    died = clock.now
    taken_over = None
    for _ in range(200):
        await clock.advance(0.1)
        assert len(CountingSender.running) <= 1, "two instances sent at once"
        if second.leader.sending and taken_over is None:
            taken_over = clock.now
    assert not first.leader.sending, "stopped sending once its lease lapsed"
    assert taken_over is not None
    assert taken_over - died <= TIMES.lease + TIMES.heartbeat + 0.11, taken_over - died
    assert members.holder == "b"
    assert members.term == 2
    # Back again, the old leader does not take the lease from the new one.
    members.unreachable.clear()
    await clock.advance(3.0)
    assert second.leader.leading
    assert not first.leader.leading
    assert max(together) == 1
    await first.halt()
    await second.halt()


async def test_a_leader_that_stops_hands_over_within_a_heartbeat(clock: VirtualClock) -> None:
    members, together = MemoryMembers(), []
    first = Instance("a", members, clock, together)
    await clock.advance(0.5)
    second = Instance("b", members, clock, together)
    await clock.advance(2.0)
    await first.halt()
    await clock.advance(TIMES.heartbeat + 0.01)
    assert second.leader.leading
    assert second.leader.sending
    await second.halt()


async def test_an_instance_that_does_not_send_never_leads(clock: VirtualClock) -> None:
    members = MemoryMembers()
    limiter = RateLimiter(SendLimits(), clock.monotonic, clock.sleep)
    seconds = AnswerSeconds(10)
    quiet = SendingLeader(
        members=members,
        instance="q",
        sender=None,
        limiter=limiter,
        budget=48.0,
        seconds=seconds,
        clock=lambda: EPOCH + timedelta(seconds=clock.now),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        times=TIMES,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(quiet.run(stop))
    await clock.advance(3.0)
    assert not quiet.leading
    assert members.holder is None
    assert "q" in members.seen
    stop.set()
    await settle()
    await task


def test_answers_are_counted_per_second_and_make_a_share() -> None:
    seconds = AnswerSeconds(keep=4)
    for second in (100, 100, 101, 103, 103, 103):
        seconds.note(second)
    assert seconds.per_second(104) == 6 / 4
    assert seconds.per_second(103) == 3 / 4, "the second under way does not count yet"
    assert seconds.per_second(106) == 3 / 4, "100 and 101 are forgotten"
    assert seconds.per_second(200) == 0.0
    assert answer_share(0.0, floor=3.0, cap=20.0) == 3.0
    assert answer_share(4.0, floor=3.0, cap=20.0) == 7.0
    assert answer_share(4.1, floor=3.0, cap=20.0) == 8.0
    assert answer_share(40.0, floor=3.0, cap=20.0) == 20.0
    # The default floor: one a second for an instance that has made no Connector answers.
    assert answer_share(0.0, floor=FLOOR, cap=20.0) == 1.0
    assert answer_share(0.4, floor=FLOOR, cap=20.0) == 2.0


def test_the_outbox_keeps_a_floor_and_never_more_than_the_budget() -> None:
    assert outbox_rate(48.0, 6, 5.0) == 42.0
    assert outbox_rate(48.0, 2, 5.0) == 46.0
    assert outbox_rate(48.0, 60, 5.0) == 5.0
    assert outbox_rate(48.0, 0, 5.0) == 48.0
    with pytest.raises(ValueError, match="three heartbeats"):
        LeaderTimes(lease=2.0, heartbeat=1.0)
    with pytest.raises(ValueError, match="step"):
        LeaderTimes(step=5.0)


async def test_a_lower_rate_holds_the_outbox_to_it(clock: VirtualClock) -> None:
    limiter = RateLimiter(
        SendLimits(global_rate=48.0, global_burst=1, window_margin=0.0),
        clock.monotonic,
        clock.sleep,
    )
    limiter.set_rate(10.0)
    started: list[float] = []

    async def send(number: int) -> None:
        await limiter.acquire(f"chat-{number}")
        started.append(clock.now)
        limiter.finish(f"chat-{number}")

    tasks = [asyncio.create_task(send(n)) for n in range(30)]
    await clock.advance(2.0)
    within_a_second = [t for t in started if 0.5 <= t < 1.5]
    assert 9 <= len(within_a_second) <= 10, started
    limiter.set_rate(48.0)
    await clock.advance(1.0)
    assert len(started) == 30
    await asyncio.gather(*tasks)


async def test_the_lease_rows_go_to_one_holder_at_a_time(database: Database) -> None:
    lease, stale = timedelta(seconds=10), timedelta(seconds=5)

    async def beat(name: str, at: float, share: float = 3.0, *, candidate: bool = True):  # type: ignore[no-untyped-def]
        async with database.session() as session:
            return await sending.heartbeat(
                session=session,
                instance=name,
                now=EPOCH + timedelta(seconds=at),
                share=share,
                stale=stale,
                lease=lease if candidate else None,
            )

    first = await beat("a", 0.0, 4.0)
    assert first.leader
    assert first.term == 1
    assert first.others == 0
    second = await beat("b", 1.0, 5.0)
    assert not second.leader
    assert (second.others, second.others_share) == (1, 4.0)
    renewed = await beat("a", 2.0, 3.0)
    assert renewed.leader, "the holder renews"
    assert (renewed.others, renewed.others_share) == (1, 5.0)
    assert not (await beat("b", 11.0)).leader, "renewed at 2: held until 12"
    quiet = await beat("c", 11.5, 6.0, candidate=False)
    assert not quiet.leader
    assert (quiet.others, quiet.others_share) == (1, 3.0), "b's: a, not seen since 2, is stale"
    taken = await beat("b", 12.0)
    assert taken.leader
    assert taken.term == 2
    assert not (await beat("a", 12.5)).leader, "the old holder does not take it back"
    async with database.session() as session:
        held = await sending.leader(session=session, now=EPOCH + timedelta(seconds=13))
        assert held is not None
        assert held.holder == "b"
        assert held.since == EPOCH + timedelta(seconds=12)
        assert await sending.resign(
            session=session, instance="b", now=EPOCH + timedelta(seconds=13)
        )
        assert not await sending.resign(session=session, instance="a", now=EPOCH)
    after = await beat("a", 13.0)
    assert after.leader, "a lease given up is taken at once"
    assert after.term == 3


async def test_two_instances_racing_for_a_new_lease_get_one_holder(database: Database) -> None:
    async def beat(name: str) -> bool:
        async with database.session() as session:
            found = await sending.heartbeat(
                session=session,
                instance=name,
                now=EPOCH,
                share=3.0,
                stale=timedelta(seconds=5),
                lease=timedelta(seconds=10),
            )
            return found.leader

    results = await asyncio.gather(*(beat(f"i{n}") for n in range(4)))
    assert sorted(results) == [False, False, False, True]
