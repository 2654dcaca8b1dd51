"""The report service: who may see which report, the report made off the event loop, the record.

The Teams `report` command, the report pages and the command line each ask `ReportService` for
a report: it works out the scope the person may see (the command line gives its own), makes
the report and records in the access log who saw which months.

A report's figures are counted by the database (storage/report_counts.py), but a long period
still takes a second or so of work, which on the event loop would hold up every other
person's turn (and /healthz) for as long. `ReportMaker` makes reports in worker processes
instead, each with its own database connection, and hands back only what the caller shows (a
summary, a page); the turn that asked waits for it without stopping anyone else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from practice.access import report_scope
from practice.answers import INVOLVEMENT_OPTIONS, contact_options
from practice.audit_steps import AuditKind
from practice.audit_words import audit_about, worker_to_involve
from practice.framework import Framework
from practice.month import month_label
from practice.report import SMALL_NUMBERS_CAUTION, Report, ReportScope, counted_report
from practice.report_summary import BelowCriterion, OwnAudit
from reports.audit_document import AuditDocument, RatedCriterion
from reports.board_pack import since_line
from reports.html import format_percent
from reports.tabular import report_to_json
from storage import access_log, roster
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage.board_packs import published_pack
from storage.database import Database
from storage.models import AuditStatus, BoardPack, Staff
from storage.report_counts import counted_facts
from storage.report_summary import audits_involving, latest_submitted_month, rating_counts

log = logging.getLogger(__name__)

T = TypeVar("T")
# What a caller makes of a report and the names it may show: a module-level function (or a
# functools.partial of one), so that it can be sent to a worker process.
Product = Callable[[Report, dict[int, str]], T]
# A worker is replaced after this many reports, giving back the memory a long one took.
REPORTS_PER_WORKER = 50
# Workers run at a lower CPU priority (nice) than the bot, whose turns people wait on.
WORKER_NICENESS = 10
OWN_AUDITS_SHOWN = 10
BELOW_SHOWN = 3


async def scoped_report(
    *,
    session: AsyncSession,
    framework: Framework,
    zone: ZoneInfo,
    first_month: str,
    last_month: str,
    scope: ReportScope,
    as_of: date,
) -> tuple[Report, dict[int, str]]:
    """Return the report for the months and scope, and the names it may show."""
    facts = await counted_facts(
        session=session, zone=zone, first_month=first_month, last_month=last_month,
        scope=scope, as_of=as_of,
    )  # fmt: skip
    report = counted_report(
        framework,
        first_month=first_month,
        last_month=last_month,
        counts=facts.counts,
        feedback=facts.feedback,
        actions=facts.actions,
        scope=scope,
    )
    return report, facts.names


def report_and_names(report: Report, names: dict[int, str]) -> tuple[Report, dict[int, str]]:
    """Return the report itself and the names it may show (for callers that render it all)."""
    return report, names


# -- made in worker processes -----------------------------------------------------------------


@dataclass(frozen=True)
class ReportRequest:
    """Which report to make: the months, the scope and the day it is made."""

    first_month: str
    last_month: str
    scope: ReportScope
    as_of: date


@dataclass(frozen=True)
class _Job:
    database_url: str
    framework: Framework
    zone: ZoneInfo
    request: ReportRequest


async def _make(database: Database, job: _Job, product: Product[T]) -> T:
    async with database.session() as session:
        report, names = await scoped_report(
            session=session, framework=job.framework, zone=job.zone,
            first_month=job.request.first_month, last_month=job.request.last_month,
            scope=job.request.scope, as_of=job.request.as_of,
        )  # fmt: skip
    return product(report, names)


def _start_worker() -> None:
    os.nice(WORKER_NICENESS)


def _make_in_worker(job: _Job, product: Product[T]) -> T:
    async def go() -> T:
        database = Database(job.database_url)
        try:
            return await _make(database, job, product)
        finally:
            await database.dispose()

    return asyncio.run(go())


class ReportMaker:
    """Makes reports in worker processes (or, with no workers, in this one: for tests)."""

    def __init__(
        self, *, database: Database, framework: Framework, zone: ZoneInfo, workers: int = 0
    ) -> None:
        self._database = database
        self._framework = framework
        self._zone = zone
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def make(self, request: ReportRequest, product: Product[T]) -> T:
        """Return what `product` makes of the report asked for."""
        url = self._database.url.render_as_string(hide_password=False)
        job = _Job(url, self._framework, self._zone, request)
        if self._workers == 0:
            return await _make(self._database, job, product)
        try:
            return await self._in_worker(job, product)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the pool is unusable, so start afresh.
            log.warning("a report worker died; starting new workers")
            self.close()
            return await self._in_worker(job, product)

    async def _in_worker(self, job: _Job, product: Product[T]) -> T:
        if self._pool is None:
            # "spawn": forking a process that runs threads (the database driver's, the
            # sender's) can copy a lock held at that moment and hang the child.
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=REPORTS_PER_WORKER,
                initializer=_start_worker,
            )
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, _make_in_worker, job, product
        )

    def close(self) -> None:
        """Stop the worker processes (a report being made is abandoned)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)


