"""Keep the bot in good order: retention, access log, subject access, setup check, backups.

`purge`, `access-log`, `export-person`, `check-config` and `backup`; docs/operations.md says
when each is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from admin.common import (
    EXIT_BAD_SETUP,
    EXIT_FAILED,
    EXIT_OK,
    Commands,
    complain,
    framework_of,
    parse_day,
    run_with_database,
)
from admin.progress import TerminalProgress
from bot.settings import Settings
from practice.framework import FrameworkError
from storage.files import write_private

if TYPE_CHECKING:
    from storage.database import Database


def add_commands(commands: Commands) -> None:
    """Add `purge`, `access-log`, `export-person`, `check-config` and `backup`."""
    purge = commands.add_parser(
        "purge", help="erase the words of audits older than the retention period",
        description="Erase the evidence, feedback and reasons of audits submitted more than "
        "PQF_RETENTION_MONTHS months ago (ratings stay, for the statistics), empty sent "
        "messages over a month old, and erase what a roster sync holds of people it could not "
        "place once no sync has confirmed it for PQF_GRAPH_HELD_DAYS days (all of it when "
        "Microsoft Graph is not set up). The scheduler does this every working day.",
    )  # fmt: skip
    purge.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    purge.set_defaults(handler=_purge)

    accesses = commands.add_parser(
        "access-log", help="show who opened which audit or report",
        description="Show the access log: who opened which audit or report, when and how "
        "(Teams, a link, the command line), newest first.",
    )  # fmt: skip
    accesses.add_argument("--since", type=parse_day, metavar="YYYY-MM-DD")
    accesses.add_argument("--staff", metavar="EMAIL", help="only this person's accesses")
    accesses.add_argument("--json", action="store_true", help="print it as JSON")
    accesses.set_defaults(handler=_access_log)

    person = commands.add_parser(
        "export-person", help="write everything held about one member of staff (subject access)",
        description="For a subject access request: write, as JSON, everything the bot holds "
        "about one member of staff - their roster entry, Teams chat, audits they did and of "
        "their work (with answers), moderations, messages sent to them and the access log.",
    )  # fmt: skip
    person.add_argument("email", metavar="EMAIL")
    person.add_argument("--out", type=Path, required=True, metavar="FILE.json")
    person.set_defaults(handler=_export_person)

    check = commands.add_parser(
        "check-config", help="check the settings, the framework and the database",
        description="Check every setting, the framework file, that the database answers and "
        "that its schema is current, and say exactly what is wrong.",
    )  # fmt: skip
    check.set_defaults(handler=_check_config)

    backup = commands.add_parser(
        "backup", help="copy the SQLite database consistently (PostgreSQL: use pg_dump)",
        description="Write a consistent copy of a SQLite database while the bot runs. For "
        "PostgreSQL, use pg_dump as docs/operations.md describes.",
    )  # fmt: skip
    backup.add_argument("path", type=Path, metavar="PATH")
    backup.set_defaults(handler=_backup)


def _purge(settings: Settings, args: argparse.Namespace) -> int:
    from storage.retention import purge

    progress = TerminalProgress()

    async def go(database: Database) -> int:
        try:
            async with database.session() as session:
                report = await purge(
                    session=session, now=datetime.now(UTC),
                    retention_months=settings.retention_months, dry_run=args.dry_run,
                    progress=progress, held=settings.held_retention,
                )  # fmt: skip
            if not report.dry_run:
                await database.forget_erased()
        finally:
            progress.close()
        verb = "Would erase" if report.dry_run else "Erased"
        print(f"{verb} the words of {report.audits} audits submitted over "
              f"{settings.retention_months} months ago: {report.evidence} pieces of evidence, "
              f"{report.feedback} feedback calls, {report.moderations} moderations; and emptied "
              f"{report.messages} old sent messages. Ratings are kept.")  # fmt: skip
        held = settings.held_retention
        why = (
            f"not confirmed by a sync for {held.days} days (PQF_GRAPH_HELD_DAYS)."
            if held.synced
            else "as the roster is not synced from Microsoft Graph."
        )
        print(f"{verb} {report.held} records of people a roster sync could not place, {why}")
        return EXIT_OK

    return run_with_database(settings, go)


def _access_log(settings: Settings, args: argparse.Namespace) -> int:
    from storage import access_log, roster

    async def go(database: Database) -> int:
        async with database.session() as session:
            staff_id = None
            if args.staff:
                person = await roster.staff_by_email(session=session, email=args.staff)
                if person is None:
                    complain(f"{args.staff} is not on the roster")
                    return EXIT_FAILED
                staff_id = person.id
            since = (
                datetime.combine(args.since, datetime.min.time(), settings.zone)
                if args.since
                else None
            )
            rows = await access_log.entries(session=session, since=since, staff_id=staff_id)
            emails = {s.id: s.email for s in await roster.all_staff(session=session)}
        records = [
            {"at": r.at.astimezone(settings.zone).isoformat(timespec="seconds"),
             "who": emails.get(r.staff_id, "administrator (command line)") if r.staff_id else
             "administrator (command line)", "action": r.action, "what": r.target, "via": r.via}
            for r in rows
        ]  # fmt: skip
        if args.json:
            print(json.dumps(records, indent=2))
        elif not records:
            print("No accesses recorded.")
        for record in [] if args.json else records:
            print(f"{record['at']}  {record['who']:<35} {record['action']:<18} "
                  f"{record['what']}  ({record['via']})")  # fmt: skip
        return EXIT_OK

    return run_with_database(settings, go)


def _export_person(settings: Settings, args: argparse.Namespace) -> int:
    from storage import access_log, roster
    from storage.person_export import held_person_record, person_record

    async def go(database: Database) -> int:
        async with database.session() as session:
            staff = await roster.staff_by_email(session=session, email=args.email)
            if staff is not None:
                record = await person_record(session=session, staff=staff)
                target = f"staff {staff.id}"
            else:
                # Not on the roster, but a roster sync may hold Graph's record of them.
                held = await held_person_record(session=session, email=args.email)
                if held is None:
                    complain(f"{args.email} is not on the roster, and no roster sync holds them")
                    return EXIT_FAILED
                record = held
                target = f"held by roster sync {record['held_by_roster_sync'][0]['aad_object_id']}"
            await access_log.record(
                session=session, staff_id=None, action="cli_export_person",
                target=target, via="cli",
            )  # fmt: skip
        write_private(args.out, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        print(f"Wrote everything held about {args.email} to {args.out} "
              f"({len(record['audits_they_did'])} audits they did, "
              f"{len(record['audits_of_their_work'])} of their work).")  # fmt: skip
        return EXIT_OK

    return run_with_database(settings, go)


def _check_config(settings: Settings, _args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from storage.migrate import current_revision, head_revision

    problems: list[str] = []
    print(f"Settings: valid ({settings.environment}).")
    if settings.is_development and not settings.app_id:
        print("  note: no MICROSOFT_APP_ID: requests are not authenticated (development only)")
    if not settings.tenants:
        print("  note: no MICROSOFT_APP_TENANT_ID or PQF_ALLOWED_TENANTS: any tenant is accepted")
    print(f"  links start {settings.links_base} and work for {settings.link_minutes} minutes")
    if settings.metrics_port is not None:
        print(f"  metrics: /metrics on port {settings.metrics_port} only")
    elif settings.metrics_token:
        print("  metrics: /metrics needs PQF_METRICS_TOKEN as a bearer token")
    elif not settings.metrics_on_main_listener:
        print("  note: /metrics is off: set PQF_METRICS_PORT or PQF_METRICS_TOKEN to serve it")
    try:
        framework = framework_of(settings)
        print(f"Framework: {framework.version}, {len(framework.standards)} standards.")
    except FrameworkError as error:
        problems.append(f"framework: {error}")
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        current = current_revision(settings.database_url)
        head = head_revision(settings.database_url)
        if current == head:
            print(f"Database: {where} answers; schema current ({current}).")
        else:
            problems.append(f"database: schema at {current or 'nothing'}, needs {head}: "
                            "run `pqf-bot migrate`")  # fmt: skip
    except DBAPIError as error:
        problems.append(f"database: cannot reach {where}: {error.orig}")
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    if problems:
        return EXIT_BAD_SETUP
    print("All checks passed.")
    return EXIT_OK


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from storage.backup import backup_sqlite
    from storage.database import sync_url

    url = sync_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        complain("for PostgreSQL use pg_dump, e.g.\n"
                 "  pg_dump --format=custom --file=pqf-$(date +%F).dump \"$DATABASE_URL\"\n"
                 "and restore with pg_restore (see docs/operations.md).")  # fmt: skip
        return EXIT_FAILED
    if not url.database or not Path(url.database).is_file():
        complain(f"there is no database at {url.database!r} to back up")
        return EXIT_FAILED
    if args.path.exists():
        complain(f"{args.path} exists; choose a new file")
        return EXIT_FAILED
    check = backup_sqlite(url.database, args.path)
    if check != "ok":
        complain(f"the copy failed its integrity check: {check}")
        return EXIT_FAILED
    print(f"Backed up {url.database} to {args.path} (integrity check: ok).")
    return EXIT_OK
