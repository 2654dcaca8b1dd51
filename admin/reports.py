"""The Practice Quality Board's report and learning actions, past audits and audit exports.

`report`, `actions`, `import-audits` (audits from the earlier forms) and `audit-export` (one
completed audit for the supervision file).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from admin.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Commands,
    complain,
    framework_of,
    parse_day,
    parse_month,
    parse_positive,
    run_with_database,
)
from admin.progress import TerminalProgress
from bot.settings import Settings
from practice.month import Month, MonthError, check_range, longest_range
from storage.files import write_private

if TYPE_CHECKING:
    from storage.database import Database


def add_commands(commands: Commands) -> None:
    """Add `report`, `actions`, `import-audits` and `audit-export`."""
    report = commands.add_parser(
        "report", help="write the Practice Quality Board's report for a month or a range",
        description="Write the report to the Practice Quality Board: audits completed, each "
        "criterion's ratings, completion by role and team, feedback, learning actions, "
        "moderation and trends. Drill down with --team, --auditor or --worker. (For "
        "administrators: the command line sees everything.)",
    )  # fmt: skip
    report.add_argument("--month", type=parse_month, required=True, metavar="YYYY-MM")
    report.add_argument("--to", type=parse_month, metavar="YYYY-MM", help="last month of a range")
    report.add_argument("--format", choices=["html", "xlsx", "csv", "json"], required=True)
    report.add_argument("--out", type=Path, required=True, metavar="PATH")
    report.add_argument("--team", help="only this team's audits")
    report.add_argument("--auditor", metavar="EMAIL", help="only audits done by this person")
    report.add_argument("--worker", metavar="EMAIL", help="only audits of this person's work")
    report.set_defaults(handler=_report)

    actions = commands.add_parser(
        "actions", help="log and update the Board's learning actions",
        description="The learning actions the Practice Quality Board logs from the audits. "
        "They appear in the report until closed.",
    )  # fmt: skip
    actions.set_defaults(handler=_actions)
    action_commands = actions.add_subparsers(dest="action_command", required=True, metavar="ACTION")
    add = action_commands.add_parser("add", help="log a new action")
    add.add_argument("--theme", required=True, help="a standard's number, or a theme in words")
    add.add_argument("--action", required=True, help="what will be done")
    add.add_argument("--owner", required=True, help="who will do it")
    add.add_argument("--due", type=parse_day, metavar="YYYY-MM-DD")
    add.add_argument("--logged", type=parse_day, metavar="YYYY-MM-DD", help="default: today")
    listing = action_commands.add_parser("list", help="list the actions not closed")
    listing.add_argument("--all", action="store_true", help="include closed actions")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    change = action_commands.add_parser("update", help="change an action's status or details")
    change.add_argument("id", type=parse_positive)
    change.add_argument("--status", choices=["open", "in_progress", "done", "closed"])
    change.add_argument("--theme")
    change.add_argument("--action")
    change.add_argument("--owner")
    change.add_argument("--due", type=parse_day, metavar="YYYY-MM-DD")

    history = commands.add_parser(
        "import-audits", help="load completed audits from before the bot (CSV)",
        description="Import completed audits from the earlier forms: month, standard, "
        "auditor_email, team, optionally kind, audited_worker_email, case_reference, feedback, "
        "feedback_for_report, ratings_lost, and one column per criterion id (1.1, 1.2, ...) "
        "holding Below, Meets, Exceeds or N/A. A row with ratings_lost yes and every rating "
        "blank is an audit counted as completed whose ratings were lost: it counts in audits "
        "completed and nowhere else. Every row is checked; a file with a bad row imports "
        "nothing; importing again replaces rather than duplicates.",
    )  # fmt: skip
    history.add_argument("file", type=Path, metavar="FILE.csv")
    history.set_defaults(handler=_import_audits)

    export = commands.add_parser(
        "audit-export", help="write one completed audit as a web page or PDF",
        description="Write a completed audit (with its moderation, if any) for the "
        "supervision file. (For administrators; staff download their own from Teams.)",
    )  # fmt: skip
    export.add_argument("audit_id", type=parse_positive, metavar="AUDIT_ID")
    export.add_argument("--format", choices=["html", "pdf"], required=True)
    export.add_argument("--out", type=Path, required=True, metavar="PATH")
    export.set_defaults(handler=_audit_export)


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from practice.report import ReportScope
    from reports.html import render_report_html
    from reports.service import Asker, ReportService, report_and_names
    from reports.tabular import render_report_csv, render_report_xlsx, report_to_json
    from storage import roster
    from storage.models import utc_now
    from storage.reporting import known_teams

    last = args.to or args.month
    if last < args.month:
        complain("--to must not be before --month")
        return EXIT_FAILED
    today = utc_now().astimezone(settings.zone).date()
    try:
        check_range(
            Month.parse(args.month), Month.parse(last), today=today,
            longest=longest_range(settings.retention_months),
        )  # fmt: skip
    except MonthError as error:
        complain(str(error))
        return EXIT_FAILED
    framework = framework_of(settings)

    async def go(database: Database) -> int:
        async with database.session() as session:
            if args.team and args.team not in await known_teams(session=session):
                complain(
                    f"team {args.team!r} is not a team of any audit or anyone on the roster "
                    "(names are exact, as in the roster's team column)"
                )
                return EXIT_USAGE
            people: dict[str, int] = {}
            for option in ("auditor", "worker"):
                email = getattr(args, option)
                if email:
                    person = await roster.staff_by_email(session=session, email=email)
                    if person is None or person.id is None:
                        complain(f"{email} is not on the roster")
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
        reports = ReportService(
            database=database, framework=framework, zone=settings.zone, clock=utc_now
        )
        made = await reports.report(
            Asker(None, action="cli_report", via="cli"),
            report_and_names,
            as_of=today,
            months=(args.month, last),
            scope=scope,
        )
        assert made is not None  # the command line gives its scope
        report, names = made.made
        if args.format == "html":
            # The live figures of a month whose pack is published: what changed since.
            pack = await reports.published_pack(None, args.month, last) if scope.whole else None
            since = await reports.since_publication(pack, today) if pack else ""
            write_private(
                args.out,
                render_report_html(
                    report,
                    title="Practice quality audits: report to the Practice Quality Board",
                    generated_on=today,
                    names=names,
                    since=since,
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

    return run_with_database(settings, go)


def _actions(settings: Settings, args: argparse.Namespace) -> int:
    from storage.actions import ActionError, add_action, list_actions, update_action
    from storage.models import as_json

    today = datetime.now(UTC).astimezone(settings.zone).date()

    async def go(database: Database) -> int:
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
                        print(json.dumps([as_json(r) for r in rows], indent=2))
                    elif not rows:
                        print("No learning actions.")
                    for row in rows if not args.json else []:
                        due = f", due {row.due_on}" if row.due_on else ""
                        print(f"{row.id:>4}  [{row.status}] {row.theme}: {row.action} "
                              f"({row.owner}{due})")  # fmt: skip
        except ActionError as error:
            complain(str(error))
            return EXIT_FAILED
        return EXIT_OK

    return run_with_database(settings, go)


def _import_audits(settings: Settings, args: argparse.Namespace) -> int:
    from storage.audit_import import import_audits
    from storage.csv_import import read_csv_file

    text, problem = read_csv_file(args.file)
    if text is None:
        complain(str(problem))
        return EXIT_FAILED
    framework = framework_of(settings)
    progress = TerminalProgress()

    async def go(database: Database) -> int:
        try:
            async with database.session() as session:
                result = await import_audits(
                    session=session, framework=framework, text=text, progress=progress
                )
                if not result.ok:
                    await session.rollback()
        finally:
            progress.close()
        if not result.ok:
            print(f"{args.file}: nothing imported; fix these rows and try again:", file=sys.stderr)
            for error in result.errors:
                print(f"  {error}", file=sys.stderr)
            return EXIT_FAILED
        print(f"Imported {args.file}: {result.created} audits added, {result.updated} replaced.")
        return EXIT_OK

    return run_with_database(settings, go)


def _audit_export(settings: Settings, args: argparse.Namespace) -> int:
    from reports.audit_export import render_audit_html, render_audit_pdf
    from reports.service import audit_document
    from storage import access_log

    framework = framework_of(settings)

    async def go(database: Database) -> int:
        async with database.session() as session:
            document = await audit_document(
                session=session, framework=framework, zone=settings.zone, audit_id=args.audit_id
            )
            if document is not None:
                await access_log.record(
                    session=session, staff_id=None, action="cli_audit_export",
                    target=f"audit {args.audit_id}", via="cli",
                )  # fmt: skip
        if document is None or document.submitted_on is None:
            complain(f"there is no completed audit {args.audit_id}")
            return EXIT_FAILED
        if args.format == "pdf":
            write_private(args.out, render_audit_pdf(document))
        else:
            write_private(args.out, render_audit_html(document).encode("utf-8"))
        print(f"Wrote audit {args.audit_id} to {args.out}.")
        return EXIT_OK

    return run_with_database(settings, go)
