"""Turn stored audits (records storage has read) into the typed arguments the cards take."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from cards.audit_cards import AuditHeading, RatingChoice, SummaryItem
from cards.help_cards import AuditListEntry
from practice.answers import INVOLVEMENT_OPTIONS, contact_options
from practice.audit_steps import (
    CASE,
    FEEDBACK,
    INVOLVEMENT,
    AuditKind,
    criterion_step,
    steps,
)
from practice.audit_words import worker_to_involve
from practice.framework import Framework, Standard
from practice.month import month_label
from storage.audits import AuditDetail
from storage.models import AuditRequest, AuditStatus, CaseRecord, Staff


def audit_heading(detail: AuditDetail, standard: Standard) -> AuditHeading:
    """Return the heading every card of this audit shows."""
    return heading_for(detail.audit, standard, detail.case, detail.subject)


def heading_for(
    audit: AuditRequest, standard: Standard, case: CaseRecord | None, subject: Staff | None
) -> AuditHeading:
    """Return an audit's heading from the rows already at hand (no queries)."""
    assert audit.id is not None
    return heading_of(
        audit.id,
        audit.month,
        AuditKind(audit.kind),
        audit.due_on,
        standard,
        case.reference if case else None,
        subject.name if subject else None,
    )


def heading_of(
    audit_id: int,
    month: str,
    kind: AuditKind,
    due_on: date,
    standard: Standard,
    case_reference: str | None,
    subject_name: str | None,
) -> AuditHeading:
    """Return the heading of an audit given by its fields (no AuditRequest needed)."""
    return AuditHeading(
        audit_id=audit_id,
        standard_number=standard.number,
        standard_title=standard.title,
        kind=kind,
        month_label=month_label(month),
        due_on=due_on,
        case_reference=case_reference,
        subject_name=subject_name,
        supervision=standard.subject == "supervision",
    )


def rating_choices(framework: Framework) -> list[RatingChoice]:
    """Return the rating scale as card choices."""
    return [RatingChoice(r.code, r.label, r.description) for r in framework.rating_scale]


def involved_worker_label(detail: AuditDetail, standard: Standard) -> str:
    """Return who the auditor should involve, in words."""
    worker = detail.allocated_worker or detail.subject
    return worker_to_involve(
        supervision=standard.subject == "supervision",
        worker_name=worker.name if worker is not None else None,
    )


def summary_items(
    detail: AuditDetail, standard: Standard, framework: Framework
) -> list[SummaryItem]:
    """Return every step's answer for the summary card."""
    progress = detail.progress(framework)
    items: list[SummaryItem] = []
    case_lines: list[tuple[str, str]] = []
    if standard.subject == "supervision":
        case_lines.append(
            ("Supervision records of", detail.subject.name if detail.subject else "—")
        )
    else:
        case_lines.append(("Case reference", detail.case.reference if detail.case else "—"))
    items.append(
        SummaryItem(
            step=CASE,
            title="The case" if standard.subject == "case" else "Whose supervision",
            lines=tuple(case_lines),
            users_words=(),
            complete=progress.case_confirmed,
            changeable=detail.kind is not AuditKind.SAMPLED or detail.audit.voluntary,
            change_label="Change the case",
        )
    )
    for criterion in standard.criteria:
        row = detail.ratings.get(criterion.id)
        rating = framework.rating(row.rating) if row and row.rating else None
        items.append(
            SummaryItem(
                step=criterion_step(criterion.id),
                title=f"{criterion.id} {criterion.text}",
                lines=(("Rating", rating.label if rating else "—"),),
                users_words=(("Evidence", row.evidence),) if row and row.evidence else (),
                complete=criterion.id in progress.answered_criteria,
                change_label=f"Change {criterion.id}",
            )
        )
    feedback = detail.feedback
    contacts = contact_options(standard)
    who = (
        ", ".join(contacts.get(c, c) for c in feedback.contacted.split(",") if c)
        if feedback
        else ""
    )
    feedback_words: list[tuple[str, str]] = []
    if feedback and feedback.what_they_said:
        feedback_words.append(("What they said", feedback.what_they_said))
    if feedback and feedback.no_contact_reason and not who:
        feedback_words.append(("Why nobody was contacted", feedback.no_contact_reason))
    items.append(
        SummaryItem(
            step=FEEDBACK,
            title="Feedback call",
            lines=(
                ("Gave feedback", who or "nobody"),
                (
                    "May be quoted in reports",
                    "yes" if feedback and feedback.suitable_for_report else "no",
                ),
            ),
            users_words=tuple(feedback_words),
            complete=progress.feedback_complete,
            change_label="Change the feedback call",
        )
    )
    if INVOLVEMENT in steps(standard, detail.kind):
        involvement = detail.involvement
        lines = [("How", INVOLVEMENT_OPTIONS.get(involvement.how, "—") if involvement else "—")]
        if involvement and involvement.how == "feedback_arranged" and involvement.feedback_on:
            lines.append(("Feedback date", f"{involvement.feedback_on:%d %B %Y}"))
        words = (
            (("Why", involvement.reason),)
            if involvement and involvement.how == "not_involved" and involvement.reason
            else ()
        )
        items.append(
            SummaryItem(
                step=INVOLVEMENT,
                title="Involving the worker",
                lines=tuple(lines),
                users_words=words,
                complete=progress.involvement_complete,
                change_label="Change the involvement",
            )
        )
    return items


def list_entry(
    detail: AuditDetail, standard: Standard, framework: Framework, zone: ZoneInfo
) -> AuditListEntry:
    """Return an audit as a line of the auditor's list."""
    order = steps(standard, detail.kind)[:-1]  # the summary is not a step to answer
    progress = detail.progress(framework)
    submitted_on: date | None = None
    if detail.audit.status == AuditStatus.SUBMITTED and detail.audit.submitted_at:
        submitted_on = detail.audit.submitted_at.astimezone(zone).date()
    heading = audit_heading(detail, standard)
    return AuditListEntry(
        audit_id=heading.audit_id,
        title=heading.title,
        kind=detail.kind.description,
        about=heading.about,
        due_on=detail.audit.due_on,
        status=detail.audit.status,
        steps_done=sum(1 for s in order if progress.is_answered(s)),
        steps_total=len(order),
        submitted_on=submitted_on,
    )
