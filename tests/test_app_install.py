"""Installing the app through Graph for people who never opened it, and what the digest says.

Against the stand-in Graph (tests/fake_graph.py) and Bot Connector (tests/fake_connector.py):
everyone installable gets a chat and their waiting request; 409 is an earlier install; a
refusal is recorded with Graph's reason and named in the manager's digest; throttling is
waited out on a virtual clock; a second run installs nobody twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import col, select

from admin.cli import main
from bot.adapter import create_adapter
from bot.settings import load_settings
from delivery.outcomes import Delivery
from delivery.sender import OutboxSender
from directory.graph import GraphClient, StaticToken
from directory.install import AppInstaller, InstallResult
from practice.framework import Framework
from scheduler.jobs import dispatch_month, send_digests, team_digest_rows
from storage import app_installs, outbox, roster
from storage.database import Database
from storage.models import InstallState, OutboxMessage, OutboxStatus, Staff
from storage.person_export import person_record
from storage.roster import Reach
from tests.delivery_helpers import render_with
from tests.fake_connector import FakeConnector
from tests.fake_graph import FakeGraph, Fault
from tests.test_monthly_cycle import seeded

CATALOG_APP = "5e1c4a2b-0d3f-4e8a-9b7c-6a5d4e3f2a10"
BOT_APP = "bot-app-id"
WHEN = datetime(2026, 11, 2, 8, 0, tzinfo=roster.utc_now().tzinfo)
POLICY = "App is blocked by app permission policy."


class VirtualClock:
    """A monotonic clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.asked: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.now += seconds


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = await FakeGraph().start()
    yield fake
    await fake.close()


async def staff(database: Database) -> dict[str, Staff]:
    async with database.session() as session:
        return {s.email.split("@")[0]: s for s in await roster.all_staff(session=session)}


async def tenant_of(database: Database, graph: FakeGraph) -> dict[str, Staff]:
    """Put everyone on the roster into the fake tenant; return them by email's first part."""
    people = await staff(database)
    for _name, person in people.items():
        if person.aad_object_id:
            graph.add_user(person.aad_object_id, person.name, person.email, None, None)
    return people


async def install(
    database: Database,
    graph: FakeGraph,
    *,
    service_url: str = "https://smba.example.test/teams/",
    clock: VirtualClock | None = None,
    when: datetime = WHEN,
    rate: float = 4.0,
) -> InstallResult:
    clock = clock or VirtualClock()
    installer = AppInstaller(
        catalog_app_id=CATALOG_APP, bot_app_id=BOT_APP, tenant_id="t", service_url=service_url,
        rate=rate,
    )  # fmt: skip
    async with aiohttp.ClientSession() as http:
        client = GraphClient(
            http=http, base_url=graph.url, tokens=StaticToken(graph.token), sleep=clock.sleep,
            jitter=lambda: 0.0,
        )  # fmt: skip
        return await installer.run(
            database=database, client=client, now=lambda: when, sleep=clock.sleep,
            monotonic=clock,
        )  # fmt: skip


async def test_everyone_installable_gets_a_chat_once(
    database: Database, framework: Framework, graph: FakeGraph
) -> None:
    await seeded(database, framework, date(2026, 11, 2))
    people = await tenant_of(database, graph)
    with_ids = {p.aad_object_id for p in people.values() if p.aad_object_id and p.active}
    clock = VirtualClock()
    result = await install(database, graph, clock=clock, rate=2.0)
    assert set(result.installed) == with_ids
    assert result.pending == result.refused == {}
    assert set(graph.installs_made) == with_ids
    assert max(graph.installs_made.values()) == 1
    # At most two people a second: the last started no sooner than (n - 1) / 2 seconds in.
    assert clock.now >= (len(with_ids) - 1) / 2.0
    async with database.session() as session:
        for aad_id in with_ids:
            chat = await roster.conversation_of(session=session, aad_object_id=aad_id)
            assert chat is not None
            assert chat.conversation_id == f"19:{aad_id}_bot@unq.gbl.spaces"
            assert chat.service_url == "https://smba.example.test/teams/"
            assert chat.bot_id == f"28:{BOT_APP}"
    # A second run finds nobody left to install and asks Graph nothing.
    asked = sum(graph.requests.values())
    again = await install(database, graph)
    assert again.counts()["installed"] == again.counts()["already_installed"] == 0
    assert sum(graph.requests.values()) == asked
    assert max(graph.installs_made.values()) == 1


