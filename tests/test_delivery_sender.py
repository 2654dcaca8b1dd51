"""The one sender: Teams' rate limits, retries, two senders, a crash, on SQLite and PostgreSQL.

The fake connector enforces Teams' limits (it answers 429 to a caller over them) and counts
each delivered text, so "nothing twice" and "never over the limits" are checked where
Teams would see them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from bisect import bisect_right
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
)
from sqlmodel import col, select

from bot.adapter import create_adapter
from bot.settings import load_settings
from delivery.answers import TeamsAdapter
from delivery.limits import SendLimits
from delivery.outcomes import Delivery, parse_retry_after
from delivery.sender import DrainReport, OutboxSender
from storage import outbox, roster
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus, Staff
from tests.conftest import ROOT
from tests.delivery_helpers import render_with, wait_until
from tests.fake_connector import FakeConnector, Fault, FaultPlan

PERIOD = "2026-11"
# Quick retries and short slow-downs, so faults cost the tests little time; many attempts,
# so none gives up.
QUICK = SendLimits(
    backoff_base=0.2,
    backoff_cap=1.0,
    max_attempts=12,
    send_timeout=1.0,
    lease=10.0,
    poll_interval=0.05,
    slowdown_seconds=0.5,
)


@dataclass(frozen=True)
class Person:
    staff_id: int
    conversation_id: str
    texts: list[str]  # what they are sent, in the order it was queued


@pytest.fixture
def adapter(monkeypatch: pytest.MonkeyPatch) -> CloudAdapter:
    """Return the bot's adapter (with its on_turn_error), without credentials."""
    monkeypatch.setenv("PQF_ENVIRONMENT", "development")
    monkeypatch.setenv("MICROSOFT_APP_ID", "")
    return create_adapter(load_settings(env_file=None))


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector(enforce_limits=True).start()
    yield fake
    await fake.close()


async def seed(
    database: Database,
    connector: FakeConnector,
    *,
    people: int,
    each: int,
    installed: bool = True,
    first: int = 0,
) -> list[Person]:
    """Add people (with a Teams chat at the fake connector) and queue `each` messages for each."""
    added: list[Person] = []
    async with database.session() as session:
        for n in range(first, first + people):
            staff = Staff(
                email=f"person{n}@example.com",
                aad_object_id=f"aad-{n}",
                name=f"Person {n}",
                role_code="SW",
                team="Team",
            )
            session.add(staff)
            await session.flush()
            assert staff.id is not None
            conversation_id = f"a:person{n}"
            if installed:
                await roster.remember_conversation(
                    session=session,
                    aad_object_id=f"aad-{n}",
                    reference=roster.ChatReference(
                        channel_id="msteams", service_url=connector.url,
                        conversation_id=conversation_id, tenant_id="t",
                        teams_user_id=f"29:person{n}", bot_id="28:bot",
                    ),
                )  # fmt: skip
            added.append(Person(staff.id, conversation_id, []))
        # Queued round-robin, so each person's messages are spread among the others'.
        for m in range(each):
            for person in added:
                text = f"{person.conversation_id}/{m:03d}"
                await outbox.enqueue(
                    session=session,
                    key=f"test:{text}",
                    recipient_id=person.staff_id,
                    purpose="test",
                    period=PERIOD,
                    activity={"type": "message", "text": text},
                )
                person.texts.append(text)
    return added


