"""What a roster sync holds of people it could not place is kept only while syncs confirm it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from admin.cli import main
from bot.settings import SettingsError, load_settings
from directory.graph import GraphClient, StaticToken
from directory.mapping import DirectoryMapping, parse_mapping
from directory.sync import SOURCE, SyncResult, sync_roster
from practice.framework import Framework
from scheduler.jobs import Cycle, purge_old_words
from storage.database import Database
from storage.directory_sync import HeldRetention, delta_link, held_about, held_records
from storage.retention import purge
from tests.conftest import ROOT
from tests.fake_graph import AMIRA, RAVI, STAFF, FakeGraph, example_tenant
from tests.test_roster_sync import Waits, command_line_against

EXAMPLE = (ROOT / "examples" / "graph-mapping.yaml").read_text()
LONDON = ZoneInfo("Europe/London")
SYNCED = HeldRetention(days=30, synced=True)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = await FakeGraph().start()
    example_tenant(fake)
    yield fake
    await fake.close()


def _mapping(framework: Framework) -> DirectoryMapping:
    return parse_mapping(EXAMPLE, role_codes=[r.code for r in framework.roles])


async def _sync(database: Database, graph: FakeGraph, framework: Framework) -> SyncResult:
    async with aiohttp.ClientSession() as http:
        client = GraphClient(
            http=http, base_url=graph.url, tokens=StaticToken(graph.token), sleep=Waits()
        )
        return await sync_roster(
            database=database, client=client, framework=framework,
            mapping=_mapping(framework), groups=[STAFF],
        )  # fmt: skip


async def _held(database: Database) -> set[str]:
    async with database.session() as session:
        return set(await held_records(session=session, source=SOURCE))


async def _purge(
    database: Database, *, now: datetime, rule: HeldRetention, dry_run: bool = False
) -> int:
    async with database.session() as session:
        report = await purge(
            session=session, now=now, retention_months=24, dry_run=dry_run, held=rule
        )
        await session.commit()
    return report.held


async def test_held_records_go_once_no_sync_has_confirmed_them_for_the_set_days(
    database: Database, graph: FakeGraph, framework: Framework
) -> None:
    await _sync(database, graph, framework)
    graph.change_user(AMIRA, jobTitle="Senior Practitioner")  # on the roster, now unmapped
    await _sync(database, graph, framework)
    assert await _held(database) == {AMIRA, RAVI}
    now = datetime.now(UTC)

    # Confirmed by last night's sync: kept. Leaving the held records alone: kept.
    assert await _purge(database, now=now + timedelta(days=29), rule=SYNCED) == 0
    async with database.session() as session:
        assert (await purge(session=session, now=now + timedelta(days=90),
                            retention_months=24, dry_run=False)).held == 0  # fmt: skip
        await session.commit()
    assert await _held(database) == {AMIRA, RAVI}

    # No sync for 31 days (Graph refused, say): the dry run counts, the purge erases.
    later = now + timedelta(days=31)
    assert await _purge(database, now=later, rule=SYNCED, dry_run=True) == 2
    assert await _held(database) == {AMIRA, RAVI}
    assert await _purge(database, now=later, rule=SYNCED) == 2
    assert await _held(database) == set()
    async with database.session() as session:
        # ...and the link they were weighed against, so the next sync reads everyone afresh.
        assert await delta_link(session=session, source=SOURCE) is None
    assert await _purge(database, now=later, rule=SYNCED) == 0

    again = await _sync(database, graph, framework)
    assert again.whole
    assert [(u.name, u.value) for u in again.changes.unmapped] == [
        ("Amira Khan", "Senior Practitioner")
    ]
    assert await _held(database) == {AMIRA, RAVI}


async def test_everything_held_goes_when_the_roster_is_no_longer_synced(
    database: Database, graph: FakeGraph, framework: Framework
) -> None:
    await _sync(database, graph, framework)
    assert await _held(database) == {RAVI}
    off = HeldRetention(days=30, synced=False)
    assert await _purge(database, now=datetime.now(UTC), rule=off) == 1
    assert await _held(database) == set()
    async with database.session() as session:
        assert await delta_link(session=session, source=SOURCE) is None


async def test_a_sync_that_forgot_its_link_and_failed_leaves_records_judged_by_their_age(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    await _sync(sqlite_database, graph, framework)
    async with sqlite_database.session() as session:
        # `roster sync --full` forgets the link first; a failure after leaves the records.
        from storage.directory_sync import forget_delta_link

        await forget_delta_link(session=session, source=SOURCE)
        await session.commit()
    now = datetime.now(UTC)
    assert await _purge(sqlite_database, now=now + timedelta(days=29), rule=SYNCED) == 0
    assert await _purge(sqlite_database, now=now + timedelta(days=31), rule=SYNCED) == 1


async def test_the_retention_job_erases_held_records_and_logs_counts_only(
    sqlite_database: Database, graph: FakeGraph, framework: Framework,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await _sync(sqlite_database, graph, framework)
    cycle = Cycle(database=sqlite_database, framework=framework, zone=LONDON,
                  retention_months=24, held=HeldRetention(days=30, synced=False))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="scheduler.jobs"):
        outcome = await purge_old_words(cycle, date(2026, 12, 1))
    assert outcome is not None
    assert outcome.summary["held_records"] == 1
    assert await _held(sqlite_database) == set()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "'held_records': 1" in logged
    assert "ravi" not in logged.lower()
    assert RAVI not in logged


def test_the_held_period_is_a_setting_and_off_without_graph() -> None:
    plain = load_settings(env_file=None)
    assert plain.held_retention == HeldRetention(days=30, synced=False)
    configured = load_settings(
        env_file=None, PQF_GRAPH_TOKEN="t", PQF_GRAPH_GROUPS=STAFF,
        PQF_GRAPH_MAPPING_FILE=str(ROOT / "examples" / "graph-mapping.yaml"),
        PQF_GRAPH_HELD_DAYS="7",
    )  # fmt: skip
    assert configured.held_retention == HeldRetention(days=7, synced=True)
    # Half set up: the nightly sync is off, so nothing confirms what is held.
    assert not load_settings(env_file=None, PQF_GRAPH_GROUPS=STAFF).held_retention.synced
    for wrong in ("0", "366", "a month"):
        with pytest.raises(SettingsError, match="PQF_GRAPH_HELD_DAYS"):
            load_settings(env_file=None, PQF_GRAPH_HELD_DAYS=wrong)


async def test_a_held_person_off_the_roster_gets_a_subject_access_export_until_erased(
    graph: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    command_line_against(graph, tmp_path, monkeypatch)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert await asyncio.to_thread(main, ["roster", "sync"]) == 0
    capsys.readouterr()

    # Ravi (a disabled account) is held, not on the roster: the export finds him all the same.
    out_file = tmp_path / "ravi.json"
    args = ["export-person", "Ravi.Nair@somerset.example", "--out", str(out_file)]
    assert await asyncio.to_thread(main, args) == 0
    record = json.loads(out_file.read_text(encoding="utf-8"))
    assert record["staff"] is None
    [held] = record["held_by_roster_sync"]
    assert (held["aad_object_id"], json.loads(held["record"])["enabled"]) == (RAVI, False)

    # A purge with Graph set up keeps him (last night's sync confirmed him)...
    assert await asyncio.to_thread(main, ["purge"]) == 0
    said = capsys.readouterr().out
    assert "Erased 0 records of people a roster sync could not place, not confirmed by a sync " \
        "for 30 days (PQF_GRAPH_HELD_DAYS)." in said  # fmt: skip
    # ...one after Graph is switched off erases him, and then there is nothing to export.
    monkeypatch.delenv("PQF_GRAPH_GROUPS")
    assert await asyncio.to_thread(main, ["purge", "--dry-run"]) == 0
    assert "Would erase 1 records of people a roster sync could not place, as the roster is " \
        "not synced from Microsoft Graph." in capsys.readouterr().out  # fmt: skip
    assert await asyncio.to_thread(main, ["purge"]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, args) == 1
    assert "is not on the roster, and no roster sync holds them" in capsys.readouterr().err
    database = Database(f"sqlite:///{tmp_path}/pqf.db")
    try:
        async with database.session() as session:
            assert await held_about(session=session, email="ravi.nair@somerset.example") == []
    finally:
        await database.dispose()