async def test_an_earlier_install_is_found_not_made_again(
    database: Database, framework: Framework, graph: FakeGraph
) -> None:
    await seeded(database, framework, date(2026, 11, 2))
    people = await tenant_of(database, graph)
    sam = people["sam.green"].aad_object_id
    assert sam is not None
    graph.installed[sam] = f"installation-{sam}"  # installed before, by an administrator
    result = await install(database, graph)
    assert sam in result.already
    assert sam not in result.installed
    assert sam not in graph.installs_made
    async with database.session() as session:
        chat = await roster.conversation_of(session=session, aad_object_id=sam)
    assert chat is not None
    assert chat.conversation_id == f"19:{sam}_bot@unq.gbl.spaces"


async def test_the_tenants_service_url_is_learnt_from_a_stored_chat(
    database: Database, framework: Framework, graph: FakeGraph
) -> None:
    await seeded(database, framework, date(2026, 11, 2))
    people = await tenant_of(database, graph)
    dana = people["dana.reid"].aad_object_id
    assert dana is not None
    async with database.session() as session:
        await roster.remember_conversation(
            session=session, aad_object_id=dana,
            reference=roster.ChatReference(
                channel_id="msteams", service_url="https://smba.trafficmanager.net/emea/",
                conversation_id="a:dana", tenant_id="t", teams_user_id="29:dana",
                bot_id="28:bot",
            ),
        )  # fmt: skip
    result = await install(database, graph)
    assert dana not in result.installed  # she has a chat already
    sam = people["sam.green"].aad_object_id
    assert sam is not None
    async with database.session() as session:
        chat = await roster.conversation_of(session=session, aad_object_id=sam)
    assert chat is not None
    assert chat.service_url == "https://smba.trafficmanager.net/emea/"


async def test_throttling_is_waited_out_and_nothing_is_lost(
    database: Database, framework: Framework, graph: FakeGraph
) -> None:
    await seeded(database, framework, date(2026, 11, 2))
    people = await tenant_of(database, graph)
    graph.script.extend(
        [Fault("/teamwork/installedApps", 429, retry_after="7")] * 3
        + [Fault("/chat", 429, retry_after="3")]
    )
    clock = VirtualClock()
    result = await install(database, graph, clock=clock)
    assert len(result.installed) == len([p for p in people.values() if p.aad_object_id])
    assert result.throttled == 4
    assert clock.asked.count(7.0) == 3
    assert 3.0 in clock.asked
    assert max(graph.installs_made.values()) == 1


async def test_a_refusal_is_recorded_with_its_reason_and_named_in_the_digest(
    database: Database, framework: Framework, graph: FakeGraph
) -> None:
    cycle = await seeded(database, framework, date(2026, 11, 2))
    people = await tenant_of(database, graph)
    sam, priya, tom = (people[n].aad_object_id for n in ("sam.green", "priya.shah", "tom.hale"))
    assert sam
    assert priya
    assert tom
    graph.refuse_install[sam] = (403, POLICY)
    # Priya's install is throttled past the client's patience: pending, to try again.
    graph.script.extend([Fault(f"/users/{priya}/teamwork", 503)] * 8)
    result = await install(database, graph)
    assert result.refused == {sam: POLICY}
    assert priya in result.pending
    async with database.session() as session:
        records = await app_installs.installs_of(session=session, aad_object_ids=[sam, priya])
        team = [people[n] for n in ("sam.green", "priya.shah", "tom.hale")]
        reach = await roster.reach_of(session=session, people=team)
    assert records[sam].state == InstallState.REFUSED
    assert records[sam].status == 403
    assert records[sam].reason == POLICY
    assert records[sam].retry_at == WHEN + timedelta(days=1)
    assert records[priya].state == InstallState.PENDING
    assert records[priya].retry_at == WHEN + timedelta(minutes=15)
    assert [reach[p.id or 0] for p in team] == [
        Reach.INSTALL_REFUSED,
        Reach.INSTALL_PENDING,
        Reach.REACHABLE,
    ]

    # Neither is tried again before their time; then each is.
    assert (await install(database, graph, when=WHEN + timedelta(minutes=5))).counts()[
        "pending"
    ] == 0
    later = await install(database, graph, when=WHEN + timedelta(minutes=20))
    assert later.installed == [priya]
    assert later.refused == {}

    await dispatch_month(cycle, "2026-11", seed="reach")
    digest_day = date(2026, 11, 25)
    async with database.session() as session:
        jordan = (
            await session.exec(select(Staff).where(Staff.email == "jordan.price@example.com"))
        ).one()
        rows = {
            r.name: (r.state, r.detail)
            for r in await team_digest_rows(session, cycle, jordan, "2026-11", digest_day)
        }
    assert rows["Sam Green"] == ("install_refused", f"Teams said: {POLICY}")
    await send_digests(cycle, digest_day)
    async with database.session() as session:
        message = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.purpose == "digest", OutboxMessage.recipient_id == jordan.id
                )
            )
        ).one()
    assert "Teams would not add the audit bot" in message.activity
    assert POLICY in message.activity
    opening = next(
        block["text"]
        for block in json.loads(message.activity)["attachments"][0]["content"]["body"]
        if block.get("text", "").startswith("Audits are due")
    )
    assert "1 could not be given the audit bot" in opening

    # A subject access request shows what the bot holds about the install too.
    async with database.session() as session:
        record = await person_record(session=session, staff=people["sam.green"])
    assert record["teams_app_install"]["state"] == "refused"
    assert record["teams_app_install"]["reason"] == POLICY


