"""Who the bot can reach in Teams, and why not the others; install the app for them (`reach`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from admin.common import EXIT_BAD_SETUP, EXIT_FAILED, EXIT_OK, Commands, complain, run_with_database
from bot.settings import Settings

if TYPE_CHECKING:
    from directory.install import InstallResult
    from storage.database import Database


def add_commands(commands: Commands) -> None:
    """Add `reach`."""
    reach = commands.add_parser(
        "reach",
        help="show who the bot can message in Teams, and install the app for the others",
        description="Count the active people on the roster by whether the bot can message "
        "them in Teams, and list those it cannot with the reason. With --install, first "
        "install the app through Microsoft Graph for everyone with an Entra object id and no "
        "chat yet (docs/deploy.md, 'Installing the app for everyone').",
    )
    reach.add_argument(
        "--install", action="store_true", help="install the app for those who need it first"
    )
    reach.add_argument("--json", action="store_true", help="print the result as JSON")
    reach.set_defaults(handler=_reach)


def _reach(settings: Settings, args: argparse.Namespace) -> int:
    if args.install:
        missing = settings.install_missing()
        if missing:
            complain(
                "reach --install needs Microsoft Graph settings; missing: " + ", ".join(missing)
                + " (see docs/deploy.md, 'Installing the app for everyone')"
                + settings.graph_missing_hint(missing)
            )  # fmt: skip
            return EXIT_BAD_SETUP

    async def go(database: Database) -> int:
        installed: InstallResult | None = None
        if args.install:
            from directory.graph import GraphError

            try:
                installed = await _install(settings, database)
            except GraphError as error:
                complain(f"reach --install: {error}")
                return EXIT_FAILED
        people = await _people(database)
        if args.json:
            shown = {
                "install": installed.counts() if installed else None,
                "counts": dict(Counter(p["reach"] for p in people)),
                "people": [p for p in people if p["reach"] != "reachable"],
            }
            print(json.dumps(shown, indent=2, ensure_ascii=False))
        else:
            _print(people, installed)
        return EXIT_OK

    return run_with_database(settings, go)


async def _install(settings: Settings, database: Database) -> InstallResult:
    import aiohttp

    from directory.graph import GraphClient
    from directory.install import AppInstaller
    from directory.sync import GRAPH_TIMEOUT
    from storage.models import utc_now

    tokens = settings.graph_tokens()
    installer = AppInstaller(
        catalog_app_id=settings.teams_catalog_app_id,
        bot_app_id=settings.app_id,
        tenant_id=settings.app_tenant_id or None,
        service_url=settings.teams_service_url,
        rate=settings.graph_install_rate,
    )
    async with aiohttp.ClientSession(timeout=GRAPH_TIMEOUT) as http:
        client = GraphClient(http=http, base_url=settings.graph_url, tokens=tokens)
        return await installer.run(database=database, client=client, now=utc_now)


async def _people(database: Database) -> list[dict[str, Any]]:
    """Return each active person on the roster with their reach and, if any, why."""
    from storage import roster
    from storage.app_installs import installs_of

    async with database.session() as session:
        people = [p for p in await roster.all_staff(session=session) if p.active]
        reach = await roster.reach_of(session=session, people=people)
        installs = await installs_of(
            session=session, aad_object_ids=[p.aad_object_id for p in people if p.aad_object_id]
        )
    found = []
    for person in people:
        install = installs.get((person.aad_object_id or "").lower())
        reached = reach.get(person.id or 0)
        entry: dict[str, Any] = {
            "email": person.email,
            "reach": reached.value if reached else "unknown",
        }
        if install is not None and reached and reached.value.startswith("install_"):
            entry["status"] = install.status
            entry["reason"] = install.reason
            entry["retry_at"] = install.retry_at.isoformat() if install.retry_at else None
        found.append(entry)
    return found


def _print(people: list[dict[str, Any]], installed: InstallResult | None) -> None:
    if installed is not None:
        counts = installed.counts()
        print(
            f"Installed the app for {counts['installed']} people ({counts['already_installed']} "
            f"had it already); {counts['pending']} to try again, {counts['refused']} refused; "
            f"{counts['messages_woken']} waiting messages on their way; "
            f"{counts['graph_requests']} Graph requests ({counts['graph_throttled']} throttled)."
        )
    counts = Counter(p["reach"] for p in people)
    print(
        f"{len(people)} active people: "
        + ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items()))
        + "."
    )
    for person in people:
        if person["reach"] == "reachable":
            continue
        why = (
            f": Graph answered {person['status']}: {person['reason'].rstrip('.')}"
            if person.get("reason")
            else ""
        )
        again = ""
        if person.get("retry_at"):
            when = datetime.fromisoformat(person["retry_at"]).astimezone(UTC)
            again = f"; tried again after {when:%Y-%m-%d %H:%M} UTC"
        state = person["reach"].replace("_", " ")
        print(f"  {state:<16} {person['email']}{why}{again}", file=sys.stdout)
