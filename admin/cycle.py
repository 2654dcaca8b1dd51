"""The monthly cycle by hand: the framework, its calendar, requests, dispatch, jobs, outbox.

`framework` and `calendar` show what the cycle asks for and when; `request` asks one person
now; `dispatch` and `run-jobs` do what the scheduler does, for a month or a day; `outbox`
shows what was sent, what waits and who could not be reached.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from admin.common import (
    EXIT_FAILED,
    EXIT_OK,
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
from practice.audit_steps import AuditKind

if TYPE_CHECKING:
    from scheduler.jobs import Cycle
    from storage.database import Database


def add_commands(commands: Commands) -> None:
    """Add `framework`, `request`, `calendar`, `dispatch`, `run-jobs` and `outbox`."""
    framework = commands.add_parser(
        "framework",
        help="show the practice standards, criteria, timetable and roles",
        description="Show the Practice Quality Framework the bot is using (PQF_FRAMEWORK_FILE "
        "or the built-in file), after validating it.",
    )
    framework.add_argument("--json", action="store_true", help="print it as JSON")
    framework.set_defaults(handler=_show_framework)

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
        type=parse_positive,
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
        "--month", type=parse_month, metavar="YYYY-MM", help="the audit month (default: this month)"
    )
    request.set_defaults(handler=_request)

    calendar = commands.add_parser(
        "calendar", help="show an audit year's months, standards and dates",
        description="Show the audit year starting in September of YEAR: each month's standard, "
        "whether practitioners do a self- or peer audit, when requests go out (first working "
        "day), when audits are due (last working day) and when moderation ends (the tenth "
        "working day of the following month). England bank holidays are not working days.",
    )  # fmt: skip
    calendar.add_argument("--year", type=int, required=True, help="the audit year, e.g. 2023")
    calendar.add_argument("--json", action="store_true", help="print it as JSON")
    calendar.set_defaults(handler=_calendar)

    dispatch = commands.add_parser(
        "dispatch", help="send a month's audit requests to everyone (or show who gets what)",
        description="Create every audit request of the month by role and quota, and queue "
        "their cards for sending. Safe to run again: requests already made are not made "
        "twice. The bot's scheduler does this itself on the first working day.",
    )  # fmt: skip
    dispatch.add_argument("--month", type=parse_month, required=True, metavar="YYYY-MM")
    dispatch.add_argument("--dry-run", action="store_true",
                          help="print who would get what, and change nothing")  # fmt: skip
    dispatch.add_argument("--seed", help="the random draw's seed (default: a new one, recorded)")
    dispatch.set_defaults(handler=_dispatch)

    jobs = commands.add_parser(
        "run-jobs", help="run the monthly cycle's jobs for a day now",
        description="Run what the scheduler runs each working morning: dispatch, reminders, "
        "managers' digests, month end, moderation sample and close. Each does only what is "
        "due and never twice.",
    )  # fmt: skip
    jobs.add_argument("--today", type=parse_day, metavar="YYYY-MM-DD",
                      help="the day to run for (default: today)")  # fmt: skip
    jobs.set_defaults(handler=_run_jobs)

    outbox = commands.add_parser(
        "outbox", help="show what was sent, is waiting or could not be delivered",
        description="Summarise the outbox of proactive messages (requests, reminders, digests, "
        "moderation, shared outcomes): sent, pending, retrying and undeliverable, for one "
        "audit month or all; with --month, also who could not be reached and why.",
    )  # fmt: skip
    outbox.add_argument("--month", type=parse_month, metavar="YYYY-MM")
    outbox.add_argument("--json", action="store_true", help="print it as JSON")
    outbox.set_defaults(handler=_outbox)


def _show_framework(settings: Settings, args: argparse.Namespace) -> int:
    framework = framework_of(settings)
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
    from delivery.outcomes import Delivery
    from delivery.sender import OutboxSender
    from messages.request_cards import outbox_renderer
    from messages.requests import RequestError, request_audit

    framework = framework_of(settings)
    now = datetime.now(UTC).astimezone(settings.zone)
    month = args.month or f"{now:%Y-%m}"

    async def go(database: Database) -> int:
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
            complain(f"cannot request the audit: {error}")
            return EXIT_FAILED
        audit = requested.audit
        print(
            f"Created audit request {audit.id}: standard {audit.standard}, "
            f"{AuditKind(audit.kind).description}, {audit.month}, due {audit.due_on}."
        )
        sender = OutboxSender(
            adapter=create_adapter(settings),
            database=database,
            app_id=settings.app_id,
            render=outbox_renderer(database=database, framework=framework),
        )
        assert requested.message.id is not None
        result = await sender.deliver(requested.message.id)
        if result.outcome is Delivery.SENT:
            print(f"Sent the request card to {requested.auditor.email}.")
            return EXIT_OK
        if result.outcome is Delivery.NOT_INSTALLED:
            print(
                f"{requested.auditor.email} has not installed the bot in Teams yet; the request "
                "is saved and they will get it when they do."
            )
            return EXIT_OK
        complain(
            f"the request is saved but the card could not be sent ({result.detail}); "
            "they will see it under 'my audits'."
        )
        return EXIT_FAILED

    return run_with_database(settings, go)


def _calendar(settings: Settings, args: argparse.Namespace) -> int:
    from practice.calendar import audit_year

    audits = audit_year(framework_of(settings), args.year)
    if args.json:
        print(json.dumps([a.as_dict() for a in audits], indent=2))
        return EXIT_OK
    print(f"Audit year {args.year}/{(args.year + 1) % 100:02d}")
    print(f"{'month':<8} {'standard':<45} {'practitioners':<14} {'requests':<11} "
          f"{'due':<11} moderation until")  # fmt: skip
    framework = framework_of(settings)
    for audit in audits:
        standard = framework.standard(audit.standard)
        title = f"{audit.standard} {standard.title if standard else ''}"
        if audit.additional:
            title += " (additional)"
        kind = f"{audit.practitioner_kind}-audit" if audit.practitioner_kind else "—"
        print(f"{audit.month:<8} {title[:45]:<45} {kind:<14} {audit.requests_on} "
              f" {audit.due_on}  {audit.moderation_until}")  # fmt: skip
    return EXIT_OK


def _cycle(settings: Settings, database: Database) -> Cycle:
    from scheduler.jobs import Cycle

    return Cycle(
        database=database,
        framework=framework_of(settings),
        zone=settings.zone,
        instance=settings.instance_name,
        retention_months=settings.retention_months,
        held=settings.held_retention,
    )


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    from scheduler.jobs import CycleError, dispatch_month

    progress = TerminalProgress()

    async def go(database: Database) -> int:
        try:
            report = await dispatch_month(
                _cycle(settings, database), args.month, dry_run=args.dry_run, seed=args.seed,
                progress=progress,
            )  # fmt: skip
            names = await _names(database) if args.dry_run else {}
        except CycleError as error:
            complain(str(error))
            return EXIT_FAILED
        finally:
            progress.close()
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

    return run_with_database(settings, go)


async def _names(database: Database) -> dict[str, dict[int | None, str]]:
    from storage import roster

    async with database.session() as session:
        staff = {s.id: f"{s.name} <{s.email}>" for s in await roster.all_staff(session=session)}
        references = await roster.case_references(session=session)
    cases: dict[int | None, str] = {case_id: ref for case_id, ref in references.items()}
    return {"staff": staff, "case": cases}


def _run_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from scheduler.jobs import run_day

    today = args.today or datetime.now(UTC).astimezone(settings.zone).date()

    async def go(database: Database) -> int:
        done = await run_day(_cycle(settings, database), today)
        print(json.dumps({"today": today.isoformat(), **done}, indent=2, default=str))
        return EXIT_OK

    return run_with_database(settings, go)


def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    from storage import outbox, roster

    async def go(database: Database) -> int:
        async with database.session() as session:
            total = await outbox.summary(session=session, period=args.month)
            purposes = await outbox.purposes(session=session, period=args.month)
            unreachable = (
                await outbox.undeliverable_recipients(session=session, period=args.month)
                if args.month
                else []
            )
            staff = await roster.staff_by_ids(
                session=session, ids=[u.recipient_id for u in unreachable]
            )
            names = {staff_id: person.email for staff_id, person in staff.items()}
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

    return run_with_database(settings, go)
