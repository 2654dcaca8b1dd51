"""Load the demo roster, cases and requests for trying the bot locally (`demo-data`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from admin.common import (
    EXIT_FAILED,
    EXIT_OK,
    Commands,
    complain,
    framework_of,
    run_with_database,
)
from bot.settings import Settings

if TYPE_CHECKING:
    from storage.database import Database


def add_commands(commands: Commands) -> None:
    """Add `demo-data`."""
    demo = commands.add_parser(
        "demo-data",
        help="load a demo roster, cases and requests for local trials",
        description="Load a demo roster mapped onto the Agents Playground's mock users (one "
        "role each), demo cases, and this month's audit requests for them. Safe to run again.",
    )
    demo.add_argument(
        "--playground-config",
        type=Path,
        metavar="PATH",
        help="also write an Agents Playground configuration file here",
    )
    demo.add_argument(
        "--as",
        dest="as_user",
        default="alexw@example.com",
        metavar="EMAIL",
        help="the demo user the playground signs in as (default: alexw@example.com"
        ", a social worker)",
    )
    demo.set_defaults(handler=_demo_data)


def _demo_data(settings: Settings, args: argparse.Namespace) -> int:
    from admin.demo_data import load_demo_data, playground_config_yaml

    framework = framework_of(settings)
    if args.playground_config:
        try:
            config = playground_config_yaml(args.as_user)
        except ValueError as error:
            complain(str(error))
            return EXIT_FAILED
    today = datetime.now(UTC).astimezone(settings.zone).date()

    async def go(database: Database) -> int:
        async with database.session() as session:
            staff, cases, requests = await load_demo_data(
                session=session, framework=framework, today=today
            )
        print(
            f"Demo roster: {staff.created} added, {staff.updated + staff.unchanged} already "
            f"there. Demo cases: {cases.created} added, {cases.updated + cases.unchanged} "
            f"already there. Audit requests created: {len(requests)}."
        )
        return EXIT_OK

    status = run_with_database(settings, go)
    if status == EXIT_OK and args.playground_config:
        args.playground_config.write_text(config, encoding="utf-8")
        print(f"Wrote {args.playground_config} (signed in as {args.as_user}).")
    return status
