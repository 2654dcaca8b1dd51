"""The roster from Microsoft Graph: as a CSV would make it, then only what changed, all or nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from admin.cli import main
from directory.graph import GraphClient, GraphError, StaticToken
from directory.mapping import DirectoryMapping, MappingError, load_mapping, parse_mapping
from directory.roster_diff import DirectoryUser, RosterPerson, diff_roster
from directory.sync import SOURCE, SyncResult, sync_roster
from practice.framework import Framework
from storage.csv_import import import_staff
from storage.database import Database
from storage.directory_sync import delta_link, held_records, roster_rows
from storage.roster import staff_by_aad_id
from tests.conftest import ROOT
from tests.fake_graph import (
    AMIRA,
    CHRIS,
    ELLEN,
    LEE,
    MENDIP,
    PAT,
    STAFF,
    FakeGraph,
    Fault,
    example_tenant,
)  # fmt: skip

# examples/staff.csv as Entra ID would hold it (Ravi's account is disabled, so he is not
# added), and so the roster a sync must make.
EQUIVALENT_CSV = (ROOT / "examples" / "staff.csv").read_text().splitlines()[:6]


class Waits:
    """A sleep that only records how long it was asked to wait."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = await FakeGraph().start()
    example_tenant(fake)
    yield fake
    await fake.close()


@pytest.fixture
def mapping(framework: Framework) -> DirectoryMapping:
    codes = [r.code for r in framework.roles]
    return load_mapping(ROOT / "examples" / "graph-mapping.yaml", role_codes=codes)


