"""Build the card for one step of an audit, as the audit now stands.

The audit dialog shows these cards; what each card submits is read back in
`dialogs/audit_answers.py`.
"""

from __future__ import annotations

from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from cards import audit_cards
from cards.common import Element
from cards.views import audit_heading, involved_worker_label, rating_choices, summary_items
from dialogs.audit_answers import case_mode
from practice.answers import INVOLVEMENT_OPTIONS, contact_options
from practice.audit_steps import CASE, FEEDBACK, INVOLVEMENT, criterion_of, criterion_position
from practice.dates import short_date
from practice.framework import Framework, Standard
from storage import roster
from storage.audits import AuditDetail
from storage.models import CaseStatus

# The most of their own (or their peer's) cases an auditor is offered to choose from.
CASE_CHOICES_SHOWN = 40


async def step_card(
    session: AsyncSession,
    detail: AuditDetail,
    standard: Standard,
    step: str,
    *,
    seq: int,
    problems: list[str],
    draft: dict[str, str],
    framework: Framework,
    today: date,
) -> Element:
    """Return the card for a step, showing the saved answer or the draft and any problems."""
    heading = audit_heading(detail, standard)
    limit = framework.max_text_length
    if step == CASE:
        mode = case_mode(detail, standard)
        worker = detail.auditor if mode == "choose_own" else detail.subject
        choices: list[audit_cards.CaseChoice] = []
        if mode in ("choose_own", "choose_peer") and worker is not None and worker.id:
            cases = await roster.auditable_cases_of(
                session=session,
                worker_id=worker.id,
                today=today,
                recently_closed_days=framework.recently_closed_days,
                limit=CASE_CHOICES_SHOWN,
            )
            choices = [
                audit_cards.CaseChoice(
                    c.reference,
                    "open"
                    if c.status == CaseStatus.OPEN or c.closed_on is None
                    else f"closed {short_date(c.closed_on)}",
                )
                for c in cases
            ]
        chosen = draft.get("case_choice", "")
        if not chosen and detail.case and mode in ("choose_own", "choose_peer"):
            chosen = detail.case.reference
        return audit_cards.case_card(
            heading,
            seq=seq,
            mode=mode,
            allocated_worker=detail.allocated_worker.name if detail.allocated_worker else None,
            team=detail.case.team if detail.case else None,
            choices=choices,
            chosen=chosen,
            typed_reference=draft.get("case_reference", ""),
            problems=problems,
        )
    criterion_id = criterion_of(step)
    if criterion_id is not None:
        criterion = standard.criterion(criterion_id)
        assert criterion is not None
        row = detail.ratings.get(criterion_id)
        position, total = criterion_position(standard, criterion_id)
        return audit_cards.criterion_card(
            heading,
            seq=seq,
            step=step,
            criterion_id=criterion_id,
            criterion_text=criterion.text,
            position=position,
            total=total,
            scale=rating_choices(framework),
            rating=(row.rating or "") if row else "",
            evidence=row.evidence if row else "",
            max_length=limit,
            problems=problems,
        )
    if step == FEEDBACK:
        feedback = detail.feedback
        return audit_cards.feedback_card(
            heading,
            seq=seq,
            options=contact_options(standard),
            contacted=tuple(c for c in feedback.contacted.split(",") if c) if feedback else (),
            what_they_said=feedback.what_they_said if feedback else "",
            no_contact_reason=feedback.no_contact_reason if feedback else "",
            suitable_for_report=feedback.suitable_for_report if feedback else False,
            max_length=limit,
            problems=problems,
        )
    if step == INVOLVEMENT:
        involvement = detail.involvement
        feedback_on = draft.get("feedback_on", "")
        if not feedback_on and involvement and involvement.feedback_on:
            feedback_on = involvement.feedback_on.isoformat()
        return audit_cards.involvement_card(
            heading,
            seq=seq,
            worker_label=involved_worker_label(detail, standard),
            options=INVOLVEMENT_OPTIONS,
            how=involvement.how if involvement else "",
            feedback_on=feedback_on,
            reason=involvement.reason if involvement else "",
            max_length=limit,
            problems=problems,
        )
    return audit_cards.summary_card(
        heading,
        seq=seq,
        items=summary_items(detail, standard, framework),
        problems=problems,
    )
