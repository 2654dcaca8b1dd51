"""The `pqf-bot` command: run the bot, migrate, import the roster and cases, request audits.

`main` assembles the parser from one module per group of commands, in the order `--help`
lists them, loads the settings and runs the command asked for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from admin import board_pack, cycle, demo, operations, reach, reports, roster, serve, teams
from admin.common import EXIT_BAD_SETUP, EXIT_FAILED, Handler, complain
from bot.logs import configure_logging
from bot.settings import SettingsError, load_settings
from practice.framework import FrameworkError

# The groups of commands, in the order `pqf-bot --help` lists their commands.
GROUPS = (serve, roster, reach, cycle, reports, board_pack, operations, teams, demo)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pqf-bot",
        description="Run Somerset Adult Social Care's Practice Quality Framework audits in "
        "Microsoft Teams. Settings come from the environment and an optional .env file "
        "(see docs/configuration.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        complain(str(error))
        return EXIT_BAD_SETUP
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    handler: Handler = args.handler
    try:
        return handler(settings, args)
    except FrameworkError as error:
        complain(f"invalid framework file: {error}")
        return EXIT_BAD_SETUP
    except DBAPIError as error:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        complain(f"cannot use the database at {where} (DATABASE_URL): {error.orig}")
        return EXIT_BAD_SETUP
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
