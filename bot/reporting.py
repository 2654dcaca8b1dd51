"""Build the Board's report for a person's scope, and one audit's document, from the database.

A report reads every audit of its period and counts them in Python: for years of history that
is seconds of work, which on the event loop would hold up every other person's turn (and
/healthz) for as long. `ReportMaker` makes reports in worker processes instead, each with its
own database connection, and hands back only what the caller shows (a summary, a page); the
turn that asked waits for it without stopping anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from cards.views import audit_heading, involved_worker_label
from practice.answers import INVOLVEMENT_OPTIONS, contact_options
from practice.framework import Framework
from practice.month import month_label
from practice.report import Report, ReportScope, build_report
from reports.audit_document import AuditDocument, RatedCriterion
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage.database import Database
from storage.models import Staff
from storage.reporting import report_facts

log = logging.getLogger(__name__)

T = TypeVar("T")
# What a caller makes of a report and the names it may show: a module-level function (or a
# functools.partial of one), so that it can be sent to a worker process.
Product = Callable[[Report, dict[int, str]], T]
# A worker is replaced after this many reports, giving back the memory a long one took.
REPORTS_PER_WORKER = 50
# Workers run at a lower CPU priority (nice) than the bot, whose turns people wait on.
WORKER_NICENESS = 10


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
    facts = await report_facts(
        session=session, framework=framework, zone=zone, first_month=first_month,
        last_month=last_month,
    )  # fmt: skip
    report = build_report(
        framework,
        first_month=first_month,
        last_month=last_month,
        audits=facts.audits,
        feedback=facts.feedback,
        moderation=facts.moderation,
        actions=facts.actions,
        scope=scope,
        as_of=as_of,
    )
    return report, facts.names


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
    heading = audit_heading(detail, standard)
    moderation = await moderation_store.moderation_of(session=session, audit_id=audit_id)
    moderated = moderation is not None and moderation.submitted_at is not None
    views = (
        await moderation_store.ratings_of(session=session, audit_id=audit_id) if moderated else {}
    )
    moderator = (
        await session.get(Staff, moderation.moderator_id) if moderated and moderation else None
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
        involvement_text = f"{how} ({involved_worker_label(detail, standard)})"
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
        kind=heading.kind.description,
        month_label=month_label(detail.audit.month),
        about=heading.about,
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
