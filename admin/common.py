"""What every `pqf-bot` command shares: exit statuses, argument types, the framework, the database.

Each group of commands (`serve.py`, `roster.py`, `cycle.py`, `reports.py`, `operations.py`,
`teams.py`, `demo.py`) adds its commands with `add_commands`, each with its handler as the
`handler` default; `cli.py` assembles them and runs the one asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING, TypeAlias

from bot.settings import Settings
from practice.framework import Framework, load_framework
from practice.month import Month, MonthError

if TYPE_CHECKING:
    from storage.database import Database

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETUP = 2
EXIT_USAGE = 2  # an argument names nothing there is, as argparse exits on a bad one

# What runs one command: its exit status from the settings and the parsed arguments.
Handler: TypeAlias = Callable[[Settings, argparse.Namespace], int]
# What `ArgumentParser.add_subparsers` returns: where a group adds its commands.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def complain(message: str) -> None:
    """Tell the administrator what went wrong, on standard error."""
    print(f"pqf-bot: {message}", file=sys.stderr)


def parse_month(text: str) -> str:
    """Return a "YYYY-MM" argument as the month it names, or refuse it."""
    try:
        return str(Month.parse(text))
    except MonthError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2024-09") from None


def parse_day(text: str) -> date:
    """Return a "YYYY-MM-DD" argument as a date, or refuse it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-09-02") from None


def parse_positive(text: str) -> int:
    """Return a whole-number argument of 1 or more, or refuse it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def framework_of(settings: Settings) -> Framework:
    """Load and validate the framework the settings name (or the built-in one)."""
    return load_framework(settings.framework_file)


def run_with_database(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    """Open the database, run `work` with it, close the database; return work's exit status."""
    from storage.database import Database

    async def run() -> int:
        database = Database(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())