async def test_the_waiting_request_goes_out_after_the_install(
    database: Database,
    framework: Framework,
    graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cycle = await seeded(database, framework, date(2026, 11, 2))
    people = await tenant_of(database, graph)
    await dispatch_month(cycle, "2026-11", seed="install")
    sam = people["sam.green"]
    monkeypatch.setenv("PQF_ENVIRONMENT", "development")
    monkeypatch.setenv("MICROSOFT_APP_ID", "")
    sender = OutboxSender(
        database=database, adapter=create_adapter(load_settings(env_file=None)), app_id="",
        render=render_with(database, framework),
    )  # fmt: skip

    async def sams() -> list[OutboxMessage]:
        async with database.session() as session:
            return list(
                await session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.recipient_id == sam.id)
                    .order_by(col(OutboxMessage.id))
                )
            )

    request = (await sams())[0]
    assert request.id is not None
    # Sam never opened the bot: the sender puts the request off until he has the app.
    assert (await sender.deliver(request.id)).outcome is not Delivery.SENT
    assert (await sams())[0].last_error == outbox.NOT_INSTALLED

    connector = await FakeConnector().start()
    try:
        result = await install(database, graph, service_url=connector.url)
        assert sam.aad_object_id in result.installed
        assert result.woken >= 1
        woken = (await sams())[0]
        assert woken.last_error == ""
        assert woken.next_attempt_at is None
        assert (await sender.deliver(request.id)).outcome is Delivery.SENT
        chat = f"19:{sam.aad_object_id}_bot@unq.gbl.spaces"
        assert [c.conversation_id for c in connector.calls] == [chat]
    finally:
        await connector.close()
    assert (await sams())[0].status == OutboxStatus.SENT


async def test_the_command_shows_reach_and_installs(
    graph: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], framework: Framework,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for name in ("PQF_ENVIRONMENT", "PQF_FRAMEWORK_FILE", "MICROSOFT_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    monkeypatch.setenv("PQF_GRAPH_URL", graph.url)
    monkeypatch.setenv("PQF_GRAPH_TOKEN", graph.token)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    database = Database(f"sqlite:///{tmp_path}/pqf.db")
    try:
        await seeded(database, framework, date(2026, 11, 2))
        people = await tenant_of(database, graph)
    finally:
        await database.dispose()
    sam = people["sam.green"].aad_object_id
    assert sam is not None
    graph.refuse_install[sam] = (403, POLICY)
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["reach", "--install"]) == 2
    assert "missing: PQF_TEAMS_CATALOG_APP_ID" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["reach", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["install"] is None
    assert set(before["counts"]) == {"never_opened"}

    monkeypatch.setenv("PQF_TEAMS_CATALOG_APP_ID", CATALOG_APP)
    monkeypatch.setenv("PQF_GRAPH_INSTALL_RATE", "50")
    assert await asyncio.to_thread(main, ["reach", "--install", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    with_ids = [p for p in people.values() if p.aad_object_id and p.active]
    assert after["install"]["installed"] == len(with_ids) - 1
    assert after["install"]["refused"] == 1
    assert after["counts"]["reachable"] == len(with_ids) - 1
    refused = [p for p in after["people"] if p["reach"] == "install_refused"]
    assert refused == [
        {
            "email": "sam.green@example.com",
            "reach": "install_refused",
            "status": 403,
            "reason": POLICY,
            "retry_at": refused[0]["retry_at"],
        }
    ]
    assert await asyncio.to_thread(main, ["reach"]) == 0
    out = capsys.readouterr().out
    assert (
        f"  install refused  sam.green@example.com: Graph answered 403: {POLICY[:-1]}; "
        "tried again after 20" in out
    )
    assert out.rstrip().endswith(" UTC")
