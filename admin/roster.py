"""Load the roster and the case list: from CSV files (`import-staff`, `import-cases`) or the
roster from Microsoft Graph (`roster sync`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from admin.common import (
    EXIT_BAD_SETUP,
    EXIT_FAILED,
    EXIT_OK,
    Commands,
    Handler,
    complain,
    framework_of,
    run_with_database,
)
from admin.progress import TerminalProgress
from bot.settings import Settings

if TYPE_CHECKING:
    from directory.sync import SyncResult
    from storage.database import Database


def add_commands(commands: Commands) -> None:
    """Add `import-staff`, `import-cases` and `roster sync`."""
    staff = commands.add_parser(
        "import-staff",
        help="create or update the roster from a staff CSV file",
        description="Import the staff roster. Columns: email, name, role, team, and optionally "
        "supervisor_email, aad_object_id, active. Every row is checked first; a file with any "
        "bad row imports nothing. Re-importing updates people matched by email.",
    )
    staff.add_argument("file", type=Path, metavar="FILE.csv")
    staff.set_defaults(handler=_import("staff"))

    cases = commands.add_parser(
        "import-cases",
        help="create or update the case list from a case CSV file",
        description="Import the case list (case references only). Columns: case_reference, "
        "team, status, and optionally allocated_worker_email, closed_on. Every row is checked "
        "first; a file with any bad row imports nothing. Re-importing updates cases matched "
        "by reference.",
    )
    cases.add_argument("file", type=Path, metavar="FILE.csv")
    cases.set_defaults(handler=_import("cases"))

    roster = commands.add_parser(
        "roster",
        help="keep the roster in step with Microsoft Entra ID (roster sync)",
        description="The roster from Microsoft Graph instead of a staff file (docs/deploy.md, "
        "'Roster from Microsoft Graph').",
    )
    actions = roster.add_subparsers(dest="action", required=True, metavar="ACTION")
    sync = actions.add_parser(
        "sync",
        help="add, update and deactivate people to match the groups in PQF_GRAPH_GROUPS",
        description="Read the members of the groups in PQF_GRAPH_GROUPS from Microsoft Graph "
        "(only what changed since the last sync) and add, update or deactivate people on the "
        "roster to match, turning departments into teams and job titles into role codes with "
        "PQF_GRAPH_MAPPING_FILE. Everything is checked first, as for a staff file; any problem "
        "changes nothing. People whose department or job title the file does not name are "
        "listed and left off.",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="show what would change; change nothing"
    )
    sync.add_argument("--json", action="store_true", help="print the result as JSON")
    sync.add_argument(
        "--full",
        action="store_true",
        help="read every user again, not only changes (after changing the mapping file)",
    )
    sync.set_defaults(handler=_sync)


def _import(kind: str) -> Handler:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        from storage.csv_import import import_cases, import_staff, read_csv_file

        text, problem = read_csv_file(args.file)
        if text is None:
            complain(str(problem))
            return EXIT_FAILED
        framework = framework_of(settings)
        progress = TerminalProgress()

        async def go(database: Database) -> int:
            try:
                async with database.session() as session:
                    if kind == "staff":
                        result = await import_staff(
                            session=session, framework=framework, text=text, progress=progress
                        )
                    else:
                        result = await import_cases(session=session, text=text, progress=progress)
                    if not result.ok:
                        await session.rollback()
            finally:
                progress.close()
            if not result.ok:
                print(
                    f"{args.file}: nothing imported; fix these rows and try again:", file=sys.stderr
                )
                for error in result.errors:
                    print(f"  {error}", file=sys.stderr)
                return EXIT_FAILED
            noun = "people" if kind == "staff" else "cases"
            print(
                f"Imported {args.file}: {result.created} {noun} added, {result.updated} updated, "
                f"{result.unchanged} unchanged."
            )
            return EXIT_OK

        return run_with_database(settings, go)

    return run


def _sync(settings: Settings, args: argparse.Namespace) -> int:
    import aiohttp

    from directory.graph import GraphClient, GraphError
    from directory.mapping import MappingError, load_mapping
    from directory.sync import GRAPH_TIMEOUT, sync_roster

    missing = settings.graph_missing()
    if missing or settings.graph_mapping_file is None:
        complain(
            "roster sync needs Microsoft Graph settings; missing: " + ", ".join(missing)
            + " (see docs/deploy.md, 'Roster from Microsoft Graph')"
            + settings.graph_missing_hint(missing)
        )  # fmt: skip
        return EXIT_BAD_SETUP
    framework = framework_of(settings)
    try:
        mapping = load_mapping(
            settings.graph_mapping_file, role_codes=[r.code for r in framework.roles]
        )
    except MappingError as error:
        complain(f"invalid mapping file (PQF_GRAPH_MAPPING_FILE): {error}")
        return EXIT_BAD_SETUP
    tokens = settings.graph_tokens()

    async def go(database: Database) -> int:
        async with aiohttp.ClientSession(timeout=GRAPH_TIMEOUT) as http:
            client = GraphClient(http=http, base_url=settings.graph_url, tokens=tokens)
            try:
                result = await sync_roster(
                    database=database,
                    client=client,
                    framework=framework,
                    mapping=mapping,
                    groups=settings.graph_group_ids,
                    dry_run=args.dry_run,
                    whole=args.full,
                )
            except GraphError as error:
                complain(f"roster sync: nothing changed: {error}")
                return EXIT_FAILED
        if args.json:
            print(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
        else:
            _print_sync(result)
        if result.errors:
            if not args.json:
                print(
                    "But a sync would save nothing until these are fixed:" if result.dry_run
                    else "Nothing changed; fix these and sync again:",
                    file=sys.stderr,
                )  # fmt: skip
                for problem in result.errors:
                    print(f"  {problem}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK

    return run_with_database(settings, go)


def _print_sync(result: SyncResult) -> None:
    changes = result.changes
    if result.dry_run:
        heading = "Roster sync, dry run (nothing changed): would make"
    elif result.saved:
        heading = "Roster synced from Microsoft Graph:"
    else:
        heading = "Roster sync found problems; it would make"
    missing = len(changes.manager_missing)
    print(
        f"{heading} {len(changes.added)} added, {len(changes.updated)} updated, "
        f"{len(changes.deactivated)} deactivated; {len(changes.unmapped)} unmapped"
        + (f"; {missing} with a manager not on the roster." if missing else ".")
    )
    for person in changes.added:
        print(f"  added        {person.email} ({person.name}, {person.role}, {person.team})")
    for old, new in changes.updated:
        before, after = old.as_row(), new.as_row()
        said = ", ".join(
            f"{name} {before[name]!r} → {after[name]!r}" for name in before
            if before[name] != after[name]
        )  # fmt: skip
        print(f"  updated      {old.email}: {said}")
    for person in changes.deactivated:
        print(f"  deactivated  {person.email}")
    for entry in changes.unmapped:
        print(f"  unmapped     {entry.what} {entry.value!r}: {entry.name} ({entry.user_id})")
    for user in changes.disabled_newcomers:
        print(f"  not added    {user.email} ({user.name}): account disabled in Entra ID")
    if changes.unmapped:
        print(
            "Add the unmapped departments and job titles to PQF_GRAPH_MAPPING_FILE; until then "
            "those people stay as they are, and each sync lists them again."
        )
    if result.entries:
        print(
            f"Check these no_supervisor: entries in PQF_GRAPH_MAPPING_FILE ({len(result.entries)}):"
            " they do nothing (the sync goes on), and each sync lists them until the file changes."
        )
    for finding in result.entries:
        print(f"  {finding.problem()}")
