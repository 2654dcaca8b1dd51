"""Run the bot's web server, and bring its database schema up to date first (`serve`, `migrate`)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from admin.common import EXIT_BAD_SETUP, EXIT_OK, Commands, complain, framework_of
from bot.logs import RequestLogger
from bot.settings import Settings

log = logging.getLogger("pqf-bot")


def add_commands(commands: Commands) -> None:
    """Add `serve` and `migrate`."""
    serve = commands.add_parser(
        "serve",
        help="run the bot's web server (Teams posts to /api/messages)",
        description="Run the bot's web server. Teams (or the Agents Playground) posts "
        "activities to http://HOST:PORT/api/messages; /healthz and /readyz report health.",
    )
    serve.add_argument("--host", help="address to listen on (default: PQF_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PQF_PORT)")
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Apply every database migration not yet applied (safe to run repeatedly).",
    )
    migrate.set_defaults(handler=_migrate)


async def _settle_heap(_app: Any) -> None:
    from bot.app import settle_heap

    settle_heap()


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app
    from storage.migrate import current_revision, head_revision

    framework = framework_of(settings)
    current, head = current_revision(settings.database_url), head_revision(settings.database_url)
    if current != head:
        complain(
            f"the database schema is at {current or 'nothing'}, this release needs {head}: "
            "run `pqf-bot migrate` first"
        )
        return EXIT_BAD_SETUP
    if settings.is_development and not settings.app_id:
        log.warning(
            "development mode without MICROSOFT_APP_ID: requests are NOT authenticated "
            "(only for the Agents Playground on this machine)"
        )
    host, port = args.host or settings.host, args.port or settings.port
    log.info(
        "framework %s loaded; listening on http://%s:%s/api/messages", framework.version, host, port
    )
    app = create_app(settings, framework=framework)
    app.on_startup.append(_settle_heap)  # after the resources create_app opens
    web.run_app(
        app, host=host, port=port, print=None, access_log_class=RequestLogger,
    )  # fmt: skip
    return EXIT_OK


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from storage.migrate import current_revision, upgrade

    before = current_revision(settings.database_url)
    upgrade(settings.database_url)
    after = current_revision(settings.database_url)
    if before == after:
        print(f"The database is up to date (revision {after}).")
    else:
        print(f"Migrated the database from {before or 'empty'} to revision {after}.")
    return EXIT_OK