# -- one service for the `report` command, the report pages and the command line -------------


@dataclass(frozen=True)
class Asker:
    """Who asks for a report, and how the access log names what they did."""

    staff: Staff | None  # None: an administrator at the command line, who sees everything
    action: str  # "report_card", "report_page", "cli_report"
    via: str  # "teams", "link", "cli"


@dataclass(frozen=True)
class MadeReport(Generic[T]):
    """A report made for someone: its months, scope and day, and what was made of it."""

    first_month: str
    last_month: str
    scope: ReportScope
    as_of: date
    made: T


class ReportService:
    """Makes a report for someone: their scope, the report (in a worker), the access log."""

    def __init__(
        self,
        *,
        database: Database,
        framework: Framework,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        maker: ReportMaker | None = None,
    ) -> None:
        self._database = database
        self._framework = framework
        self._zone = zone
        self._clock = clock
        self.maker = maker or ReportMaker(database=database, framework=framework, zone=zone)

    def today(self) -> date:
        """Return today's date in the council's time zone."""
        return self._clock().astimezone(self._zone).date()

    async def report(
        self,
        asker: Asker,
        product: Product[T],
        *,
        as_of: date,
        months: tuple[str, str] | None = None,
        scope: ReportScope | None = None,
    ) -> MadeReport[T] | None:
        """Return what `product` makes of the report the asker may see; None if they may not.

        Without `months`, the report is of the latest month with a completed audit. Staff
        see the scope their role gives them; the command line gives its own `scope`.
        """
        async with self._database.session() as session:
            if asker.staff is not None:
                viewer = await roster.viewer_of(session=session, staff=asker.staff)
                scope = report_scope(self._framework, viewer)
            if scope is None:
                return None
            if months is None:
                first = last = await latest_reported_month(session, as_of)
            else:
                first, last = months
        # Made away from this process's event loop: other people's turns go on meanwhile.
        made = await self.maker.make(ReportRequest(first, last, scope, as_of), product)
        # Staff see the scope their role gives; the command line chose one, so it is named.
        target = f"{first} to {last}" if asker.staff else f"{first} to {last}, {scope.label}"
        async with self._database.session() as session:
            await access_log.record(
                session=session, staff_id=asker.staff.id if asker.staff else None,
                action=asker.action, target=target, via=asker.via,
            )  # fmt: skip
        return MadeReport(first, last, scope, as_of, made)

    async def own_audits(self, staff: Staff, summary: MadeReport[ReportSummary]) -> list[OwnAudit]:
        """Return the person's audits of the summary's months: done by them, or of their work."""
        async with self._database.session() as session:
            return await own_audits(session, self._framework, summary.made, staff)

    async def published_pack(self, staff: Staff | None, first: str, last: str) -> BoardPack | None:
        """Return the month's latest published pack, if the report is of one month seen whole.

        A link or summary of such a month shows the pack as the Board published it; a team's
        or a person's report, or a period of months, is always made from the live figures.
        """
        if first != last:
            return None
        async with self._database.session() as session:
            if staff is not None:
                viewer = await roster.viewer_of(session=session, staff=staff)
                scope = report_scope(self._framework, viewer)
                if scope is None or not scope.whole:
                    return None
            return await published_pack(session=session, month=first)

    async def since_publication(self, pack: BoardPack, as_of: date) -> str:
        """Return the line saying what changed in the month's live figures since the pack."""
        request = ReportRequest(pack.month, pack.month, ReportScope(), as_of)
        live = await self.maker.make(request, report_json)
        return since_line(pack, self._zone, live)

    async def published_summary(
        self, staff: Staff, made: MadeReport[ReportSummary]
    ) -> ReportSummary | None:
        """Return the summary of the month's published pack (None if it has none to show)."""
        pack = await self.published_pack(staff, made.first_month, made.last_month)
        if pack is None:
            return None
        content = json.loads(pack.content)
        published = pack.published_at.astimezone(self._zone)
        note = (
            f"As published by the Board: version {pack.version}, {published:%-d %B %Y}. "
            + await self.since_publication(pack, made.as_of)
        )
        return replace(
            made.made,
            completed=content["completed"]["total"],
            completion=_completion_of(content),
            below=_below_of(content),
            caution=None,
            published=note,
        )

    def close(self) -> None:
        """Stop the report workers."""
        self.maker.close()


