"""`board-pack`: prepare, publish and show the Board's pack for a month at the command line.

`shortlist` suggests quotes; `publish` freezes the month's figures with the quotes chosen, a
summary and a commentary per standard as the next numbered version, with a reason; `show`
writes a published version as it was published (`pdf`: as an A4 PDF); `versions` lists them.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from admin.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Commands,
    complain,
    framework_of,
    parse_month,
    parse_positive,
    run_with_database,
)
from bot.settings import Settings
from practice.board_pack import PackError, PackWords, shortlist
from practice.month import month_label

if TYPE_CHECKING:
    from practice.report import Report
    from storage.database import Database
    from storage.models import BoardPack


def add_commands(commands: Commands) -> None:
    """Add `board-pack` and its commands."""
    pack = commands.add_parser(
        "board-pack", help="prepare and publish the Board's pack for a month",
        description="The Board's pack: the month's report with a handful of chosen quotes, a "
        "summary and a commentary per standard, published as a numbered version that later "
        "imports, late submissions and purges never change.",
    )  # fmt: skip
    verbs = pack.add_subparsers(dest="pack_command", required=True, metavar="COMMAND")
    suggest = verbs.add_parser("shortlist", help="suggest quotes for the month's pack")
    suggest.add_argument("--month", type=parse_month, required=True, metavar="YYYY-MM")
    suggest.set_defaults(handler=_shortlist)

    publish = verbs.add_parser("publish", help="publish the month's pack as its next version")
    publish.add_argument("--month", type=parse_month, required=True, metavar="YYYY-MM")
    publish.add_argument("--reason", required=True, help="why this version is published")
    publish.add_argument(
        "--quotes", metavar="ID,ID", help="the audits whose quotes to show (default: shortlist)"
    )
    publish.add_argument("--summary", default="", help="the Board's summary (plain text)")
    publish.add_argument(
        "--commentary", action="append", default=[], metavar="STANDARD=TEXT",
        help="commentary on a standard's table (repeat for each)",
    )  # fmt: skip
    publish.set_defaults(handler=_publish)

    show = verbs.add_parser("show", help="write a published version of the month's pack")
    show.add_argument("--month", type=parse_month, required=True, metavar="YYYY-MM")
    show.add_argument("--version", type=parse_positive, help="the version (default: latest)")
    show.add_argument("--format", choices=["html", "json"], default="html")
    show.add_argument("--out", type=Path, required=True, metavar="PATH")
    show.set_defaults(handler=_show)

    pdf = verbs.add_parser("pdf", help="write a published version of the month's pack as a PDF")
    pdf.add_argument("--month", type=parse_month, required=True, metavar="YYYY-MM")
    pdf.add_argument("--version", type=parse_positive, help="the version (default: latest)")
    pdf.add_argument("--out", type=Path, required=True, metavar="PATH")
    pdf.set_defaults(handler=_pdf)

    versions = verbs.add_parser("versions", help="list the month's published versions")
    versions.add_argument("--month", type=parse_month, required=True, metavar="YYYY-MM")
    versions.set_defaults(handler=_versions)


async def _month_report(
    settings: Settings, database: Database, month: str
) -> tuple[Report, dict[int, str]]:
    from practice.report import ReportScope
    from reports.service import Asker, ReportService, report_and_names
    from storage.models import utc_now

    reports = ReportService(
        database=database, framework=framework_of(settings), zone=settings.zone, clock=utc_now
    )
    made = await reports.report(
        Asker(None, action="cli_report", via="cli"), report_and_names,
        as_of=reports.today(), months=(month, month), scope=ReportScope(),
    )  # fmt: skip
    assert made is not None  # the command line sees everything
    return made.made


def _shortlist(settings: Settings, args: argparse.Namespace) -> int:
    async def go(database: Database) -> int:
        report, names = await _month_report(settings, database, args.month)
        suggested = shortlist(report.feedback, names.values())
        if not suggested:
            print(f"No quotes marked suitable for reporting in {month_label(args.month)}.")
        for quote in suggested:
            print(f"{quote.audit_id}\tStandard {quote.standard}\t{quote.team}\t{quote.text}")
        return EXIT_OK

    return run_with_database(settings, go)


def _words(args: argparse.Namespace, report: Report, names: dict[int, str]) -> PackWords:
    """Return the Board's words from the arguments; raise PackError naming what is wrong."""
    suitable = {quote.audit_id for quote in report.feedback}
    if args.quotes:
        try:
            ids = tuple(int(part) for part in args.quotes.split(",") if part.strip())
        except ValueError:
            raise PackError(f"--quotes {args.quotes!r} is not a list of audit ids") from None
        unknown = [i for i in ids if i not in suitable]
        if unknown:
            raise PackError(f"audits {unknown} have no quote marked suitable in this month")
    else:
        ids = tuple(q.audit_id for q in shortlist(report.feedback, names.values()))
    commentary: dict[int, str] = {}
    for given in args.commentary:
        standard, _, text = given.partition("=")
        if not standard.strip().isdigit() or not text.strip():
            raise PackError(f"--commentary {given!r} is not STANDARD=TEXT")
        if not any(t.standard == int(standard) for t in report.tables):
            raise PackError(f"standard {standard.strip()} has no table in this month's report")
        commentary[int(standard)] = text.strip()
    words = PackWords(ids, args.summary.strip(), commentary)
    words.check()
    return words


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    from messages.pack_notices import queue_pack_published
    from reports.board_pack import publish_month_pack
    from storage.models import utc_now

    async def go(database: Database) -> int:
        report, names = await _month_report(settings, database, args.month)
        try:
            words = _words(args, report, names)
        except PackError as error:
            complain(str(error))
            return EXIT_USAGE
        async with database.session() as session:
            pack, published = await publish_month_pack(
                session=session, framework=framework_of(settings), zone=settings.zone,
                month=args.month, words=words, reason=args.reason,
                published_by=getpass.getuser(), now=utc_now(),
            )  # fmt: skip
            await queue_pack_published(
                session=session, framework=framework_of(settings), month=args.month,
                version=pack.version, reason=pack.reason, completed=published.total_completed,
                quotes=len(published.feedback), actions=len(published.actions),
                summary=words.summary,
            )  # fmt: skip
        print(
            f"Published version {pack.version} of the pack for {month_label(args.month)}: "
            f"{len(published.feedback)} quotes, {published.total_completed} audits completed."
        )
        return EXIT_OK

    return run_with_database(settings, go)


