"""The nightly roster sync: at 02:00 every day, once a day however many instances try."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.app import _roster_sync_job
from bot.settings import load_settings
from directory.graph import GraphClient, StaticToken
from directory.install import AppInstaller
from directory.sync import (
    NIGHTLY_INSTALL,
    NIGHTLY_JOB,
    RosterSyncError,
    nightly_job,
    nightly_roster_sync,
)
from practice.framework import Framework
from scheduler.jobs import Cycle
from scheduler.runner import ROSTER_SYNC, CycleScheduler
from storage.database import Database
from storage.directory_sync import roster_rows
from storage.jobs import last_run
from tests.conftest import ROOT
from tests.fake_graph import ELLEN, LEE, STAFF, FakeGraph, example_tenant

LONDON = ZoneInfo("Europe/London")
MAPPING = ROOT / "examples" / "graph-mapping.yaml"
MONDAY = date(2026, 11, 30)


async def _nothing(_day: date) -> dict[str, int]:
    return {}


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = await FakeGraph().start()
    example_tenant(fake)
    yield fake
    await fake.close()


async def _night(
    database: Database, graph: FakeGraph, framework: Framework, day: date,
    mapping_file: Path = MAPPING,
) -> dict[str, int]:  # fmt: skip
    async with aiohttp.ClientSession() as http:
        client = GraphClient(http=http, base_url=graph.url, tokens=StaticToken(graph.token))
        return await nightly_roster_sync(
            database=database, client=client, framework=framework, mapping_file=mapping_file,
            groups=[STAFF], instance="test", day=day,
        )  # fmt: skip


async def test_the_sync_runs_once_a_night(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    first = await _night(sqlite_database, graph, framework, MONDAY)
    assert first["added"] == 5
    graph.requests.clear()
    graph.change_user(LEE, accountEnabled=False)
    # Another instance, or a restart, the same night: nothing read, nothing changed.
    assert await _night(sqlite_database, graph, framework, MONDAY) == {}
    assert sum(graph.requests.values()) == 0
    second = await _night(sqlite_database, graph, framework, date(2026, 12, 1))
    assert (second["added"], second["deactivated"]) == (0, 1)
    run = await last_run(sqlite_database, job=NIGHTLY_JOB, period="2026-12-01")
    assert run is not None
    assert run.status == "done"


async def test_a_night_with_problems_changes_nothing_and_is_tried_again(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    graph.change_user(LEE, mail="amira.khan@somerset.example")
    with pytest.raises(RosterSyncError, match="1 problems") as caught:
        await _night(sqlite_database, graph, framework, MONDAY)
    assert "amira" not in str(caught.value)  # the log line names no one
    async with sqlite_database.session() as session:
        assert await roster_rows(session=session) == []
    assert await last_run(sqlite_database, job=NIGHTLY_JOB, period=MONDAY.isoformat()) is None
    graph.change_user(LEE, mail="lee.turner@somerset.example")
    assert (await _night(sqlite_database, graph, framework, MONDAY))["added"] == 5


def test_the_nightly_sync_fires_at_two_every_day_when_configured(framework: Framework) -> None:
    cycle = Cycle(database=None, framework=framework, zone=LONDON)  # type: ignore[arg-type]
    clock = lambda: datetime.now(UTC)  # noqa: E731
    plain = CycleScheduler(cycle, job_time=time(8, 30), clock=clock)
    assert ROSTER_SYNC not in plain.triggers()
    synced = CycleScheduler(cycle, job_time=time(8, 30), clock=clock, roster_sync=_nothing)
    trigger = synced.triggers()[ROSTER_SYNC]
    friday_evening = datetime(2026, 11, 27, 17, 0, tzinfo=LONDON)
    saturday = trigger.get_next_fire_time(None, friday_evening)
    assert saturday == datetime(2026, 11, 28, 2, 0, tzinfo=LONDON)
    assert trigger.get_next_fire_time(saturday, saturday) == datetime(
        2026, 11, 29, 2, 0, tzinfo=LONDON
    )


async def test_each_nightly_run_is_reported_for_the_metrics(framework: Framework) -> None:
    runs: list[tuple[str, str]] = []
    cycle = Cycle(database=None, framework=framework, zone=LONDON)  # type: ignore[arg-type]
    clock = lambda: datetime(2026, 11, 29, 2, 0, tzinfo=LONDON)  # noqa: E731 - a Sunday

    async def changed(_day: date) -> dict[str, int]:
        return {"added": 1}

    async def broken(_day: date) -> dict[str, int]:
        raise RosterSyncError("roster sync changed nothing: 2 problems")

    for job in (changed, _nothing, broken):
        scheduler = CycleScheduler(cycle, job_time=time(8, 30), clock=clock, roster_sync=job,
                                   on_run=lambda name, outcome: runs.append((name, outcome)))  # fmt: skip
        await scheduler._sync_roster()
    assert runs == [(ROSTER_SYNC, "done"), (ROSTER_SYNC, "nothing_due"), (ROSTER_SYNC, "failed")]


def test_the_bot_schedules_the_sync_only_when_graph_is_configured(framework: Framework) -> None:
    plain = load_settings(env_file=None)
    assert _roster_sync_job(plain, None, framework) is None  # type: ignore[arg-type]
    configured = load_settings(
        env_file=None,
        PQF_GRAPH_TOKEN="t",
        PQF_GRAPH_GROUPS=STAFF,
        PQF_GRAPH_MAPPING_FILE=str(MAPPING),
    )
    assert callable(_roster_sync_job(configured, None, framework))  # type: ignore[arg-type]


def test_a_half_configured_sync_is_named_at_start(
    framework: Framework, caplog: pytest.LogCaptureFixture
) -> None:
    half = load_settings(env_file=None, PQF_GRAPH_GROUPS=STAFF, PQF_GRAPH_MAPPING_FILE=str(MAPPING))
    with caplog.at_level("WARNING", logger="bot.app"):
        assert _roster_sync_job(half, None, framework) is None  # type: ignore[arg-type]
    [said] = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert said.startswith("nightly roster sync is off: missing MICROSOFT_APP_ID, ")
    assert "in development, PQF_GRAPH_TOKEN" in said
    caplog.clear()
    with caplog.at_level("WARNING", logger="bot.app"):
        _roster_sync_job(load_settings(env_file=None), None, framework)  # type: ignore[arg-type]
    assert caplog.records == []  # not asked for: nothing to say


async def test_the_night_installs_the_app_once_after_the_sync(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    # A rate so high that the bound never waits: this test is about once a night.
    installer = AppInstaller(
        catalog_app_id="catalog-app", bot_app_id="bot", tenant_id=None,
        service_url="https://smba.example.test/teams/", rate=1e9,
    )  # fmt: skip
    runs = [
        nightly_job(
            database=sqlite_database,
            framework=framework,
            graph_url=graph.url,
            tokens=StaticToken(graph.token),
            groups=[STAFF],
            mapping_file=MAPPING,
            instance=instance,
            installer=installer,
        )
        for instance in ("one", "two")
    ]
    first = await runs[0](MONDAY)
    assert first["added"] == 5
    assert first["install_installed"] == 5
    assert await runs[1](MONDAY) == {}  # the other instance: neither sync nor install again
    assert set(graph.installs_made.values()) == {1}
    done = await last_run(sqlite_database, job=NIGHTLY_INSTALL, period=MONDAY.isoformat())
    assert done is not None
    assert done.status == "done"


async def test_a_fixed_mapping_file_places_the_unmapped_on_the_next_night(
    database: Database, graph: FakeGraph, framework: Framework, tmp_path: Path
) -> None:
    mapping_file = tmp_path / "graph-mapping.yaml"
    mapping_file.write_text(MAPPING.read_text())
    graph.change_user(ELLEN, jobTitle="Practice Lead")
    first = await _night(database, graph, framework, MONDAY, mapping_file)
    assert (first["added"], first["unmapped"]) == (4, 1)
    # Another change after the first night moves the delta link past Ellen's record.
    graph.change_user(LEE, displayName="Lee Turner-Hall")
    second = await _night(database, graph, framework, date(2026, 12, 1), mapping_file)
    assert (second["updated"], second["unmapped"]) == (1, 1)

    mapping_file.write_text(MAPPING.read_text() + "  Practice Lead: PDAP\n")
    third = await _night(database, graph, framework, date(2026, 12, 2), mapping_file)
    assert (third["added"], third["unmapped"]) == (1, 0)
    async with database.session() as session:
        rows = {row["email"]: row for row in await roster_rows(session=session)}
    assert rows["ellen.shaw@somerset.example"]["role"] == "PDAP"