def report_json(report: Report, names: dict[int, str]) -> dict[str, Any]:
    """Return the report as JSON data (made in a worker, for comparing with a pack)."""
    return report_to_json(report, names=names)


def _completion_of(content: dict[str, Any]) -> str:
    rows = content["completion"]["by_role"]
    requested = sum(row["requested"] for row in rows)
    if not requested:
        return "not known (no audits requested through the bot in this period)"
    done = sum(row["on_time"] + row["late"] for row in rows)
    late = sum(row["late"] for row in rows)
    share = format_percent(Decimal(done * 100) / Decimal(requested))
    return f"{done} of {requested} requested audits ({share}), {late} of them late"


def _below_of(content: dict[str, Any]) -> list[BelowCriterion]:
    rows = [
        (Decimal(str(row["percents"]["below"])), row)
        for table in content["outcomes"]
        for row in table["criteria"]
        if row["counts"]["below"]
    ]
    rows.sort(key=lambda item: (-item[0], item[1]["criterion_id"]))
    return [
        BelowCriterion(row["criterion_id"], row["text"], format_percent(value), row["answered"])
        for value, row in rows[:BELOW_SHOWN]
    ]


# -- what the `report` command's card shows ----------------------------------------------------


@dataclass(frozen=True)
class ReportSummary:
    """What the `report` command's card shows of a report (small: it comes from a worker)."""

    first_month: str
    last_month: str
    period: str
    scope: str
    completed: int
    completion: str
    below: list[BelowCriterion]
    names: dict[int, str]
    caution: str | None = None  # the small-numbers caution of a team's report
    published: str | None = None  # a published pack's version, and what changed since


def summarise(report: Report, names: dict[int, str]) -> ReportSummary:
    """Return the summary of a report for the `report` command's card."""
    return ReportSummary(
        first_month=report.first_month,
        last_month=report.last_month,
        period=report.period_label,
        scope=report.scope,
        completed=report.total_completed,
        completion=completion_text(report),
        below=most_often_below(report),
        names=names,
        caution=SMALL_NUMBERS_CAUTION if report.small_numbers else None,
    )


def completion_text(report: Report) -> str:
    """Return how many requested audits were completed, in words."""
    requested = sum(row.requested for row in report.completion_by_role)
    done = sum(row.on_time + row.late for row in report.completion_by_role)
    if not requested:
        return "not known (no audits requested through the bot in this period)"
    late = sum(row.late for row in report.completion_by_role)
    share = format_percent(Decimal(done * 100) / Decimal(requested))
    return f"{done} of {requested} requested audits ({share}), {late} of them late"


def most_often_below(report: Report) -> list[BelowCriterion]:
    """Return the criteria with the highest share of Below ratings in the period."""
    rows = [
        (row.percents["below"], row, table.month)
        for table in report.tables
        for row in table.criteria
        if row.counts["below"]
    ]
    rows.sort(key=lambda item: (-item[0], item[1].criterion_id))
    return [
        BelowCriterion(row.criterion_id, row.text, format_percent(value), row.answered)
        for value, row, _ in rows[:BELOW_SHOWN]
    ]


async def latest_reported_month(session: AsyncSession, today: date) -> str:
    """Return the latest month (up to this one) with a completed audit, else this month."""
    this_month = f"{today:%Y-%m}"
    return await latest_submitted_month(session=session, up_to=this_month) or this_month