def command_line_against(graph: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set `pqf-bot` up, in `tmp_path` with a new SQLite database, to sync from the fake Graph."""
    monkeypatch.chdir(tmp_path)
    for name in ("PQF_ENVIRONMENT", "PQF_FRAMEWORK_FILE", "MICROSOFT_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    monkeypatch.setenv("PQF_GRAPH_URL", graph.url)
    monkeypatch.setenv("PQF_GRAPH_TOKEN", graph.token)
    monkeypatch.setenv("PQF_GRAPH_GROUPS", STAFF)
    monkeypatch.setenv("PQF_GRAPH_MAPPING_FILE", str(ROOT / "examples" / "graph-mapping.yaml"))


async def _sync(
    database: Database,
    graph: FakeGraph,
    framework: Framework,
    mapping: DirectoryMapping,
    *,
    waits: Waits | None = None,
    dry_run: bool = False,
) -> SyncResult:
    async with aiohttp.ClientSession() as http:
        client = GraphClient(
            http=http, base_url=graph.url, tokens=StaticToken(graph.token), sleep=waits or Waits()
        )
        return await sync_roster(
            database=database, client=client, framework=framework, mapping=mapping,
            groups=[STAFF], dry_run=dry_run,
        )  # fmt: skip


async def _roster(database: Database) -> list[dict[str, str]]:
    async with database.session() as session:
        return await roster_rows(session=session)


async def test_a_sync_builds_the_roster_the_equivalent_csv_would(
    database: Database, sqlite_database: Database, graph: FakeGraph, framework: Framework,
    mapping: DirectoryMapping,
) -> None:  # fmt: skip
    result = await _sync(database, graph, framework, mapping)
    assert result.errors == []
    assert result.saved
    assert result.whole
    assert len(result.changes.added) == 5
    async with sqlite_database.session() as session:
        imported = await import_staff(
            session=session, framework=framework, text="\n".join(EQUIVALENT_CSV) + "\n"
        )
        assert imported.errors == []
    assert await _roster(database) == await _roster(sqlite_database)
    async with database.session() as session:
        assert await delta_link(session=session, source=SOURCE) is not None


async def test_a_second_sync_changes_only_what_changed(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping
) -> None:
    await _sync(sqlite_database, graph, framework, mapping)
    before = {row["email"]: row for row in await _roster(sqlite_database)}
    graph.requests.clear()

    graph.change_user(LEE, accountEnabled=False)  # a leaver
    graph.change_user(AMIRA, department="ASC Practice Development")  # a mover
    graph.set_manager(ELLEN, CHRIS)  # a new manager
    graph.groups[MENDIP].append(PAT)  # a joiner whose own record did not change
    result = await _sync(sqlite_database, graph, framework, mapping)

    assert result.errors == []
    assert not result.whole
    assert [p.email for p in result.changes.added] == ["pat.green@somerset.example"]
    assert [p.email for p in result.changes.deactivated] == ["lee.turner@somerset.example"]
    assert {old.email: result.changes.as_json()["updated"][i]["changes"]
            for i, (old, _new) in enumerate(result.changes.updated)} == {
        "amira.khan@somerset.example": {
            "team": ["Mendip Adult Social Care Team", "Practice Development"]
        },
        "ellen.shaw@somerset.example": {
            "supervisor_email": ["jo.morgan@somerset.example", "chris.hall@somerset.example"]
        },
    }  # fmt: skip
    after = {row["email"]: row for row in await _roster(sqlite_database)}
    changed = {email for email in after if after[email] != before.get(email)}
    assert changed == {
        "pat.green@somerset.example", "lee.turner@somerset.example",
        "amira.khan@somerset.example", "ellen.shaw@somerset.example",
    }  # fmt: skip
    assert after["pat.green@somerset.example"]["supervisor_email"] == "chris.hall@somerset.example"
    assert after["lee.turner@somerset.example"]["active"] == "no"
    # The group, the delta (one page), and the one member new to the roster read on his own
    # (Pat): not the whole directory again, nor Ravi, whose disabled account the first sync
    # held off the roster and whom the delta did not mention since.
    assert dict(graph.requests) == {
        "/groups/{id}/transitiveMembers/microsoft.graph.user": 1,
        "/users/delta": 1,
        "/users/{id}": 1,
        "/users/{id}/manager": 1,
    }

    third = await _sync(sqlite_database, graph, framework, mapping)
    assert third.changes.rows == []


async def test_leaving_the_groups_or_the_tenant_deactivates(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping
) -> None:
    await _sync(sqlite_database, graph, framework, mapping)
    graph.groups[STAFF].remove(ELLEN)
    graph.delete_user(AMIRA)
    result = await _sync(sqlite_database, graph, framework, mapping)
    assert sorted(p.email for p in result.changes.deactivated) == [
        "amira.khan@somerset.example", "ellen.shaw@somerset.example",
    ]  # fmt: skip
    assert result.changes.added == result.changes.updated == []
    rows = {row["email"]: row["active"] for row in await _roster(sqlite_database)}
    assert rows["amira.khan@somerset.example"] == rows["ellen.shaw@somerset.example"] == "no"


async def test_throttling_is_waited_out_as_graph_asks(
    sqlite_database: Database, framework: Framework, mapping: DirectoryMapping
) -> None:
    graph = await FakeGraph(throttle_rate=0.3, retry_after="3", seed=7).start()
    try:
        example_tenant(graph)
        graph.script.append(Fault("/users/delta", 429, retry_after="11"))
        waits = Waits()
        result = await _sync(sqlite_database, graph, framework, mapping, waits=waits)
    finally:
        await graph.close()
    assert result.errors == []
    assert len(result.changes.added) == 5
    assert graph.throttled == result.throttled == len(waits.asked) >= 2
    assert 11 <= max(waits.asked) <= 11 * 1.2  # Retry-After, plus at most a fifth of jitter
    assert all(3 <= w <= 3 * 1.2 for w in waits.asked if w < 11)


async def test_a_dry_run_writes_nothing(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping
) -> None:
    result = await _sync(sqlite_database, graph, framework, mapping, dry_run=True)
    assert len(result.changes.added) == 5
    assert not result.saved
    assert await _roster(sqlite_database) == []
    async with sqlite_database.session() as session:
        assert await delta_link(session=session, source=SOURCE) is None


async def test_an_unmapped_job_title_is_named_never_guessed(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping
) -> None:
    graph.change_user(ELLEN, jobTitle="Practice Lead")
    result = await _sync(sqlite_database, graph, framework, mapping)
    assert result.saved
    assert [(u.name, u.what, u.value) for u in result.changes.unmapped] == [
        ("Ellen Shaw", "job title", "Practice Lead")
    ]
    assert "ellen.shaw@somerset.example" not in {r["email"] for r in await _roster(sqlite_database)}
    async with sqlite_database.session() as session:
        # Held instead (tests/test_roster_sync_held.py), so the next run weighs her again.
        assert ELLEN in await held_records(session=session, source=SOURCE)


async def test_any_problem_saves_nothing(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping
) -> None:
    graph.change_user(LEE, mail="amira.khan@somerset.example")
    result = await _sync(sqlite_database, graph, framework, mapping)
    assert not result.saved
    assert result.errors == [
        f"user {LEE}: email 'amira.khan@somerset.example' repeats user {AMIRA}"
    ]
    assert await _roster(sqlite_database) == []


async def test_a_missing_group_is_named(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping
) -> None:
    del graph.groups[STAFF]
    with pytest.raises(GraphError, match=f"group {STAFF} \\(PQF_GRAPH_GROUPS\\) does not exist"):
        await _sync(sqlite_database, graph, framework, mapping)


def test_a_delta_without_a_property_keeps_the_rosters_value(mapping: DirectoryMapping) -> None:
    amira = RosterPerson(
        "amira.khan@somerset.example", "Amira Khan", "SW", "Mendip Adult Social Care Team",
        "chris.hall@somerset.example", AMIRA, True, "2026-12-24",
    )  # fmt: skip
    renamed = DirectoryUser(AMIRA, frozenset({"id", "displayName"}), name="Amira Shah")
    changes = diff_roster(
        roster=[amira], scope={AMIRA}, users={AMIRA: renamed}, removed=set(), mapping=mapping
    )
    assert [(old, new.name) for old, new in changes.updated] == [(amira, "Amira Shah")]
    assert changes.updated[0][1].on_leave_until == "2026-12-24"  # leave is the roster's own
    assert changes.updated[0][1].supervisor_email == "chris.hall@somerset.example"


def test_the_mapping_file_is_checked_before_anything_is_read(framework: Framework) -> None:
    codes = [r.code for r in framework.roles]
    mapping = parse_mapping(
        "teams:\n  ASC  Mendip: Mendip\nroles:\n  social worker: sw\n", role_codes=codes
    )
    assert mapping.team_of("asc mendip ") == "Mendip"
    assert mapping.role_of("Social Worker") == "SW"
    assert mapping.role_of("Social Work Lead") is None
    with pytest.raises(MappingError) as caught:
        parse_mapping(
            "teams:\n  A: X\n  a: Y\nroles:\n  Wizard: WIZ\n", role_codes=codes, where="m.yaml"
        )
    assert str(caught.value) == (
        "m.yaml: teams: 'a' repeats 'A'; roles: 'Wizard' maps to 'WIZ', not one of "
        + ", ".join(sorted(codes))
    )
    with pytest.raises(MappingError, match="expected the sections teams: and roles:"):
        parse_mapping("- a\n", role_codes=codes)


async def test_the_command_syncs_and_dry_runs(
    graph: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    command_line_against(graph, tmp_path, monkeypatch)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["roster", "sync", "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert (planned["dry_run"], planned["saved"], len(planned["added"])) == (True, False, 5)

    graph.change_user(ELLEN, jobTitle="Practice Lead")
    assert await asyncio.to_thread(main, ["roster", "sync"]) == 0
    out = capsys.readouterr().out
    assert (
        "Roster synced from Microsoft Graph: 4 added, 0 updated, 0 deactivated; 1 unmapped." in out
    )
    assert (
        "  added        amira.khan@somerset.example (Amira Khan, SW, Mendip Adult Social Care Team)"
        in out
    )
    assert f"  unmapped     job title 'Practice Lead': Ellen Shaw ({ELLEN})" in out
    assert (
        "  not added    ravi.nair@somerset.example (Ravi Nair): account disabled in Entra ID" in out
    )

    monkeypatch.delenv("PQF_GRAPH_GROUPS")
    assert await asyncio.to_thread(main, ["roster", "sync"]) == 2
    assert "missing: PQF_GRAPH_GROUPS" in capsys.readouterr().err
    monkeypatch.delenv("PQF_GRAPH_TOKEN")
    assert await asyncio.to_thread(main, ["roster", "sync"]) == 2
    said = capsys.readouterr().err
    assert "missing: PQF_GRAPH_GROUPS, PQF_GRAPH_MAPPING_FILE" not in said  # the file is set
    assert "MICROSOFT_APP_PASSWORD" in said
    assert "in development, PQF_GRAPH_TOKEN" in said


async def test_a_new_email_is_the_same_person(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping
) -> None:
    await _sync(sqlite_database, graph, framework, mapping)
    async with sqlite_database.session() as session:
        before = await staff_by_aad_id(session=session, aad_object_id=AMIRA)
    graph.change_user(AMIRA, mail="amira.shah@somerset.example", displayName="Amira Shah")
    result = await _sync(sqlite_database, graph, framework, mapping)
    assert result.errors == []
    assert result.changes.as_json()["updated"] == [
        {
            "email": "amira.khan@somerset.example",
            "changes": {
                "email": ["amira.khan@somerset.example", "amira.shah@somerset.example"],
                "name": ["Amira Khan", "Amira Shah"],
            },
        }
    ]
    async with sqlite_database.session() as session:
        after = await staff_by_aad_id(session=session, aad_object_id=AMIRA)
    assert before is not None
    assert after is not None
    assert (after.id, after.email) == (before.id, "amira.shah@somerset.example")

    graph.change_user(LEE, mail="amira.shah@somerset.example")
    clash = await _sync(sqlite_database, graph, framework, mapping)
    assert clash.errors == [
        "lee.turner@somerset.example: the new email amira.shah@somerset.example already "
        "belongs to someone else on the roster"
    ]