async def messages(database: Database) -> list[OutboxMessage]:
    async with database.session() as session:
        return list(await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def assert_within_teams_limits(connector: FakeConnector) -> None:
    """Check the fake never had to refuse a request for exceeding Teams' rate limits."""
    assert connector.limit_rejections == 0


def assert_each_once_in_order(connector: FakeConnector, people: list[Person]) -> None:
    delivered = connector.delivered()
    assert max(delivered.values(), default=1) == 1, "a message was delivered twice"
    for person in people:
        assert connector.delivered_texts(person.conversation_id) == person.texts


# -- the behaviour under load and faults ----------------------------------------------------


async def test_a_broadcast_under_faults_is_delivered_once_within_the_limits(
    database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    people = await seed(database, connector, people=125, each=2)
    blocked, reachable = people[:10], people[10:]
    connector.blocked = {p.conversation_id for p in blocked}
    connector.faults = FaultPlan(
        seed=20261123,
        throttle_with_retry_after=0.02,
        retry_after="1",
        throttle=0.02,
        server_error=0.05,
        precondition_failed=0.02,
        slow=0.02,
        slow_delay=1.5,  # past the sender's 1 s timeout
        drop=0.02,
    )
    sender = OutboxSender(
        database=database, adapter=adapter, app_id="", render=render_with(database), limits=QUICK
    )

    started = time.monotonic()
    report = await sender.drain(max_wait=30)
    elapsed = time.monotonic() - started

    assert report == DrainReport(sent=230, undeliverable=20, pending=0, not_installed=0)
    rows = await messages(database)
    by_recipient = {p.staff_id: p for p in blocked}
    for row in rows:
        if row.recipient_id in by_recipient:
            assert (row.status, row.last_error, row.attempts) == ("undeliverable", "HTTP 403", 1)
        else:
            assert row.status == OutboxStatus.SENT
            assert row.sent_activity_id is not None
            assert row.claimed_by is None
    assert_each_once_in_order(connector, reachable)
    assert not any(connector.delivered_texts(p.conversation_id) for p in blocked)
    assert_within_teams_limits(connector)
    faults = connector.faults_answered()
    for kind in ("429+retry-after", "429", "412", "slow", "drop", "blocked"):
        assert faults[kind] > 0, kind
    assert faults["502"] + faults["503"] + faults["504"] > 0
    # The faults were retried: more requests than messages, and yet at Teams' pace.
    posts = [c for c in connector.calls if c.method == "POST"]
    assert len(posts) > 270
    assert elapsed < 30
    assert len(posts) / elapsed < 50

    async with database.session() as session:
        counts = await outbox.summary(session=session, period=PERIOD)
        lost = await outbox.undeliverable_recipients(session=session, period=PERIOD)
        other_month = await outbox.summary(session=session, period="2026-12")
    assert counts == outbox.OutboxSummary(sent=230, pending=0, retrying=0, undeliverable=20)
    assert [r.recipient_id for r in lost] == sorted(p.staff_id for p in blocked)
    assert {r.last_error for r in lost} == {"HTTP 403"}
    assert other_month == outbox.OutboxSummary()


async def test_a_broadcast_to_many_people_goes_at_nearly_the_global_limit(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    people = await seed(sqlite_database, connector, people=200, each=1)
    sender = OutboxSender(
        database=sqlite_database,
        adapter=adapter,
        app_id="",
        render=render_with(sqlite_database),
        limits=QUICK,
    )

    assert await sender.drain() == DrainReport(sent=200)

    assert_each_once_in_order(connector, people)
    assert_within_teams_limits(connector)
    arrived = [c.arrived for c in connector.calls]
    busiest = max(bisect_right(arrived, t + 1.0) - i for i, t in enumerate(arrived))
    assert busiest <= QUICK.global_rate
    rate = (len(arrived) - 1) / (arrived[-1] - arrived[0])
    assert rate > 0.8 * QUICK.global_rate


async def test_one_persons_messages_keep_their_order_and_the_chat_limits(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    [person] = await seed(sqlite_database, connector, people=1, each=20)
    sender = OutboxSender(
        database=sqlite_database,
        adapter=adapter,
        app_id="",
        render=render_with(sqlite_database),
        limits=QUICK,
    )

    started = time.monotonic()
    assert await sender.drain() == DrainReport(sent=20)
    elapsed = time.monotonic() - started

    assert_each_once_in_order(connector, [person])
    assert_within_teams_limits(connector)
    arrived = [c.arrived for c in connector.calls]
    assert len(arrived) == 20
    assert all(arrived[i + 7] - arrived[i] > 1.0 for i in range(len(arrived) - 7))
    assert all(arrived[i + 8] - arrived[i] > 2.0 for i in range(len(arrived) - 8))
    # ... and not much slower than Teams allows (8 per 2 s: the 20th after about 4.5 s).
    assert elapsed < 7


async def test_retry_after_is_honoured_in_seconds_and_as_a_date(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    seconds, dated = await seed(sqlite_database, connector, people=2, each=1)
    not_before = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    connector.script_by_text = {
        seconds.texts[0]: [Fault(429, "1")],
        dated.texts[0]: [Fault(429, format_datetime(not_before, usegmt=True))],
    }
    sender = OutboxSender(
        database=sqlite_database,
        adapter=adapter,
        app_id="",
        render=render_with(sqlite_database),
        limits=QUICK,
    )

    assert await sender.drain() == DrainReport(sent=2)

    first, retry = connector.attempts_of(seconds.texts[0])
    assert (first.status, retry.status) == (429, 201)
    assert retry.arrived - first.arrived >= 1.0
    first, retry = connector.attempts_of(dated.texts[0])
    assert (first.status, retry.status) == (429, 201)
    assert retry.arrived_at is not None
    assert retry.arrived_at >= not_before
    assert [m.attempts for m in await messages(sqlite_database)] == [2, 2]


def test_retry_after_values_are_read_as_teams_sends_them() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("Mon, 23 Nov 2026 10:00:07 GMT", now) == 7.0
    assert parse_retry_after("Mon, 23 Nov 2026 09:59:00 GMT", now) == 0.0
    assert parse_retry_after("-4", now) == 0.0
    for useless in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(useless, now) is None


async def test_failures_are_classified_and_never_trigger_the_turn_error_apology(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    people = await seed(sqlite_database, connector, people=4, each=1)
    blocked, gone, refused, flaky = people
    connector.blocked = {blocked.conversation_id}
    connector.script_by_text = {
        gone.texts[0]: [Fault(404)],
        refused.texts[0]: [Fault(400)],
        flaky.texts[0]: [Fault(503)],
    }
    sender = OutboxSender(
        adapter=adapter, database=sqlite_database, app_id="", render=render_with(sqlite_database)
    )
    rows = await messages(sqlite_database)

    results = [await sender.deliver(row.id or 0) for row in rows]

    assert [(r.outcome, r.detail) for r in results] == [
        (Delivery.UNDELIVERABLE, "HTTP 403"),
        (Delivery.UNDELIVERABLE, "HTTP 404"),
        (Delivery.UNDELIVERABLE, "HTTP 400"),
        (Delivery.FAILED, "HTTP 503"),
    ]
    assert results[3].retry_at is not None
    # One request per message: no apology from on_turn_error, no retry inside msrest.
    assert len(connector.calls) == 4
    rows = await messages(sqlite_database)
    assert [(r.status, r.attempts) for r in rows] == [
        ("undeliverable", 1), ("undeliverable", 1), ("undeliverable", 1), ("pending", 1),
    ]  # fmt: skip
    assert rows[3].next_attempt_at is not None
    assert rows[3].claimed_by is None
    # Asked again at once, the retry is sent regardless of its back-off.
    assert (await sender.deliver(rows[3].id or 0)).outcome is Delivery.SENT
    assert (await sender.deliver(rows[3].id or 0)).detail == "not pending"


async def test_giving_up_after_the_last_attempt(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    [person] = await seed(sqlite_database, connector, people=1, each=1)
    connector.script_by_text = {person.texts[0]: [Fault(502), Fault(503), Fault(504)]}
    limits = SendLimits(max_attempts=3, backoff_base=0.05, backoff_cap=0.1, poll_interval=0.05)
    sender = OutboxSender(
        database=sqlite_database,
        adapter=adapter,
        app_id="",
        render=render_with(sqlite_database),
        limits=limits,
    )

    assert await sender.drain() == DrainReport(undeliverable=1)

    [row] = await messages(sqlite_database)
    assert (row.status, row.attempts) == ("undeliverable", 3)
    assert row.last_error == "gave up after 3 attempts (last: HTTP 504)"


# -- people without the app ---------------------------------------------------------------


async def test_people_without_the_app_wait_and_are_not_hammered(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    clock_now = [now]
    waiting = await seed(sqlite_database, connector, people=3, each=2, installed=False)
    await seed(sqlite_database, connector, people=1, each=1, first=3)
    async with sqlite_database.session() as session:
        await roster.forget_installation(session=session, aad_object_id="aad-3")
    sender = OutboxSender(
        database=sqlite_database,
        adapter=adapter,
        app_id="",
        render=render_with(sqlite_database),
        limits=QUICK,
        clock=lambda: clock_now[0],
    )

    assert await sender.drain() == DrainReport(not_installed=7)
    assert await sender.drain() == DrainReport()  # nothing is due again yet
    clock_now[0] = now + timedelta(minutes=59)
    assert await sender.drain() == DrainReport()

    assert connector.calls == []
    for row in await messages(sqlite_database):
        assert (row.status, row.attempts, row.last_error) == ("pending", 0, "not installed")
        assert row.next_attempt_at == now + timedelta(hours=1)
    async with sqlite_database.session() as session:
        counts = await outbox.summary(session=session)
    assert counts == outbox.OutboxSummary(pending=7)

    # An hour later, those who have installed the app since get their messages, in order.
    await seed_conversation(sqlite_database, connector, n=0)
    clock_now[0] = now + timedelta(hours=1, seconds=1)
    assert await sender.drain() == DrainReport(sent=2, not_installed=5)
    assert_each_once_in_order(connector, [waiting[0]])


async def seed_conversation(database: Database, connector: FakeConnector, *, n: int) -> None:
    async with database.session() as session:
        await roster.remember_conversation(
            session=session,
            aad_object_id=f"aad-{n}",
            reference=roster.ChatReference(
                channel_id="msteams", service_url=connector.url,
                conversation_id=f"a:person{n}", tenant_id="t",
                teams_user_id=f"29:person{n}", bot_id="28:bot",
            ),
        )  # fmt: skip


# -- claims -------------------------------------------------------------------------------


async def test_claims_lapse_and_keep_each_persons_order(
    database: Database, connector: FakeConnector
) -> None:
    first, second = await seed(database, connector, people=2, each=2)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    lease = timedelta(seconds=30)
    async with database.session() as session:
        claimed = await outbox.claim_due(
            session=session, instance_id="a", now=now, lease=lease, limit=3
        )
    assert [m.activity for m in claimed] == [
        f'{{"type":"message","text":"{t}"}}'
        for t in (first.texts[0], second.texts[0], first.texts[1])
    ]
    ids = [m.id or 0 for m in claimed]
    async with database.session() as session:
        # Held by "a": nothing for "b", not even the second person's next message, which
        # must not overtake the first.
        assert (
            await outbox.claim_due(session=session, instance_id="b", now=now, lease=lease, limit=10)
            == []
        )
        # "a" fails the first person's first message: their second waits behind it.
        assert await outbox.record_retry(
            session=session, message_id=ids[0], instance_id="a", error="HTTP 503",
            next_attempt_at=now + timedelta(minutes=5),
        )  # fmt: skip
        assert await outbox.release(session=session, message_ids=ids[2:], instance_id="a") == 1
        assert not await outbox.record_retry(
            session=session, message_id=ids[1], instance_id="b", error="x", next_attempt_at=now
        )
    # "a" dies holding the second person's first message; after the lease "b" takes it.
    later = now + lease + timedelta(seconds=1)
    async with database.session() as session:
        assert await outbox.claim_due(
            session=session, instance_id="b", now=now + timedelta(seconds=29), lease=lease,
            limit=10,
        ) == []  # fmt: skip
        taken = await outbox.claim_due(
            session=session, instance_id="b", now=later, lease=lease, limit=10
        )
        # ... with the second person's next message, which no longer waits behind anything.
        assert [m.id for m in taken] == [ids[1], ids[2] + 1]
        assert {m.claimed_by for m in taken} == {"b"}
        assert await outbox.renew_claims(
            session=session, message_ids=[ids[1], ids[0]], instance_id="b", now=later,
            until=later + lease,
        ) == {ids[1]}  # fmt: skip
        assert await outbox.record_sent(
            session=session, message_id=ids[1], activity_id="x1", now=later
        )
        assert not await outbox.record_sent(
            session=session, message_id=ids[1], activity_id="x1", now=later
        )
    # After the back-off, the first person's messages come again, in order.
    async with database.session() as session:
        retry = await outbox.claim_due(
            session=session, instance_id="b", now=now + timedelta(minutes=6), lease=lease,
            limit=10,
        )  # fmt: skip
        counts = await outbox.summary(session=session)
    assert [m.id for m in retry] == [ids[0], ids[2], ids[2] + 1]
    assert counts == outbox.OutboxSummary(sent=1, pending=2, retrying=1)


# -- several senders, and crashes ---------------------------------------------------------


async def test_two_senders_on_one_database_send_each_message_once(
    database_url: str, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    databases = [Database(database_url), Database(database_url)]
    try:
        people = await seed(databases[0], connector, people=40, each=3)
        connector.faults = FaultPlan(seed=5, server_error=0.05, throttle_with_retry_after=0.02)
        # Both share Teams' limit, so each gets half of the outbox's part.
        limits = SendLimits(
            global_rate=22, batch_size=7, backoff_base=0.2, backoff_cap=1.0, max_attempts=12,
            send_timeout=1.0, lease=10.0, poll_interval=0.05,
        )  # fmt: skip
        senders = [
            OutboxSender(
                database=db, adapter=create_adapter(load_settings(env_file=None)), app_id="",
                render=render_with(db),
                limits=limits, instance_id=f"sender-{n}",
            )
            for n, db in enumerate(databases)
        ]  # fmt: skip
        reports = await asyncio.gather(*(s.drain(max_wait=20) for s in senders))
    finally:
        for db in databases:
            await db.dispose()

    assert sum(r.sent for r in reports) == 120
    assert all(r.sent > 20 for r in reports), reports
    assert_each_once_in_order(connector, people)
    assert_within_teams_limits(connector)


async def test_a_killed_senders_claims_are_taken_over_within_a_lease(
    database: Database,
    database_url: str,
    connector: FakeConnector,
    adapter: CloudAdapter,
    tmp_path: Path,
) -> None:
    people = await seed(database, connector, people=30, each=1)
    people += await seed(database, connector, people=1, each=6, first=30)
    # The child renews its claims every 0.5 s for 7 s, and a send may take it 4 s: once
    # it is killed, its claims lapse within 7 s. (With the defaults, every 2 s for 12 s:
    # `test_the_default_lease_lets_another_sender_take_over_within_15_seconds`.)
    lease = 7.0
    connector.stall()
    child_log = tmp_path / "child.log"
    with child_log.open("wb") as output:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.delivery_sender_child", database_url, "child",
            str(lease), "0.5", "4", "0.05", cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "PQF_ENVIRONMENT": "development", "MICROSOFT_APP_ID": ""},
        )  # fmt: skip
    try:
        await wait_until(lambda: connector.held >= 4, 30, "the child's requests to be in flight")
        claimed = await claims_of(database, "child#")
        await wait_until(
            lambda: renewed_since(database, claimed), 10, "a heartbeat to renew the child's claims"
        )
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    killed = time.monotonic()
    rows = await messages(database)
    orphans = {m.id: m.claimed_until for m in rows if (m.claimed_by or "").startswith("child#")}
    # Another sender was waiting all along (its first look finds everything claimed).
    survivor = OutboxSender(
        database=database,
        adapter=adapter,
        app_id="",
        render=render_with(database),
        limits=QUICK,
        instance_id="survivor",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(survivor.run(stop))
    try:
        await wait_until(lambda: connector.held_connected == 0, 10, "the killed child's sockets")
        connector.unstall()
        await wait_until(lambda: len(connector.sent) == 36, 30, "every message to be delivered")
    finally:
        stop.set()
        await running

    # Killed with requests in flight, none of which Teams accepted; all 36 claimed by it,
    # and renewed by its heartbeat past their first lease.
    assert connector.faults_answered()["abandoned"] >= 4
    assert len(orphans) == 36, child_log.read_text()
    assert all(m.attempts == 0 for m in rows), "the child's sends were still under way"
    assert_each_once_in_order(connector, people)
    assert_within_teams_limits(connector)
    assert {r.status for r in await messages(database)} == {OutboxStatus.SENT}
    deliveries = [c for c in connector.calls if c.delivered]
    # Taken over once the child's claims had lapsed (never two live claims at once) ...
    last_claim = max(t for t in orphans.values() if t is not None)
    assert min(c.arrived_at for c in deliveries if c.arrived_at) >= last_claim
    # ... and within a lease of the kill, not the two minutes claims used to last.
    first = min(c.arrived for c in deliveries)
    assert first - killed <= lease + 1.0, first - killed


async def test_a_sender_that_cannot_renew_its_claims_stops_sending_before_they_lapse(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    # One person with many messages: Teams' chat limits (8 per 2 s) keep the queue going
    # for longer than the lease.
    [person] = await seed(sqlite_database, connector, people=1, each=24)
    limits = SendLimits(
        lease=3.0, heartbeat=0.5, send_timeout=0.5, fence_margin=1.0, poll_interval=0.05
    )
    cut_off = OutboxSender(
        database=sqlite_database,
        adapter=adapter,
        app_id="",
        render=render_with(sqlite_database),
        limits=limits,
        instance_id="cut-off",
    )

    # After its first claim the database stops answering it: no renewal, no giving back,
    # no further claim. (Its sends' outcomes still get recorded, to count them here.)
    first_claim = cut_off._claim_and_start
    claims = 0

    async def claim_once(*arguments: Any) -> int:
        nonlocal claims
        claims += 1
        if claims > 1:
            raise OSError("the database is unreachable")
        return await first_claim(*arguments)

    async def not_renewed() -> None:
        return None

    async def not_given_back(message_ids: list[int]) -> None:
        cut_off._claims.drop(message_ids)

    cut_off._claim_and_start = claim_once  # type: ignore[method-assign]
    cut_off._renew_claims = not_renewed  # type: ignore[method-assign]
    cut_off._give_back = not_given_back  # type: ignore[method-assign]
    stop = asyncio.Event()
    started = time.monotonic()
    running = asyncio.create_task(cut_off.run(stop))
    try:
        await wait_until(lambda: claims > 1 and not cut_off._claims.held(), 10, "it to give up")
        stopped = time.monotonic()
    finally:
        stop.set()
        await running
    sent_by_it = len(connector.sent)

    # It sent only while its claims were sure to outlast a send, then waited for a renewal
    # that never came, and gave up when they lapsed (3 s after the claim), with most of its
    # queue unsent.
    assert 0 < sent_by_it < 24
    needed = limits.send_timeout + limits.fence_margin
    assert all(c.arrived - started < limits.lease - needed for c in connector.calls)
    assert stopped - started < limits.lease + 0.5
    rows = await messages(sqlite_database)
    assert [r.status for r in rows].count(OutboxStatus.SENT) == sent_by_it
    held = [r for r in rows if r.status == OutboxStatus.PENDING]
    assert {(r.claimed_by or "").split("#")[0] for r in held} == {"cut-off"}

    # Another sender, once the claims have lapsed (its clock is a lease ahead), sends the
    # rest, each once, in order.
    ahead = timedelta(seconds=limits.lease)
    rest = await OutboxSender(
        database=sqlite_database, adapter=adapter, app_id="", limits=QUICK,
        render=render_with(sqlite_database),
        clock=lambda: datetime.now(UTC) + ahead,
    ).drain()  # fmt: skip
    assert rest.sent == 24 - sent_by_it
    assert_each_once_in_order(connector, [person])


async def test_stopping_finishes_the_sends_under_way_and_gives_back_the_rest(
    database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    people = await seed(database, connector, people=30, each=1)
    connector.stall()
    sender = OutboxSender(
        database=database,
        adapter=adapter,
        app_id="",
        render=render_with(database),
        limits=QUICK,
        instance_id="stopping",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    await wait_until(lambda: connector.held >= 4, 10, "sends to be under way")
    stop.set()
    # The sender has seen the stop once no person's queue is being sent any more.
    await wait_until(lambda: not queues_under_way(), 10, "the sender to see the stop")
    connector.unstall()
    await asyncio.wait_for(running, 10)

    rows = await messages(database)
    sent = {r.id for r in rows if r.status == OutboxStatus.SENT}
    assert len(sent) >= 4
    assert len(sent) == len(connector.sent)
    assert_each_once_in_order(connector, [p for p in people if p.texts[0] in connector.texts()])
    waiting = [r for r in rows if r.id not in sent]
    assert waiting, "everything was sent: the test did not stop the sender early"
    for row in waiting:
        assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)


async def test_run_outlives_a_broken_message_and_picks_up_new_ones(
    sqlite_database: Database, connector: FakeConnector, adapter: CloudAdapter
) -> None:
    people = await seed(sqlite_database, connector, people=3, each=1)
    async with sqlite_database.session() as session:
        broken, _ = await outbox.enqueue(
            session=session, key="broken", recipient_id=people[0].staff_id, purpose="test",
            period=PERIOD, activity={"type": "message", "text": "x"},
        )  # fmt: skip
        broken.activity = "{not json"
        session.add(broken)
    limits = SendLimits(max_attempts=2, backoff_base=0.05, backoff_cap=0.1, poll_interval=0.05)
    sender = OutboxSender(
        database=sqlite_database,
        adapter=adapter,
        app_id="",
        render=render_with(sqlite_database),
        limits=limits,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    try:
        await wait_until(lambda: len(connector.sent) == 3, 10, "the first messages")
        people += await seed(sqlite_database, connector, people=2, each=1, first=3)
        await wait_until(lambda: len(connector.sent) == 5, 10, "messages queued while running")
        await wait_until(
            lambda: given_up(sqlite_database, broken.id), 10, "the broken message to be given up"
        )
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)

    assert_each_once_in_order(connector, people)
    row = next(m for m in await messages(sqlite_database) if m.idempotency_key == "broken")
    assert row.last_error == "gave up after 2 attempts (last: JSONDecodeError)"


async def claims_of(database: Database, sender: str) -> dict[int, datetime]:
    """Return until when each message the sender holds is claimed."""
    return {
        m.id: m.claimed_until
        for m in await messages(database)
        if m.id is not None and m.claimed_until and (m.claimed_by or "").startswith(sender)
    }


async def renewed_since(database: Database, claimed: dict[int, datetime]) -> bool:
    """Say whether every one of these claims has been renewed past its first lease."""
    now = {m.id: m.claimed_until for m in await messages(database)}
    return all((now.get(i) or until) > until for i, until in claimed.items())


def queues_under_way() -> bool:
    """Say whether a sender is sending some person's queue (a task named for the person)."""
    return any(
        task.get_name().startswith("outbox-recipient-") and not task.done()
        for task in asyncio.all_tasks()
    )


async def given_up(database: Database, message_id: int | None) -> bool:
    return any(
        m.id == message_id and m.status == OutboxStatus.UNDELIVERABLE
        for m in await messages(database)
    )


async def test_the_adapter_counts_answers_but_not_the_senders_proactive_messages(
    adapter: CloudAdapter, connector: FakeConnector
) -> None:
    counted: list[tuple[str, int]] = []

    class Tally:
        async def reply_starting(self, conversation: str, within: float) -> bool:
            counted.append(("started", conversation))
            return True

        def reply_finished(self, conversation: str) -> None:
            counted.append(("finished", conversation))

    assert isinstance(adapter, TeamsAdapter)
    adapter.replies = Tally()
    message = Activity(
        type=ActivityTypes.message, id="1", text="hello", channel_id="msteams",
        service_url=connector.url, conversation=ConversationAccount(id="a:chat", tenant_id="t"),
        from_property=ChannelAccount(id="29:person"), recipient=ChannelAccount(id="28:bot"),
    )  # fmt: skip

    async def answer(context: TurnContext) -> None:
        await context.send_activities(
            [
                Activity(type=ActivityTypes.message, text="one"),
                Activity(type="delay", value=1),  # a pause, not a request
                Activity(type=ActivityTypes.message, text="two"),
            ]
        )

    await adapter.process_activity("", message, answer)
    # Each request waits for room in its chat's limits and is counted as it goes (in the
    # global window and the chat's; a try repeated after a 429 counts again).
    assert counted == [("started", "a:chat"), ("finished", "a:chat")] * 2
    assert connector.texts() == ["one", "two"]

    counted.clear()

    async def proactive(context: TurnContext) -> None:
        await context.send_activity("from the outbox")

    reference = TurnContext.get_conversation_reference(message)
    await adapter.continue_conversation(reference, proactive, "")
    assert counted == [], "the sender counts its own messages"
    assert len(connector.calls) == 3
