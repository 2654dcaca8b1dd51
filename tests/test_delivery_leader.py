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
    busiest_second,
    decode,
    outbox_rate,
)
from delivery.limits import RateLimiter, SendLimits
from storage import sending
from storage.database import Database
from tests.delivery_helpers import VirtualClock, settle

EPOCH = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TIMES = LeaderTimes(lease=10.0, heartbeat=1.0, stale=5.0, answers_window=10, floor=5.0)


class MemoryMembers:
    """The lease and the heartbeats as the database keeps them, in memory."""

    def __init__(self) -> None:
        self.holder: str | None = None
        self.until = EPOCH
        self.term = 0
        self.seen: dict[str, tuple[datetime, str]] = {}
        self.unreachable: set[str] = set()

    async def beat(
        self, *, instance: str, now: datetime, answers: str, lease: float | None
    ) -> sending.Heartbeat:
        if instance in self.unreachable:
            raise ConnectionError("database unreachable")
        self.seen[instance] = (now, answers)
        leader = False
        if lease is not None and (self.holder == instance or self.until <= now):
            if self.holder != instance:
                self.term += 1
                self.holder = instance
            self.until = now + timedelta(seconds=lease)
            leader = True
        others = [
            text
            for name, (seen, text) in self.seen.items()
            if name != instance and seen > now - timedelta(seconds=TIMES.stale)
        ]
        return sending.Heartbeat(leader=leader, term=self.term if leader else 0, others=others)

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


async def test_one_of_two_leads_leaving_room_for_the_others_answers(clock: VirtualClock) -> None:
    members, together = MemoryMembers(), []
    first = Instance("a", members, clock, together)
    await clock.advance(0.5)
    second = Instance("b", members, clock, together)
    await clock.advance(3.0)
    assert first.leader.leading
    assert not second.leader.leading
    assert first.leader.sending
    assert not second.leader.sending
    # With another instance alive but silent, the outbox has the whole budget.
    assert first.limiter.budget_rate == 48.0
    await second.answer(6)  # in one second
    await clock.advance(1.0)
    await second.answer(2)
    await clock.advance(2.5)
    assert first.limiter.budget_rate == 42.0, "the budget less the others' busiest second"
    # Ten seconds on, the busy second is forgotten and the budget comes back.
    await clock.advance(11.0)
    assert first.limiter.budget_rate == 48.0
    assert max(together) == 1
    await first.halt()
    await second.halt()


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


def test_answers_are_counted_per_second_and_the_others_summed_by_second() -> None:
    seconds = AnswerSeconds(keep=4)
    for second in (100, 100, 101, 103, 103, 103):
        seconds.note(second)
    assert seconds.encode(103) == "100:2,1,0,3"
    assert decode(seconds.encode(105)) == {102: 0, 103: 3, 104: 0, 105: 0}
    assert decode("nonsense") == {}
    assert decode("") == {}
    others = ["100:2,1,0,3", "101:4,0,1,0"]
    # Second 101: 1 + 4; second 103: 3 + 1.
    assert busiest_second(others, now=103, window=10) == 5
    assert busiest_second(others, now=103, window=2) == 4
    assert busiest_second([], now=103, window=10) == 0


def test_the_outbox_keeps_a_floor_and_never_more_than_the_budget() -> None:
    assert outbox_rate(48.0, 6, 5.0) == 42.0
    assert outbox_rate(48.0, 60, 5.0) == 5.0
    assert outbox_rate(48.0, 0, 5.0) == 48.0
    with pytest.raises(ValueError, match="three heartbeats"):
        LeaderTimes(lease=2.0, heartbeat=1.0)


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

    async def beat(name: str, at: float, answers: str = "", *, candidate: bool = True):  # type: ignore[no-untyped-def]
        async with database.session() as session:
            return await sending.heartbeat(
                session=session,
                instance=name,
                now=EPOCH + timedelta(seconds=at),
                answers=answers,
                stale=stale,
                lease=lease if candidate else None,
            )

    first = await beat("a", 0.0, "0:1")
    assert first.leader
    assert first.term == 1
    assert first.others == []
    second = await beat("b", 1.0, "1:4")
    assert not second.leader
    assert second.others == ["0:1"]
    assert (await beat("a", 2.0, "2:0")).leader, "the holder renews"
    assert not (await beat("b", 11.0)).leader, "renewed at 2: held until 12"
    quiet = await beat("c", 11.5, candidate=False)
    assert not quiet.leader
    assert quiet.others == [""], "only b's heartbeat: a, not seen since 2, is stale"
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
                answers="",
                stale=timedelta(seconds=5),
                lease=timedelta(seconds=10),
            )
            return found.leader

    results = await asyncio.gather(*(beat(f"i{n}") for n in range(4)))
    assert sorted(results) == [False, False, False, True]
