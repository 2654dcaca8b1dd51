"""The mapping file's no_supervisor: entries: one that does nothing is named, and the sync goes on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aiohttp
import pytest

from admin.cli import main
from directory.graph import GraphClient, StaticToken
from directory.mapping import DirectoryMapping, parse_mapping
from directory.sync import SyncResult, nightly_roster_sync, sync_roster
from practice.framework import Framework
from storage.database import Database
from storage.directory_sync import roster_rows
from tests.conftest import ROOT
from tests.fake_graph import CHRIS, JO, PAT, STAFF, FakeGraph, example_tenant
from tests.test_roster_sync import Waits

DIRECTOR = "6f0c2a4e-1b7d-4c39-9e55-0a8a9c1d2e09"
NOBODY = "6f0c2a4e-1b7d-4c39-9e55-0a8a9c1d2e77"
EXAMPLE = (ROOT / "examples" / "graph-mapping.yaml").read_text()
FIRST_LINE = EXAMPLE.count("\n") + 2  # the line of the first entry under an added no_supervisor:


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = await FakeGraph().start()
    example_tenant(fake)
    # Jo's manager, the director, is not in the roster groups: Jo is the top of the roster.
    fake.add_user(DIRECTOR, "Dee Rector", "dee.rector@somerset.example", "Adult Services",
                  "Director of Adult Social Care")  # fmt: skip
    fake.set_manager(JO, DIRECTOR)
    yield fake
    await fake.close()


def _listing(*entries: str) -> str:
    return "no_supervisor:\n" + "".join(f"  - {entry}\n" for entry in entries)


def _mapping(framework: Framework, *entries: str) -> DirectoryMapping:
    return parse_mapping(EXAMPLE + _listing(*entries), role_codes=[r.code for r in framework.roles])


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


async def _supervisors(database: Database) -> dict[str, str]:
    async with database.session() as session:
        return {r["email"]: r["supervisor_email"] for r in await roster_rows(session=session)}


def _found(result: SyncResult) -> list[tuple[str, int | None, str]]:
    return [(f.entry, f.line, f.kind) for f in result.entries]


async def test_an_entry_matching_nobody_is_named_as_a_typo_and_the_sync_goes_on(
    database: Database, graph: FakeGraph, framework: Framework
) -> None:
    mapping = _mapping(framework, "jo.morgan@somerset.example", "jo.morgen@somerset.example",
                       NOBODY)  # fmt: skip
    planned = await _sync(database, graph, framework, mapping, dry_run=True)
    expected = [
        ("jo.morgen@somerset.example", FIRST_LINE + 1, "not_in_entra"),
        (NOBODY, FIRST_LINE + 2, "not_in_entra"),
    ]
    assert _found(planned) == expected
    assert planned.errors == []  # harmless: not a problem that stops the sync
    assert planned.entries[0].problem() == (
        f"no_supervisor: jo.morgen@somerset.example (line {FIRST_LINE + 1}) matches nobody on "
        "the roster or in Entra ID: probably a typo: check it against the person's email or "
        "object id in Entra ID, or remove it"
    )
    result = await _sync(database, graph, framework, mapping)
    assert result.saved
    assert _found(result) == expected
    assert len(result.changes.added) == 5
    assert (await _supervisors(database))["jo.morgan@somerset.example"] == ""
    shown = result.as_json()["no_supervisor_to_check"]
    assert [(e["entry"], e["line"], e["finding"]) for e in shown] == expected
    assert result.counts()["no_supervisor_to_check"] == 2

    # The next night reads only what changed, and still says so.
    again = await _sync(database, graph, framework, mapping)
    assert (again.saved, _found(again)) == (True, expected)


async def test_an_entry_naming_a_leaver_or_someone_outside_the_groups_says_which(
    database: Database, graph: FakeGraph, framework: Framework
) -> None:
    graph.change_user(PAT, accountEnabled=False)
    mapping = _mapping(
        framework, "jo.morgan@somerset.example", "dee.rector@somerset.example",
        "lee.turner@somerset.example", PAT,
    )  # fmt: skip
    first = await _sync(database, graph, framework, mapping)
    assert first.saved
    # The director instead of the person at the top; Pat, never on the roster, disabled.
    assert _found(first) == [
        ("dee.rector@somerset.example", FIRST_LINE + 1, "outside_groups"),
        ("lee.turner@somerset.example", FIRST_LINE + 2, "not_needed"),
        (PAT, FIRST_LINE + 3, "left"),
    ]
    assert "names Dee Rector <dee.rector@somerset.example>, who is in Entra ID but not in the " \
        "roster groups" in first.entries[0].problem()  # fmt: skip

    graph.groups[STAFF].remove(JO)  # Jo leaves: deactivated, and her entry with her
    left = await _sync(database, graph, framework, mapping)
    assert left.saved
    assert [p.email for p in left.changes.deactivated] == ["jo.morgan@somerset.example"]
    assert _found(left)[0] == ("jo.morgan@somerset.example", FIRST_LINE, "left")
    assert (
        left.entries[0]
        .problem()
        .endswith(
            "names Jo Morgan <jo.morgan@somerset.example>, who is no longer active on the roster: "
            "they have left: remove the entry"
        )
    )


async def test_an_entry_for_someone_whose_manager_is_on_the_roster_is_not_needed(
    database: Database, graph: FakeGraph, framework: Framework
) -> None:
    mapping = _mapping(framework, "jo.morgan@somerset.example", CHRIS)
    first = await _sync(database, graph, framework, mapping)
    assert first.saved
    # Chris's manager Jo is on the roster: she is his supervisor, as she would be unlisted.
    assert _found(first) == [(CHRIS, FIRST_LINE + 1, "not_needed")]
    assert first.entries[0].detail == (
        "names Chris Hall <chris.hall@somerset.example>, whose manager in Entra ID, "
        "jo.morgan@somerset.example, is on the roster"
    )
    supervisors = await _supervisors(database)
    assert supervisors["chris.hall@somerset.example"] == "jo.morgan@somerset.example"
    assert supervisors["jo.morgan@somerset.example"] == ""  # the entry that is needed

    # Weighed again each night, though nothing about Chris changed (his manager is read).
    graph.requests.clear()
    quiet = await _sync(database, graph, framework, mapping)
    assert (quiet.changes.rows, _found(quiet)) == ([], [(CHRIS, FIRST_LINE + 1, "not_needed")])
    assert graph.requests["/users/{id}/manager"] == 2  # one per listed person in the groups

    # Once Chris's manager leaves the roster, his entry is what lets the sync through.
    graph.set_manager(CHRIS, DIRECTOR)
    moved = await _sync(database, graph, framework, mapping)
    assert (moved.errors, _found(moved)) == ([], [])
    assert (await _supervisors(database))["chris.hall@somerset.example"] == ""


async def test_the_command_names_the_entry_and_says_what_to_do(
    graph: FakeGraph, framework: Framework, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for name in ("PQF_ENVIRONMENT", "PQF_FRAMEWORK_FILE", "MICROSOFT_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    mapping_file = tmp_path / "graph-mapping.yaml"
    mapping_file.write_text(EXAMPLE + _listing("jo.morgan@somerset.example", "jo.morgen@x.example"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    monkeypatch.setenv("PQF_GRAPH_URL", graph.url)
    monkeypatch.setenv("PQF_GRAPH_TOKEN", graph.token)
    monkeypatch.setenv("PQF_GRAPH_GROUPS", STAFF)
    monkeypatch.setenv("PQF_GRAPH_MAPPING_FILE", str(mapping_file))
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    capsys.readouterr()
    typo = f"no_supervisor: jo.morgen@x.example (line {FIRST_LINE + 1}) matches nobody"

    assert await asyncio.to_thread(main, ["roster", "sync", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        "Check these no_supervisor: entries in PQF_GRAPH_MAPPING_FILE (1): they do nothing" in out
    )
    assert f"  {typo}" in out
    assert await asyncio.to_thread(main, ["roster", "sync", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["saved"] is True
    assert [e["entry"] for e in shown["no_supervisor_to_check"]] == ["jo.morgen@x.example"]
    assert await asyncio.to_thread(main, ["roster", "sync"]) == 0
    assert typo in capsys.readouterr().out


async def test_the_nightly_log_gives_the_entrys_line_never_its_email(
    sqlite_database: Database, graph: FakeGraph, framework: Framework, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    mapping_file = tmp_path / "graph-mapping.yaml"
    mapping_file.write_text(
        EXAMPLE + _listing("jo.morgan@somerset.example", "jo.morgen@x.example", NOBODY)
    )
    async with aiohttp.ClientSession() as http:
        client = GraphClient(http=http, base_url=graph.url, tokens=StaticToken(graph.token))
        with caplog.at_level(logging.WARNING, logger="directory.sync"):
            night = await nightly_roster_sync(
                database=sqlite_database, client=client, framework=framework,
                mapping_file=mapping_file, groups=[STAFF], instance="test",
                day=date(2026, 12, 1),
            )  # fmt: skip
    assert (night["added"], night["no_supervisor_to_check"]) == (5, 2)
    said = [r.getMessage() for r in caplog.records if r.name == "directory.sync"]
    assert said == [
        f"roster sync: no_supervisor: entry on line {FIRST_LINE + 1} (an email address) "
        "matches nobody in Entra ID (a typo?) (the sync goes on)",
        f"roster sync: no_supervisor: entry on line {FIRST_LINE + 2} ({NOBODY}) "
        "matches nobody in Entra ID (a typo?) (the sync goes on)",
    ]
