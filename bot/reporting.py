"""Build the Board's report for a person's scope, and one audit's document, from the database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from dialogs.audit_views import audit_heading, involved_worker_label, month_label
from practice.answers import INVOLVEMENT_OPTIONS, contact_options
from practice.framework import Framework
from practice.report import Report, ReportScope, build_report
from reports.audit_document import AuditDocument, CriterionAnswer
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage.models import Staff
from storage.reporting import report_facts


async def scoped_report(
    *,
    session: AsyncSession,
    framework: Framework,
    zone: ZoneInfo,
    first_month: str,
    last_month: str,
    scope: ReportScope,
    as_of: date | None = None,
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
        as_of=as_of or datetime.now(UTC).astimezone(zone).date(),
    )
    return report, facts.names


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
            CriterionAnswer(
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
