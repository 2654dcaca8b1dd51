"""What the `report` command's card shows: completion, criteria often rated Below, own audits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cards.report_cards import BelowCriterion, OwnAudit
from practice.framework import Framework
from practice.month import month_label
from practice.report import Report
from reports.html import format_percent
from storage.models import AuditRequest, AuditStatus, CriterionRating, Staff

OWN_AUDITS_SHOWN = 10
BELOW_SHOWN = 3


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
    latest = (
        await session.exec(
            select(func.max(AuditRequest.month)).where(
                AuditRequest.status == AuditStatus.SUBMITTED,
                col(AuditRequest.month) <= this_month,
            )
        )
    ).one()
    return latest or this_month


async def own_audits(
    session: AsyncSession, framework: Framework, summary: ReportSummary, staff: Staff
) -> list[OwnAudit]:
    """Return the person's audits of the period: done by them, or of their work."""
    rows = list(
        await session.exec(
            select(AuditRequest)
            .where(
                col(AuditRequest.month) >= summary.first_month,
                col(AuditRequest.month) <= summary.last_month,
                or_(
                    AuditRequest.auditor_id == staff.id,
                    AuditRequest.subject_worker_id == staff.id,
                ),
            )
            .order_by(col(AuditRequest.month).desc(), col(AuditRequest.id))
            .limit(OWN_AUDITS_SHOWN)
        )
    )
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
            ratings = Counter(
                await session.exec(
                    select(CriterionRating.rating).where(CriterionRating.audit_id == audit.id)
                )
            )
            outcome = ", ".join(
                f"{option.label} {ratings[option.code]}"
                for option in framework.rating_scale
                if ratings.get(option.code)
            )
        submitted = audit.status == AuditStatus.SUBMITTED
        found.append(OwnAudit(audit.id, title, role, outcome or "no ratings", submitted))
    return found
