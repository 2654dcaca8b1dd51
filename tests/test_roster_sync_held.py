"""Whom a sync cannot place yet: unmapped or disabled people held, managers not on the roster."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from admin.cli import main
from directory.graph import GraphClient, StaticToken
from directory.mapping import DirectoryMapping, parse_mapping
from directory.roster_diff import DirectoryUser, RosterPerson, diff_roster
from directory.sync import SOURCE, SyncResult, sync_roster
from practice.framework import Framework
from storage.csv_import import import_staff
from storage.database import Database
from storage.directory_sync import delta_link, held_records, roster_rows
from storage.person_export import person_record
from storage.roster import staff_by_aad_id
from tests.conftest import ROOT
from tests.fake_graph import (
    AMIRA,
    CHRIS,
    ELLEN,
    JO,
    LEE,
    MENDIP,
    RAVI,
    STAFF,
    FakeGraph,
    example_tenant,
)  # fmt: skip
from tests.test_roster_sync import Waits, command_line_against

DIRECTOR = "6f0c2a4e-1b7d-4c39-9e55-0a8a9c1d2e09"
EXAMPLE = (ROOT / "examples" / "graph-mapping.yaml").read_text()
READ_ONE_BY_ONE = ("/users/{id}", "/users/{id}/manager")


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = await FakeGraph().start()
    example_tenant(fake)
    yield fake
    await fake.close()


def _mapping(framework: Framework, extra: str = "") -> DirectoryMapping:
    """Return the example mapping file, with `extra` lines added at its end."""
    return parse_mapping(EXAMPLE + extra, role_codes=[r.code for r in framework.roles])


async def _sync(
    database: Database, graph: FakeGraph, framework: Framework, mapping: DirectoryMapping,
    *, dry_run: bool = False,
) -> SyncResult:  # fmt: skip
    async with aiohttp.ClientSession() as http:
        client = GraphClient(
            http=http, base_url=graph.url, tokens=StaticToken(graph.token), sleep=Waits()
        )
        return await sync_roster(
            database=database, client=client, framework=framework, mapping=mapping,
            groups=[STAFF], dry_run=dry_run,
        )  # fmt: skip


async def _roster(database: Database) -> dict[str, dict[str, str]]:
    async with database.session() as session:
        return {row["email"]: row for row in await roster_rows(session=session)}


async def _held(database: Database) -> set[str]:
    async with database.session() as session:
        return set(await held_records(session=session, source=SOURCE))


async def test_an_unmapped_newcomer_is_held_then_placed_when_the_mapping_names_the_title(
    database: Database, graph: FakeGraph, framework: Framework
) -> None:
    graph.change_user(ELLEN, jobTitle="Practice Lead")
    first = await _sync(database, graph, framework, _mapping(framework))
    assert first.saved
    assert [(u.name, u.what, u.value) for u in first.changes.unmapped] == [
        ("Ellen Shaw", "job title", "Practice Lead")
    ]
    assert "ellen.shaw@somerset.example" not in await _roster(database)
    async with database.session() as session:
        # The link moves on: Ellen's record is held instead, with Ravi's disabled account.
        assert await delta_link(session=session, source=SOURCE) is not None
    assert await _held(database) == {ELLEN, RAVI}

    graph.requests.clear()
    again = await _sync(database, graph, framework, _mapping(framework))
    assert [u.name for u in again.changes.unmapped] == ["Ellen Shaw"]  # listed every sync
    assert again.changes.rows == []
    assert not any(graph.requests[kind] for kind in READ_ONE_BY_ONE)

    fixed = _mapping(framework, "  Practice Lead: PDAP\n")
    placed = await _sync(database, graph, framework, fixed)
    assert placed.errors == []
    assert placed.changes.unmapped == []
    assert [(p.email, p.role, p.supervisor_email) for p in placed.changes.added] == [
        ("ellen.shaw@somerset.example", "PDAP", "jo.morgan@somerset.example")
    ]
    assert not any(graph.requests[kind] for kind in READ_ONE_BY_ONE)  # from the held record
    assert (await _roster(database))["ellen.shaw@somerset.example"]["active"] == "yes"
    assert await _held(database) == {RAVI}


async def test_a_new_unmapped_title_keeps_the_old_role_until_the_mapping_names_it(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    await _sync(sqlite_database, graph, framework, _mapping(framework))
    graph.change_user(AMIRA, jobTitle="Senior Practitioner")
    moved = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert [(u.name, u.value) for u in moved.changes.unmapped] == [
        ("Amira Khan", "Senior Practitioner")
    ]
    assert moved.changes.rows == []
    assert (await _roster(sqlite_database))["amira.khan@somerset.example"]["role"] == "SW"

    quiet = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert [u.name for u in quiet.changes.unmapped] == ["Amira Khan"]  # past the delta link
    async with sqlite_database.session() as session:
        # A subject access request shows what the sync holds of her too.
        amira = await staff_by_aad_id(session=session, aad_object_id=AMIRA)
        assert amira is not None
        record = await person_record(session=session, staff=amira)
    [held] = record["held_by_roster_sync"]
    assert json.loads(held["record"])["job_title"] == "Senior Practitioner"

    fixed = await _sync(
        sqlite_database, graph, framework, _mapping(framework, "  Senior Practitioner: PDAP\n")
    )
    assert fixed.changes.as_json()["updated"] == [
        {"email": "amira.khan@somerset.example", "changes": {"role": ["SW", "PDAP"]}}
    ]
    assert await _held(sqlite_database) == {RAVI}


async def test_a_disabled_account_is_held_off_the_roster_until_enabled(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    first = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert "ravi.nair@somerset.example" not in {p.email for p in first.changes.added}
    assert await _held(sqlite_database) == {RAVI}

    graph.requests.clear()
    quiet = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert quiet.changes.rows == []
    assert not any(graph.requests[kind] for kind in READ_ONE_BY_ONE)  # Ravi is not read again

    graph.change_user(RAVI, accountEnabled=True)
    enabled = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert [(p.email, p.role, p.supervisor_email) for p in enabled.changes.added] == [
        ("ravi.nair@somerset.example", "MOD", "jo.morgan@somerset.example")
    ]
    assert await _held(sqlite_database) == set()

    graph.change_user(RAVI, accountEnabled=False)
    graph.groups[STAFF].remove(ELLEN)
    left = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert sorted(p.email for p in left.changes.deactivated) == [
        "ellen.shaw@somerset.example", "ravi.nair@somerset.example",
    ]  # fmt: skip
    assert await _held(sqlite_database) == set()  # on the roster now, deactivated, not held


async def test_a_held_person_who_leaves_the_groups_is_let_go(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    await _sync(sqlite_database, graph, framework, _mapping(framework))
    graph.groups[STAFF].remove(RAVI)
    result = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert result.changes.rows == []
    assert await _held(sqlite_database) == set()


async def test_a_manager_outside_the_groups_stops_the_sync_as_an_unknown_supervisor_would(
    database: Database, graph: FakeGraph, framework: Framework
) -> None:
    graph.add_user(DIRECTOR, "Dee Rector", "dee.rector@somerset.example", "Adult Services",
                   "Director of Adult Social Care")  # fmt: skip
    graph.set_manager(JO, DIRECTOR)
    planned = await _sync(database, graph, framework, _mapping(framework), dry_run=True)
    problem = (
        f"user {JO}: Jo Morgan <jo.morgan@somerset.example>: manager not on the roster: "
        f"Dee Rector <dee.rector@somerset.example> ({DIRECTOR}) is not in the groups "
        "(PQF_GRAPH_GROUPS); add the manager to a roster group, or list "
        "jo.morgan@somerset.example under no_supervisor: in the mapping file"
    )
    assert planned.errors == [problem]
    assert planned.changes.as_json()["manager_not_on_roster"] == [
        {
            "aad_object_id": JO, "name": "Jo Morgan", "email": "jo.morgan@somerset.example",
            "manager_aad_object_id": DIRECTOR, "manager_name": "Dee Rector",
            "manager_email": "dee.rector@somerset.example",
            "why": "is not in the groups (PQF_GRAPH_GROUPS)",
        }
    ]  # fmt: skip
    result = await _sync(database, graph, framework, _mapping(framework))
    assert (result.saved, result.errors) == (False, [problem])
    assert await _roster(database) == {}  # all or nothing, as the roster file
    async with database.session() as session:
        assert await delta_link(session=session, source=SOURCE) is None
        # The roster file's rule, for the same person.
        csv = await import_staff(
            session=session, framework=framework,
            text="email,name,role,team,supervisor_email\njo.morgan@somerset.example,Jo Morgan,"
            "SM,Adult Social Care Leadership,dee.rector@somerset.example\n",
        )  # fmt: skip
        await session.rollback()
    assert [e.split(": ", 1)[1] for e in csv.errors] == [
        "supervisor_email 'dee.rector@somerset.example' is not in this file or the roster"
    ]

    top = _mapping(framework, "no_supervisor:\n  - Jo.Morgan@somerset.example\n")
    listed = await _sync(database, graph, framework, top)
    assert listed.errors == []
    assert len(listed.changes.added) == 5
    assert (await _roster(database))["jo.morgan@somerset.example"]["supervisor_email"] == ""


async def test_a_manager_in_the_groups_but_unmapped_is_named_with_the_reason(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    graph.change_user(CHRIS, jobTitle="Team Wizard")
    result = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert not result.saved
    assert [(m.name, m.manager_name, m.why) for m in result.changes.manager_missing] == [
        (name, "Chris Hall", "is in the groups but their department or job title is unmapped")
        for name in ("Amira Khan", "Lee Turner")
    ]
    assert [u.name for u in result.changes.unmapped] == ["Chris Hall"]


async def test_a_manager_the_roster_file_put_on_the_roster_by_email_is_found(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    # Jo, outside the groups now, is on the roster from a roster file, without an object id.
    graph.groups[STAFF].remove(JO)
    async with sqlite_database.session() as session:
        imported = await import_staff(
            session=session, framework=framework,
            text="email,name,role,team\njo.morgan@somerset.example,Jo Morgan,SM,"
            "Adult Social Care Leadership\n",
        )  # fmt: skip
        assert imported.errors == []
        await session.commit()
    result = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert result.errors == []
    roster = await _roster(sqlite_database)
    assert roster["chris.hall@somerset.example"]["supervisor_email"] == "jo.morgan@somerset.example"
    assert roster["jo.morgan@somerset.example"]["aad_object_id"] == ""  # left as the file made it


async def test_a_leaver_whose_manager_left_first_is_still_deactivated(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    await _sync(sqlite_database, graph, framework, _mapping(framework))
    graph.add_user(DIRECTOR, "Dee Rector", "dee.rector@somerset.example", "Adult Services",
                   "Director of Adult Social Care")  # fmt: skip
    graph.set_manager(LEE, DIRECTOR)
    graph.change_user(LEE, accountEnabled=False)
    graph.groups[MENDIP].remove(CHRIS)
    result = await _sync(sqlite_database, graph, framework, _mapping(framework))
    # Amira's manager Chris is still on the roster (deactivated): a roster file would accept him.
    assert result.errors == []
    assert sorted(p.email for p in result.changes.deactivated) == [
        "chris.hall@somerset.example", "lee.turner@somerset.example",
    ]  # fmt: skip
    roster = await _roster(sqlite_database)
    assert (
        roster["lee.turner@somerset.example"]["supervisor_email"] == "chris.hall@somerset.example"
    )


async def test_a_leaver_with_a_new_unmapped_title_is_deactivated_not_held(
    sqlite_database: Database, graph: FakeGraph, framework: Framework
) -> None:
    await _sync(sqlite_database, graph, framework, _mapping(framework))
    graph.change_user(AMIRA, jobTitle="Senior Practitioner", accountEnabled=False)
    result = await _sync(sqlite_database, graph, framework, _mapping(framework))
    assert result.changes.unmapped == []
    assert [(p.email, p.role, p.active) for p in result.changes.deactivated] == [
        ("amira.khan@somerset.example", "SW", False)
    ]
    assert await _held(sqlite_database) == {RAVI}


async def test_the_command_names_a_manager_not_on_the_roster_for_the_administrator(
    graph: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    command_line_against(graph, tmp_path, monkeypatch)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    graph.add_user(DIRECTOR, "Dee Rector", "dee.rector@somerset.example", "Adult Services",
                   "Director of Adult Social Care")  # fmt: skip
    graph.set_manager(JO, DIRECTOR)
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["roster", "sync", "--dry-run"]) == 1
    said = capsys.readouterr()
    assert (
        "would make 4 added, 0 updated, 0 deactivated; 0 unmapped; 1 with a manager not on "
        "the roster." in said.out
    )
    assert "But a sync would save nothing until these are fixed:" in said.err
    assert "Jo Morgan <jo.morgan@somerset.example>: manager not on the roster: Dee Rector" in (
        said.err
    )
    assert await asyncio.to_thread(main, ["roster", "sync", "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert (shown["saved"], len(shown["errors"])) == (False, 1)
    assert [m["manager_name"] for m in shown["manager_not_on_roster"]] == ["Dee Rector"]


def test_why_a_manager_is_not_on_the_roster(framework: Framework) -> None:
    mapping = _mapping(framework)
    jo = DirectoryUser(
        JO, frozenset({"displayName", "mail", "department", "jobTitle", "accountEnabled"}),
        name="Jo Morgan", email="jo.morgan@somerset.example", department="ASC Leadership",
        job_title="Strategic Manager", enabled=True, manager_known=True, manager_id=DIRECTOR,
    )  # fmt: skip
    gone = diff_roster(
        roster=[], scope={JO}, users={JO: jo}, removed=set(), mapping=mapping,
        managers={DIRECTOR: None},
    )  # fmt: skip
    assert [(m.manager_name, m.why) for m in gone.manager_missing] == [
        ("", "is no longer in the directory")
    ]
    assert f"manager not on the roster: ({DIRECTOR}) is no longer in the directory" in (
        gone.manager_missing[0].problem()
    )
    assert gone.added == []
    # A manager a roster file put on the roster (no object id) is found by Graph's email.
    dee = RosterPerson("dee.rector@somerset.example", "Dee Rector", "DIR", "Adult Services",
                       "", "", True, "")  # fmt: skip
    director = DirectoryUser(DIRECTOR, frozenset({"mail"}), email="dee.rector@somerset.example")
    found = diff_roster(
        roster=[dee], scope={JO}, users={JO: jo}, removed=set(), mapping=mapping,
        managers={DIRECTOR: director},
    )  # fmt: skip
    assert found.manager_missing == []
    assert [p.supervisor_email for p in found.added] == ["dee.rector@somerset.example"]
    # ...but not one the roster knows under another object id: that is someone else.
    other = replace(dee, aad_object_id="6f0c2a4e-1b7d-4c39-9e55-0a8a9c1d2e99")
    clash = diff_roster(
        roster=[other], scope={JO}, users={JO: jo}, removed=set(), mapping=mapping,
        managers={DIRECTOR: director},
    )  # fmt: skip
    assert [m.why for m in clash.manager_missing] == ["is not in the groups (PQF_GRAPH_GROUPS)"]
