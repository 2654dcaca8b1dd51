"""The `pqf-bot` command: run the bot, migrate, import the roster and cases, request audits."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.settings import Settings, SettingsError, load_settings
from practice.audit_steps import AuditKind
from practice.framework import Framework, FrameworkError, load_framework

log = logging.getLogger("pqf-bot")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETUP = 2
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every migration step at INFO; the command prints its own summary.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _month(text: str) -> str:
    if not MONTH.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2024-09")
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pqf-bot",
        description="Run Somerset Adult Social Care's Practice Quality Framework audits in "
        "Microsoft Teams. Settings come from the environment and an optional .env file "
        "(see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the bot's web server (Teams posts to /api/messages)",
        description="Run the bot's web server. Teams (or the Agents Playground) posts "
        "activities to http://HOST:PORT/api/messages; /healthz and /readyz report health.",
    )
    serve.add_argument("--host", help="address to listen on (default: PQF_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PQF_PORT)")

    commands.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Apply every database migration not yet applied (safe to run repeatedly).",
    )

    staff = commands.add_parser(
        "import-staff",
        help="create or update the roster from a staff CSV file",
        description="Import the staff roster. Columns: email, name, role, team, and optionally "
        "supervisor_email, aad_object_id, active. Every row is checked first; a file with any "
        "bad row imports nothing. Re-importing updates people matched by email.",
    )
    staff.add_argument("file", type=Path, metavar="FILE.csv")

    cases = commands.add_parser(
        "import-cases",
        help="create or update the case list from a case CSV file",
        description="Import the case list (case references only). Columns: case_reference, "
        "team, status, and optionally allocated_worker_email, closed_on. Every row is checked "
        "first; a file with any bad row imports nothing. Re-importing updates cases matched "
        "by reference.",
    )
    cases.add_argument("file", type=Path, metavar="FILE.csv")

    framework = commands.add_parser(
        "framework",
        help="show the practice standards, criteria, timetable and roles",
        description="Show the Practice Quality Framework the bot is using (PQF_FRAMEWORK_FILE "
        "or the built-in file), after validating it.",
    )
    framework.add_argument("--json", action="store_true", help="print it as JSON")

    request = commands.add_parser(
        "request",
        help="ask one person for one audit and send them the request now",
        description="Create one audit request and send its card to the person's Teams chat now "
        "(or as soon as they install the app). Without --kind, managers get a case audit and "
        "practitioners the self- or peer audit the timetable gives for the month.",
    )
    request.add_argument("--staff", required=True, metavar="EMAIL", help="the auditor")
    request.add_argument(
        "--standard",
        required=True,
        type=_positive,
        metavar="N",
        help="the practice standard, 1 to 10",
    )
    request.add_argument(
        "--kind", choices=[k.value for k in AuditKind], help="sampled (a case audit), self or peer"
    )
    request.add_argument(
        "--case", metavar="REF", help="for a case audit: the case (default: one drawn at random)"
    )
    request.add_argument(
        "--subject",
        metavar="EMAIL",
        help="for a peer audit: whose work (default: a colleague drawn at "
        "random from another team)",
    )
    request.add_argument(
        "--month", type=_month, metavar="YYYY-MM", help="the audit month (default: this month)"
    )

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"pqf-bot: {error}", file=sys.stderr)
        return EXIT_BAD_SETUP
    _configure_logging(settings)
    handler = _HANDLERS[args.command]
    try:
        return handler(settings, args)
    except FrameworkError as error:
        print(f"pqf-bot: invalid framework file: {error}", file=sys.stderr)
        return EXIT_BAD_SETUP
    except DBAPIError as error:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"pqf-bot: cannot use the database at {where} (DATABASE_URL): {error.orig}",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_SETUP
    except KeyboardInterrupt:
        return EXIT_FAILED


def _framework(settings: Settings) -> Framework:
    return load_framework(settings.framework_file)


def _run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coroutine)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app
    from storage.migrate import current_revision, head_revision

    framework = _framework(settings)
    current, head = current_revision(settings.database_url), head_revision(settings.database_url)
    if current != head:
        print(
            f"pqf-bot: the database schema is at {current or 'nothing'}, this release needs "
            f"{head}: run `pqf-bot migrate` first",
            file=sys.stderr,
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
    web.run_app(create_app(settings, framework=framework), host=host, port=port, print=None)
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


def _import(kind: str) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        from storage.csv_import import import_cases, import_staff, read_csv_file
        from storage.database import Database

        text, problem = read_csv_file(args.file)
        if text is None:
            print(f"pqf-bot: {problem}", file=sys.stderr)
            return EXIT_FAILED
        framework = _framework(settings)

        async def go() -> int:
            database = Database(settings.database_url)
            try:
                async with database.session() as session:
                    if kind == "staff":
                        result = await import_staff(session=session, framework=framework, text=text)
                    else:
                        result = await import_cases(session=session, text=text)
                    if not result.ok:
                        await session.rollback()
            finally:
                await database.dispose()
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

        return _run_async(go())

    return run


def _show_framework(settings: Settings, args: argparse.Namespace) -> int:
    framework = _framework(settings)
    if args.json:
        print(json.dumps(framework.as_public_dict(), indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"Practice Quality Framework, version {framework.version}\n")
    for standard in framework.standards:
        print(standard.label)
        for criterion in standard.criteria:
            print(f"  {criterion.id:>5}  {criterion.text}")
        print()
    print("Timetable (audit year from September; none in December or August):")
    for entry in framework.timetable:
        print(
            f"  {entry.month_name:<10} standard {entry.standard:>2}, "
            f"practitioners do a {entry.practitioner_kind}-audit"
        )
    for extra in framework.additional_audits:
        print(
            f"  {extra.month} also: standard {extra.standard} ({extra.title}) for "
            f"{', '.join(extra.roles)}"
        )
    print("\nMonthly audits by role:")
    for role in framework.roles:
        print(f"  {role.code:<5} {role.monthly_audits}  {role.title} ({role.audit_kind})")
    return EXIT_OK


def _request(settings: Settings, args: argparse.Namespace) -> int:
    from bot.adapter import create_adapter
    from bot.audit_requests import RequestError, request_audit
    from bot.proactive import Delivery, ProactiveSender
    from storage.database import Database

    framework = _framework(settings)
    now = datetime.now(UTC).astimezone(settings.zone)
    month = args.month or f"{now:%Y-%m}"

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            try:
                async with database.session() as session:
                    requested = await request_audit(
                        session=session,
                        framework=framework,
                        auditor_email=args.staff,
                        standard_number=args.standard,
                        month=month,
                        today=now.date(),
                        kind=AuditKind(args.kind) if args.kind else None,
                        case_reference=args.case,
                        subject_email=args.subject,
                    )
            except RequestError as error:
                print(f"pqf-bot: cannot request the audit: {error}", file=sys.stderr)
                return EXIT_FAILED
            audit = requested.audit
            print(
                f"Created audit request {audit.id}: standard {audit.standard}, "
                f"{AuditKind(audit.kind).description}, {audit.month}, due {audit.due_on}."
            )
            sender = ProactiveSender(
                adapter=create_adapter(settings), database=database, app_id=settings.app_id
            )
            assert requested.message.id is not None
            result = await sender.deliver(requested.message.id)
        finally:
            await database.dispose()
        if result.outcome is Delivery.SENT:
            print(f"Sent the request card to {requested.auditor.email}.")
            return EXIT_OK
        if result.outcome is Delivery.NOT_INSTALLED:
            print(
                f"{requested.auditor.email} has not installed the bot in Teams yet; the request "
                "is saved and they will get it when they do."
            )
            return EXIT_OK
        print(
            f"pqf-bot: the request is saved but the card could not be sent ({result.detail}); "
            "they will see it under 'my audits'.",
            file=sys.stderr,
        )
        return EXIT_FAILED

    return _run_async(go())


def _demo_data(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo_data import load_demo_data, playground_config_yaml
    from storage.database import Database

    framework = _framework(settings)
    if args.playground_config:
        try:
            config = playground_config_yaml(args.as_user)
        except ValueError as error:
            print(f"pqf-bot: {error}", file=sys.stderr)
            return EXIT_FAILED
    today = datetime.now(UTC).astimezone(settings.zone).date()

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                staff, cases, requests = await load_demo_data(
                    session=session, framework=framework, today=today
                )
        finally:
            await database.dispose()
        print(
            f"Demo roster: {staff.created} added, {staff.updated + staff.unchanged} already "
            f"there. Demo cases: {cases.created} added, {cases.updated + cases.unchanged} "
            f"already there. Audit requests created: {len(requests)}."
        )
        return EXIT_OK

    status = _run_async(go())
    if status == EXIT_OK and args.playground_config:
        args.playground_config.write_text(config, encoding="utf-8")
        print(f"Wrote {args.playground_config} (signed in as {args.as_user}).")
    return status


_HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "migrate": _migrate,
    "import-staff": _import("staff"),
    "import-cases": _import("cases"),
    "framework": _show_framework,
    "request": _request,
    "demo-data": _demo_data,
}


if __name__ == "__main__":
    sys.exit(main())