async def own_audits(
    session: AsyncSession, framework: Framework, summary: ReportSummary, staff: Staff
) -> list[OwnAudit]:
    """Return the person's audits of the period: done by them, or of their work."""
    rows = await audits_involving(
        session=session, staff_id=staff.id, first_month=summary.first_month,
        last_month=summary.last_month, limit=OWN_AUDITS_SHOWN,
    )  # fmt: skip
    found = []
    for audit in rows:
        assert audit.id is not None
        standard = framework.standard(audit.standard)
        title = f"Standard {audit.standard}: {standard.title if standard else ''} · " + month_label(
            audit.month
        )
        if audit.auditor_id == staff.id:
            role = "You audited"
        else:
            role = f"Your work, audited by {summary.names.get(audit.auditor_id, 'a colleague')}"
        if audit.status != AuditStatus.SUBMITTED:
            outcome = "not submitted yet"
        else:
            ratings = await rating_counts(session=session, audit_id=audit.id)
            outcome = ", ".join(
                f"{option.label} {ratings[option.code]}"
                for option in framework.rating_scale
                if ratings.get(option.code)
            )
        submitted = audit.status == AuditStatus.SUBMITTED
        found.append(OwnAudit(audit.id, title, role, outcome or "no ratings", submitted))
    return found


# -- one audit for the file -------------------------------------------------------------------


async def audit_document(
    *, session: AsyncSession, framework: Framework, zone: ZoneInfo, audit_id: int
) -> AuditDocument | None:
    """Return a completed audit (with its moderation, if any) as a document for the file."""
    detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
    if detail is None:
        return None
    standard = framework.standard(detail.audit.standard)
    if standard is None:
        return None
    supervision = standard.subject == "supervision"
    moderation = await moderation_store.moderation_of(session=session, audit_id=audit_id)
    moderated = moderation is not None and moderation.submitted_at is not None
    views = (
        await moderation_store.ratings_of(session=session, audit_id=audit_id) if moderated else {}
    )
    moderator = (
        await roster.staff_by_id(session=session, staff_id=moderation.moderator_id)
        if moderated and moderation
        else None
    )

    def label(code: str | None) -> str:
        option = framework.rating(code) if code else None
        return option.label if option else "—"

    criteria = []
    for criterion in standard.criteria:
        row = detail.ratings.get(criterion.id)
        view = views.get(criterion.id)
        verdict, reason = "", ""
        if view is not None:
            verdict = "Agreed" if view.agrees else f"Moderator: {label(view.rating)}"
            reason = view.reason
        criteria.append(
            RatedCriterion(
                criterion_id=criterion.id,
                text=criterion.text,
                rating=label(row.rating if row else None),
                evidence=row.evidence if row else "",
                moderation=verdict,
                moderation_reason=reason,
            )
        )
    feedback = detail.feedback
    contacts = contact_options(standard)
    who = (
        ", ".join(contacts.get(c, c) for c in feedback.contacted.split(",") if c)
        if feedback
        else ""
    )
    involvement = detail.involvement
    involvement_text = ""
    if involvement and involvement.how:
        how = INVOLVEMENT_OPTIONS.get(involvement.how, "")
        worker = detail.allocated_worker or detail.subject
        involved = worker_to_involve(
            supervision=supervision, worker_name=worker.name if worker else None
        )
        involvement_text = f"{how} ({involved})"
    involvement_detail = ""
    if involvement and involvement.how == "feedback_arranged" and involvement.feedback_on:
        involvement_detail = f"Feedback date: {involvement.feedback_on:%d %B %Y}"
    elif involvement and involvement.how == "not_involved":
        involvement_detail = involvement.reason
    submitted = detail.audit.submitted_at
    return AuditDocument(
        audit_id=audit_id,
        standard_number=standard.number,
        standard_title=standard.title,
        kind=AuditKind(detail.audit.kind).description,
        month_label=month_label(detail.audit.month),
        about=audit_about(
            supervision=supervision,
            subject_name=detail.subject.name if detail.subject else None,
            case_reference=detail.case.reference if detail.case else None,
        ),
        team=detail.audit.team,
        auditor_name=detail.auditor.name,
        worker_name=detail.subject.name if detail.subject else None,
        submitted_on=submitted.astimezone(zone).date() if submitted else None,
        due_on=detail.audit.due_on,
        criteria=criteria,
        feedback_who=who or ("nobody" if feedback else ""),
        feedback_said=feedback.what_they_said if feedback else "",
        feedback_no_contact_reason=feedback.no_contact_reason if feedback and not who else "",
        involvement=involvement_text,
        involvement_detail=involvement_detail,
        moderator_name=moderator.name if moderator else None,
        moderation_comment=moderation.overall_comment if moderated and moderation else "",
        voluntary=detail.audit.voluntary,
    )
