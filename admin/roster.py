"""Import the staff roster and the case list from CSV files (`import-staff`, `import-cases`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from admin.common import (
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
    from storage.database import Database


def add_commands(commands: Commands) -> None:
    """Add `import-staff` and `import-cases`."""
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
