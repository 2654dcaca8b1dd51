"""The `pqf-bot` command: run the bot, migrate, import the roster and cases, request audits."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.logs import RequestLogger, configure_logging
from bot.progress import TerminalProgress
from bot.settings import Settings, SettingsError, load_settings
from practice.audit_steps import AuditKind
from practice.framework import Framework, FrameworkError, load_framework
from practice.month import Month, MonthError, check_range, longest_range
from storage.files import create_private_file, write_private

log = logging.getLogger("pqf-bot")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETUP = 2


def _configure_logging(settings: Settings) -> None:
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)


def _month(text: str) -> str:
    try:
        return str(Month.parse(text))
    except MonthError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2024-09") from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-09-02") from None


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
        "(see docs/configuration.md).",
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

    calendar = commands.add_parser(
        "calendar", help="show an audit year's months, standards and dates",
        description="Show the audit year starting in September of YEAR: each month's standard, "
        "whether practitioners do a self- or peer audit, when requests go out (first working "
        "day), when audits are due (last working day) and when moderation ends (the tenth "
        "working day of the following month). England bank holidays are not working days.",
    )  # fmt: skip
    calendar.add_argument("--year", type=int, required=True, help="the audit year, e.g. 2023")
    calendar.add_argument("--json", action="store_true", help="print it as JSON")

    dispatch = commands.add_parser(
        "dispatch", help="send a month's audit requests to everyone (or show who gets what)",
        description="Create every audit request of the month by role and quota, and queue "
        "their cards for sending. Safe to run again: requests already made are not made "
        "twice. The bot's scheduler does this itself on the first working day.",
    )  # fmt: skip
    dispatch.add_argument("--month", type=_month, required=True, metavar="YYYY-MM")
    dispatch.add_argument("--dry-run", action="store_true",
                          help="print who would get what, and change nothing")  # fmt: skip
    dispatch.add_argument("--seed", help="the random draw's seed (default: a new one, recorded)")

    jobs = commands.add_parser(
        "run-jobs", help="run the monthly cycle's jobs for a day now",
        description="Run what the scheduler runs each working morning: dispatch, reminders, "
        "managers' digests, month end, moderation sample and close. Each does only what is "
        "due and never twice.",
    )  # fmt: skip
    jobs.add_argument("--today", type=_day, metavar="YYYY-MM-DD",
                      help="the day to run for (default: today)")  # fmt: skip

    outbox = commands.add_parser(
        "outbox", help="show what was sent, is waiting or could not be delivered",
        description="Summarise the outbox of proactive messages (requests, reminders, digests, "
        "moderation, shared outcomes): sent, pending, retrying and undeliverable, for one "
        "audit month or all; with --month, also who could not be reached and why.",
    )  # fmt: skip
    outbox.add_argument("--month", type=_month, metavar="YYYY-MM")
    outbox.add_argument("--json", action="store_true", help="print it as JSON")

    report = commands.add_parser(
        "report", help="write the Practice Quality Board's report for a month or a range",
        description="Write the report to the Practice Quality Board: audits completed, each "
        "criterion's ratings, completion by role and team, feedback, learning actions, "
        "moderation and trends. Drill down with --team, --auditor or --worker. (For "
        "administrators: the command line sees everything.)",
    )  # fmt: skip
    report.add_argument("--month", type=_month, required=True, metavar="YYYY-MM")
    report.add_argument("--to", type=_month, metavar="YYYY-MM", help="last month of a range")
    report.add_argument("--format", choices=["html", "xlsx", "csv", "json"], required=True)
    report.add_argument("--out", type=Path, required=True, metavar="PATH")
    report.add_argument("--team", help="only this team's audits")
    report.add_argument("--auditor", metavar="EMAIL", help="only audits done by this person")
    report.add_argument("--worker", metavar="EMAIL", help="only audits of this person's work")

    actions = commands.add_parser(
        "actions", help="log and update the Board's learning actions",
        description="The learning actions the Practice Quality Board logs from the audits. "
        "They appear in the report until closed.",
    )  # fmt: skip
    action_commands = actions.add_subparsers(dest="action_command", required=True, metavar="ACTION")
    add = action_commands.add_parser("add", help="log a new action")
    add.add_argument("--theme", required=True, help="a standard's number, or a theme in words")
    add.add_argument("--action", required=True, help="what will be done")
    add.add_argument("--owner", required=True, help="who will do it")
    add.add_argument("--due", type=_day, metavar="YYYY-MM-DD")
    add.add_argument("--logged", type=_day, metavar="YYYY-MM-DD", help="default: today")
    listing = action_commands.add_parser("list", help="list the actions not closed")
    listing.add_argument("--all", action="store_true", help="include closed actions")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    change = action_commands.add_parser("update", help="change an action's status or details")
    change.add_argument("id", type=_positive)
    change.add_argument("--status", choices=["open", "in_progress", "done", "closed"])
    change.add_argument("--theme")
    change.add_argument("--action")
    change.add_argument("--owner")
    change.add_argument("--due", type=_day, metavar="YYYY-MM-DD")

    history = commands.add_parser(
        "import-audits", help="load completed audits from before the bot (CSV)",
        description="Import completed audits from the earlier forms: month, standard, "
        "auditor_email, team, optionally kind, audited_worker_email, case_reference, feedback, "
        "feedback_for_report, and one column per criterion id (1.1, 1.2, ...) holding Below, "
        "Meets, Exceeds or N/A. Every row is checked; a file with a bad row imports nothing; "
        "importing again replaces rather than duplicates.",
    )  # fmt: skip
    history.add_argument("file", type=Path, metavar="FILE.csv")

    export = commands.add_parser(
        "audit-export", help="write one completed audit as a web page or PDF",
        description="Write a completed audit (with its moderation, if any) for the "
        "supervision file. (For administrators; staff download their own from Teams.)",
    )  # fmt: skip
    export.add_argument("audit_id", type=_positive, metavar="AUDIT_ID")
    export.add_argument("--format", choices=["html", "pdf"], required=True)
    export.add_argument("--out", type=Path, required=True, metavar="PATH")

    purge = commands.add_parser(
        "purge", help="erase the words of audits older than the retention period",
        description="Erase the evidence, feedback and reasons of audits submitted more than "
        "PQF_RETENTION_MONTHS months ago (ratings stay, for the statistics), and empty sent "
        "messages over a month old. The scheduler does this every working day.",
    )  # fmt: skip
    purge.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")

    accesses = commands.add_parser(
        "access-log", help="show who opened which audit or report",
        description="Show the access log: who opened which audit or report, when and how "
        "(Teams, a link, the command line), newest first.",
    )  # fmt: skip
    accesses.add_argument("--since", type=_day, metavar="YYYY-MM-DD")
    accesses.add_argument("--staff", metavar="EMAIL", help="only this person's accesses")
    accesses.add_argument("--json", action="store_true", help="print it as JSON")

    person = commands.add_parser(
        "export-person", help="write everything held about one member of staff (subject access)",
        description="For a subject access request: write, as JSON, everything the bot holds "
        "about one member of staff - their roster entry, Teams chat, audits they did and of "
        "their work (with answers), moderations, messages sent to them and the access log.",
    )  # fmt: skip
    person.add_argument("email", metavar="EMAIL")
    person.add_argument("--out", type=Path, required=True, metavar="FILE.json")

    commands.add_parser(
        "check-config", help="check the settings, the framework and the database",
        description="Check every setting, the framework file, that the database answers and "
        "that its schema is current, and say exactly what is wrong.",
    )  # fmt: skip

    backup = commands.add_parser(
        "backup", help="copy the SQLite database consistently (PostgreSQL: use pg_dump)",
        description="Write a consistent copy of a SQLite database while the bot runs. For "
        "PostgreSQL, use pg_dump as docs/operations.md describes.",
    )  # fmt: skip
    backup.add_argument("path", type=Path, metavar="PATH")

    package = commands.add_parser(
        "package", help="build the Teams app package (zip) to upload to Teams",
        description="Build the Teams app package from manifest/: the manifest with the bot's "
        "MICROSOFT_APP_ID and the host of PQF_PUBLIC_URL filled in, and the two icons. Upload "
        "it in the Teams admin centre (Manage apps > Upload).",
    )  # fmt: skip
    package.add_argument("--out", type=Path, required=True, metavar="FILE.zip")
    package.add_argument("--version", metavar="X.Y.Z", help="the app version (default: the bot's)")
    package.add_argument(
        "--allow-local-http", action="store_true",
        help="accept an http://localhost public URL (for trying the package locally only)",
    )  # fmt: skip

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


async def _settle_heap(_app: Any) -> None:
    from bot.app import settle_heap

    settle_heap()


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


def _import(kind: str) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        from storage.csv_import import import_cases, import_staff, read_csv_file
        from storage.database import Database

        text, problem = read_csv_file(args.file)
        if text is None:
            print(f"pqf-bot: {problem}", file=sys.stderr)
            return EXIT_FAILED
        framework = _framework(settings)
        progress = TerminalProgress()

        async def go() -> int:
            database = Database(settings.database_url)
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
    from bot.proactive import Delivery, ProactiveSender
    from messages.requests import RequestError, request_audit
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
                adapter=create_adapter(settings),
                database=database,
                app_id=settings.app_id,
                framework=framework,
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


def _calendar(settings: Settings, args: argparse.Namespace) -> int:
    from practice.calendar import audit_year

    audits = audit_year(_framework(settings), args.year)
    if args.json:
        print(json.dumps([a.as_dict() for a in audits], indent=2))
        return EXIT_OK
    print(f"Audit year {args.year}/{(args.year + 1) % 100:02d}")
    print(f"{'month':<8} {'standard':<45} {'practitioners':<14} {'requests':<11} "
          f"{'due':<11} moderation until")  # fmt: skip
    framework = _framework(settings)
    for audit in audits:
        standard = framework.standard(audit.standard)
        title = f"{audit.standard} {standard.title if standard else ''}"
        if audit.additional:
            title += " (additional)"
        kind = f"{audit.practitioner_kind}-audit" if audit.practitioner_kind else "—"
        print(f"{audit.month:<8} {title[:45]:<45} {kind:<14} {audit.requests_on} "
              f" {audit.due_on}  {audit.moderation_until}")  # fmt: skip
    return EXIT_OK


def _cycle(settings: Settings, database: Any) -> Any:
    from scheduler.jobs import Cycle

    return Cycle(
        database=database,
        framework=_framework(settings),
        zone=settings.zone,
        instance=settings.instance_name,
        retention_months=settings.retention_months,
    )


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    from scheduler.jobs import CycleError, dispatch_month
    from storage.database import Database

    progress = TerminalProgress()

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            report = await dispatch_month(
                _cycle(settings, database), args.month, dry_run=args.dry_run, seed=args.seed,
                progress=progress,
            )  # fmt: skip
            names = await _names(database) if args.dry_run else {}
        except CycleError as error:
            print(f"pqf-bot: {error}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            progress.close()
            await database.dispose()
        summary = report.summary
        if args.dry_run and report.plan is not None:
            print(f"Dry run for {args.month} (seed {report.seed}); nothing was changed.")
            for request in report.plan.requests:
                what = (
                    f"case {names['case'].get(request.case_id, request.case_id)}"
                    if request.case_id
                    else f"work of {names['staff'].get(request.subject_id, request.subject_id)}"
                    if request.subject_id and request.kind != "self"
                    else "own case"
                )
                note = f"  ({request.note})" if request.note else ""
                auditor = names["staff"].get(request.auditor_id, request.auditor_id)
                print(f"  {auditor}: standard {request.standard} {request.kind} audit of "
                      f"{what}{note}")  # fmt: skip
            for skipped in report.plan.skipped:
                print(f"  {names['staff'].get(skipped.staff_id, skipped.staff_id)}: "
                      f"skipped ({skipped.reason.replace('_', ' ')})")  # fmt: skip
        elif not report.ran:
            print(f"{args.month} was already dispatched (seed {report.seed}); nothing was changed.")
        else:
            print(f"Dispatched {args.month} (seed {report.seed}).")
        print(f"Requests: {summary.get('requests', 0)} {summary.get('by_kind', {})}; "
              f"skipped: {summary.get('skipped', {})}; not enough to draw: "
              f"{summary.get('short', 0)}.")  # fmt: skip
        return EXIT_OK

    return _run_async(go())


async def _names(database: Any) -> dict[str, dict[int | None, str]]:
    from sqlmodel import select

    from storage.models import CaseRecord, Staff

    async with database.session() as session:
        staff = {s.id: f"{s.name} <{s.email}>" for s in await session.exec(select(Staff))}
        cases = {c.id: c.reference for c in await session.exec(select(CaseRecord))}
    return {"staff": staff, "case": cases}


def _run_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from scheduler.jobs import run_day
    from storage.database import Database

    today = args.today or datetime.now(UTC).astimezone(settings.zone).date()

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            done = await run_day(_cycle(settings, database), today)
        finally:
            await database.dispose()
        print(json.dumps({"today": today.isoformat(), **done}, indent=2, default=str))
        return EXIT_OK

    return _run_async(go())


def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    from sqlmodel import col, select

    from storage import outbox
    from storage.database import Database
    from storage.models import OutboxMessage, Staff

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                total = await outbox.summary(session=session, period=args.month)
                purposes = sorted(
                    set(
                        await session.exec(
                            select(OutboxMessage.purpose).where(
                                col(OutboxMessage.period) == args.month
                            )
                            if args.month
                            else select(OutboxMessage.purpose)
                        )
                    )
                )
                unreachable = (
                    await outbox.undeliverable_recipients(session=session, period=args.month)
                    if args.month
                    else []
                )
                names = {
                    s.id: s.email
                    for s in await session.exec(
                        select(Staff).where(
                            col(Staff.id).in_([u.recipient_id for u in unreachable])
                        )
                    )
                }
        finally:
            await database.dispose()
        report = {
            "month": args.month,
            "sent": total.sent,
            "pending": total.pending,
            "retrying": total.retrying,
            "undeliverable": total.undeliverable,
            "purposes": purposes,
            "unreachable": [
                {"email": names.get(u.recipient_id, u.recipient_id), "reason": u.last_error}
                for u in unreachable
            ],
        }
        if args.json:
            print(json.dumps(report, indent=2))
            return EXIT_OK
        scope = f"for {args.month}" if args.month else "in all"
        print(f"Outbox {scope}: {total.sent} sent, {total.pending} pending, {total.retrying} "
              f"retrying, {total.undeliverable} undeliverable.")  # fmt: skip
        for person in report["unreachable"]:
            print(f"  cannot reach {person['email']}: {person['reason']}")
        return EXIT_OK

    return _run_async(go())


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from bot.reporting import scoped_report
    from practice.report import ReportScope
    from reports.html import render_report_html
    from reports.tabular import render_report_csv, render_report_xlsx, report_to_json
    from storage import access_log, roster
    from storage.database import Database

    last = args.to or args.month
    if last < args.month:
        print("pqf-bot: --to must not be before --month", file=sys.stderr)
        return EXIT_FAILED
    today = datetime.now(UTC).astimezone(settings.zone).date()
    try:
        check_range(
            Month.parse(args.month), Month.parse(last), today=today,
            longest=longest_range(settings.retention_months),
        )  # fmt: skip
    except MonthError as error:
        print(f"pqf-bot: {error}", file=sys.stderr)
        return EXIT_FAILED
    framework = _framework(settings)

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                people: dict[str, int] = {}
                for option in ("auditor", "worker"):
                    email = getattr(args, option)
                    if email:
                        person = await roster.staff_by_email(session=session, email=email)
                        if person is None or person.id is None:
                            print(f"pqf-bot: {email} is not on the roster", file=sys.stderr)
                            return EXIT_FAILED
                        people[option] = person.id
                labels = [
                    f"team {args.team}" if args.team else "",
                    f"audits by {args.auditor}" if args.auditor else "",
                    f"audits of the work of {args.worker}" if args.worker else "",
                ]
                scope = ReportScope(
                    label=", ".join(x for x in labels if x) or "All teams",
                    teams=frozenset({args.team}) if args.team else None,
                    auditor_id=people.get("auditor"),
                    subject_id=people.get("worker"),
                )
                report, names = await scoped_report(
                    session=session, framework=framework, zone=settings.zone,
                    first_month=args.month, last_month=last, scope=scope, as_of=today,
                )  # fmt: skip
                await access_log.record(
                    session=session, staff_id=None, action="cli_report",
                    target=f"{args.month} to {last}, {scope.label}", via="cli",
                )  # fmt: skip
        finally:
            await database.dispose()
        if args.format == "html":
            write_private(
                args.out,
                render_report_html(
                    report,
                    title="Practice quality audits: report to the Practice Quality Board",
                    generated_on=today,
                    names=names,
                ).encode("utf-8"),
            )
        elif args.format == "xlsx":
            write_private(args.out, render_report_xlsx(report, names=names))
        elif args.format == "csv":
            write_private(args.out, render_report_csv(report, names=names))
        else:
            write_private(
                args.out,
                json.dumps(report_to_json(report, names=names), indent=2).encode("utf-8"),
            )
        print(f"Wrote {args.out}: {report.period_label}, {report.scope}, "
              f"{report.total_completed} audits completed.")  # fmt: skip
        return EXIT_OK

    return _run_async(go())


def _actions(settings: Settings, args: argparse.Namespace) -> int:
    from storage.actions import ActionError, add_action, list_actions, update_action
    from storage.database import Database

    today = datetime.now(UTC).astimezone(settings.zone).date()

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                if args.action_command == "add":
                    row = await add_action(
                        session=session, theme=args.theme, action=args.action, owner=args.owner,
                        due_on=args.due, logged_on=args.logged or today,
                    )  # fmt: skip
                    print(f"Logged action {row.id}.")
                elif args.action_command == "update":
                    row = await update_action(
                        session=session, action_id=args.id, today=today, status=args.status,
                        theme=args.theme, action=args.action, owner=args.owner, due_on=args.due,
                    )  # fmt: skip
                    print(f"Updated action {row.id}: {row.status}.")
                else:
                    rows = await list_actions(session=session, include_closed=args.all)
                    if args.json:
                        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
                    elif not rows:
                        print("No learning actions.")
                    for row in rows if not args.json else []:
                        due = f", due {row.due_on}" if row.due_on else ""
                        print(f"{row.id:>4}  [{row.status}] {row.theme}: {row.action} "
                              f"({row.owner}{due})")  # fmt: skip
        except ActionError as error:
            print(f"pqf-bot: {error}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            await database.dispose()
        return EXIT_OK

    return _run_async(go())


def _import_audits(settings: Settings, args: argparse.Namespace) -> int:
    from storage.audit_import import import_audits
    from storage.csv_import import read_csv_file
    from storage.database import Database

    text, problem = read_csv_file(args.file)
    if text is None:
        print(f"pqf-bot: {problem}", file=sys.stderr)
        return EXIT_FAILED
    framework = _framework(settings)
    progress = TerminalProgress()

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                result = await import_audits(
                    session=session, framework=framework, text=text, progress=progress
                )
                if not result.ok:
                    await session.rollback()
        finally:
            progress.close()
            await database.dispose()
        if not result.ok:
            print(f"{args.file}: nothing imported; fix these rows and try again:", file=sys.stderr)
            for error in result.errors:
                print(f"  {error}", file=sys.stderr)
            return EXIT_FAILED
        print(f"Imported {args.file}: {result.created} audits added, {result.updated} replaced.")
        return EXIT_OK

    return _run_async(go())


def _audit_export(settings: Settings, args: argparse.Namespace) -> int:
    from bot.reporting import audit_document
    from reports.audit_export import render_audit_html, render_audit_pdf
    from storage import access_log
    from storage.database import Database

    framework = _framework(settings)

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                document = await audit_document(
                    session=session, framework=framework, zone=settings.zone, audit_id=args.audit_id
                )
                if document is not None:
                    await access_log.record(
                        session=session, staff_id=None, action="cli_audit_export",
                        target=f"audit {args.audit_id}", via="cli",
                    )  # fmt: skip
        finally:
            await database.dispose()
        if document is None or document.submitted_on is None:
            print(f"pqf-bot: there is no completed audit {args.audit_id}", file=sys.stderr)
            return EXIT_FAILED
        if args.format == "pdf":
            write_private(args.out, render_audit_pdf(document))
        else:
            write_private(args.out, render_audit_html(document).encode("utf-8"))
        print(f"Wrote audit {args.audit_id} to {args.out}.")
        return EXIT_OK

    return _run_async(go())


def _purge(settings: Settings, args: argparse.Namespace) -> int:
    from storage.database import Database
    from storage.retention import purge

    progress = TerminalProgress()

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                report = await purge(
                    session=session, now=datetime.now(UTC),
                    retention_months=settings.retention_months, dry_run=args.dry_run,
                    progress=progress,
                )  # fmt: skip
            if not report.dry_run:
                await database.forget_erased()
        finally:
            progress.close()
            await database.dispose()
        verb = "Would erase" if report.dry_run else "Erased"
        print(f"{verb} the words of {report.audits} audits submitted over "
              f"{settings.retention_months} months ago: {report.evidence} pieces of evidence, "
              f"{report.feedback} feedback calls, {report.moderations} moderations; and emptied "
              f"{report.messages} old sent messages. Ratings are kept.")  # fmt: skip
        return EXIT_OK

    return _run_async(go())


def _access_log(settings: Settings, args: argparse.Namespace) -> int:
    from sqlmodel import select

    from storage import access_log, roster
    from storage.database import Database
    from storage.models import Staff

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                staff_id = None
                if args.staff:
                    person = await roster.staff_by_email(session=session, email=args.staff)
                    if person is None:
                        print(f"pqf-bot: {args.staff} is not on the roster", file=sys.stderr)
                        return EXIT_FAILED
                    staff_id = person.id
                since = (
                    datetime.combine(args.since, datetime.min.time(), settings.zone)
                    if args.since
                    else None
                )
                rows = await access_log.entries(session=session, since=since, staff_id=staff_id)
                emails = {s.id: s.email for s in await session.exec(select(Staff))}
        finally:
            await database.dispose()
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

    return _run_async(go())


def _export_person(settings: Settings, args: argparse.Namespace) -> int:
    from storage import access_log, roster
    from storage.database import Database
    from storage.person_export import person_record

    async def go() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                staff = await roster.staff_by_email(session=session, email=args.email)
                if staff is None:
                    print(f"pqf-bot: {args.email} is not on the roster", file=sys.stderr)
                    return EXIT_FAILED
                record = await person_record(session=session, staff=staff)
                await access_log.record(
                    session=session, staff_id=None, action="cli_export_person",
                    target=f"staff {staff.id}", via="cli",
                )  # fmt: skip
        finally:
            await database.dispose()
        write_private(args.out, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        print(f"Wrote everything held about {args.email} to {args.out} "
              f"({len(record['audits_they_did'])} audits they did, "
              f"{len(record['audits_of_their_work'])} of their work).")  # fmt: skip
        return EXIT_OK

    return _run_async(go())


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
        framework = _framework(settings)
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
    import sqlite3

    from storage.database import sync_url

    url = sync_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        print("pqf-bot: for PostgreSQL use pg_dump, e.g.\n"
              "  pg_dump --format=custom --file=pqf-$(date +%F).dump \"$DATABASE_URL\"\n"
              "and restore with pg_restore (see docs/operations.md).", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    if not url.database or not Path(url.database).is_file():
        print(f"pqf-bot: there is no database at {url.database!r} to back up", file=sys.stderr)
        return EXIT_FAILED
    if args.path.exists():
        print(f"pqf-bot: {args.path} exists; choose a new file", file=sys.stderr)
        return EXIT_FAILED
    create_private_file(args.path)  # before SQLite creates it with the umask's mode
    # SQLite's backup API copies a consistent snapshot while the bot keeps writing.
    source = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
    target = sqlite3.connect(args.path)
    try:
        with target:
            source.backup(target)
        check = target.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        source.close()
        target.close()
    if check != "ok":
        print(f"pqf-bot: the copy failed its integrity check: {check}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Backed up {url.database} to {args.path} (integrity check: ok).")
    return EXIT_OK


def _package(settings: Settings, args: argparse.Namespace) -> int:
    from bot.package import PackageError, build_package

    try:
        out = build_package(
            app_id=settings.app_id, public_url=settings.public_url, out=args.out,
            version=args.version, allow_local_http=args.allow_local_http,
        )  # fmt: skip
    except PackageError as error:
        print(f"pqf-bot: {error}", file=sys.stderr)
        return EXIT_BAD_SETUP
    print(f"Wrote the Teams app package {out} for bot {settings.app_id}. Upload it in the Teams "
          "admin centre (Teams apps > Manage apps > Upload new app).")  # fmt: skip
    return EXIT_OK


_HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "migrate": _migrate,
    "import-staff": _import("staff"),
    "import-cases": _import("cases"),
    "framework": _show_framework,
    "request": _request,
    "demo-data": _demo_data,
    "calendar": _calendar,
    "dispatch": _dispatch,
    "run-jobs": _run_jobs,
    "outbox": _outbox,
    "report": _report,
    "actions": _actions,
    "import-audits": _import_audits,
    "audit-export": _audit_export,
    "purge": _purge,
    "access-log": _access_log,
    "export-person": _export_person,
    "check-config": _check_config,
    "backup": _backup,
    "package": _package,
}


if __name__ == "__main__":
    sys.exit(main())