def _show(settings: Settings, args: argparse.Namespace) -> int:
    return _write_published(
        settings, args, lambda pack: (pack.html if args.format == "html" else pack.content).encode()
    )


def _pdf(settings: Settings, args: argparse.Namespace) -> int:
    from reports.pack_pdf import render_pack_pdf

    return _write_published(settings, args, lambda pack: render_pack_pdf(json.loads(pack.content)))


def _write_published(
    settings: Settings, args: argparse.Namespace, content: Callable[[BoardPack], bytes]
) -> int:
    """Write a published version of the month's pack to --out, made by `content`."""
    from storage.board_packs import published_pack
    from storage.files import write_private

    async def go(database: Database) -> int:
        async with database.session() as session:
            pack = await published_pack(session=session, month=args.month, version=args.version)
        if pack is None:
            which = f"version {args.version} of " if args.version else ""
            complain(f"no {which}pack for {args.month} has been published")
            return EXIT_FAILED
        write_private(args.out, content(pack))
        print(f"Wrote {args.out}: version {pack.version} of {month_label(args.month)}'s pack.")
        return EXIT_OK

    return run_with_database(settings, go)


def _versions(settings: Settings, args: argparse.Namespace) -> int:
    from storage.board_packs import pack_versions

    async def go(database: Database) -> int:
        async with database.session() as session:
            packs = await pack_versions(session=session, month=args.month)
        if not packs:
            print(f"No pack for {args.month} has been published.")
        for pack in packs:
            print(f"{pack.version}\t{pack.published_at:%Y-%m-%d %H:%M}\t{pack.published_by}\t"
                  f"{pack.reason}")  # fmt: skip
        return EXIT_OK

    return run_with_database(settings, go)
