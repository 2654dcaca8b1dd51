"""The notices the bot sends of its own accord, each put in the outbox under its own key.

Outcomes, reminders, digests, moderation samples and moderation outcomes. The key names the
purpose, the period and the recipient, so however often a job or a turn runs, each notice
is queued once; the outbox sender then delivers it within Teams' limits.
"""

from __future__ import annotations

from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from cards.common import teams_id
from cards.cycle_cards import (
    DigestRow,
    SampleEntry,
    digest_card,
    moderated_card,
    moderation_sample_card,
    outcome_card,
    reminder_card,
)
from cards.help_cards import AuditListEntry
from cards.views import audit_heading, summary_items
from messages.activity import card_activity
from practice.framework import Framework, Standard
from storage import outbox, roster
from storage.audits import AuditDetail
from storage.models import OutboxMessage, Staff


async def _queue(
    session: AsyncSession,
    *,
    key: str,
    recipient: Staff,
    purpose: str,
    period: str,
    card: dict[str, object],
    summary: str,
    audit_id: int | None = None,
) -> OutboxMessage:
    assert recipient.id is not None
    message, _new = await outbox.enqueue(
        session=session,
        key=key,
        recipient_id=recipient.id,
        purpose=purpose,
        period=period,
        activity=card_activity(card, summary=summary),
        audit_id=audit_id,
    )
    return message


async def queue_outcome(
    *, session: AsyncSession, framework: Framework, detail: AuditDetail, submitted_on: date
) -> list[OutboxMessage]:
    """Share a submitted audit with the audited worker and their supervisor.

    A self-audit goes to the supervisor only; nobody is sent their own audit back.
    """
    standard = framework.standard(detail.audit.standard)
    assert standard is not None
    assert detail.audit.id is not None
    heading = audit_heading(detail, standard)
    items = summary_items(detail, standard, framework)
    worker = detail.subject
    recipients: list[tuple[Staff, bool]] = []
    if worker is not None and worker.id != detail.auditor.id:
        recipients.append((worker, False))
    if worker is not None and worker.supervisor_id is not None:
        supervisor = await roster.staff_by_id(session=session, staff_id=worker.supervisor_id)
        if supervisor is not None and supervisor.id != detail.auditor.id and supervisor.active:
            recipients.append((supervisor, True))
    queued = []
    for person, as_supervisor in recipients:
        card = outcome_card(
            heading,
            items=items,
            submitted_on=submitted_on,
            auditor_name=detail.auditor.name,
            for_supervisor=as_supervisor,
        )
        queued.append(
            await _queue(
                session,
                key=f"outcome:{detail.audit.id}:{person.id}",
                recipient=person,
                purpose="outcome",
                period=detail.audit.month,
                card=card,
                summary=f"Completed audit: {standard.label}",
                audit_id=detail.audit.id,
            )
        )
    return queued


async def queue_reminder(
    *,
    session: AsyncSession,
    auditor: Staff,
    entries: list[AuditListEntry],
    due_on: date,
    today: date,
) -> OutboxMessage:
    """Queue today's (single) reminder to an auditor about their unfinished audits."""
    card = reminder_card(entries=entries, due_on=due_on, today=today)
    return await _queue(
        session,
        key=f"reminder:{today.isoformat()}:{auditor.id}",
        recipient=auditor,
        purpose="reminder",
        period=f"{due_on:%Y-%m}",
        card=card,
        summary="Audits due soon",
    )


async def queue_digest(
    *,
    session: AsyncSession,
    manager: Staff,
    month: str,
    month_label: str,
    rows: list[DigestRow],
    due_on: date,
    today: date,
) -> OutboxMessage:
    """Queue today's digest of their team's audits to a manager."""
    card = digest_card(month_label=month_label, due_on=due_on, rows=rows, today=today)
    return await _queue(
        session,
        key=f"digest:{today.isoformat()}:{manager.id}",
        recipient=manager,
        purpose="digest",
        period=month,
        card=card,
        summary="Your team's audits",
    )


async def queue_moderation_sample(
    *,
    session: AsyncSession,
    moderator: Staff,
    month: str,
    month_label: str,
    entries: list[SampleEntry],
    until: date,
    purpose: str = "moderation_sample",
) -> OutboxMessage:
    """Queue the month's moderation sample (or, at the close, what is left) to a moderator."""
    card = moderation_sample_card(
        month_label=month_label, until=until, entries=entries, moderator_name=moderator.name,
        month=month, refresh_for=teams_id(moderator.aad_object_id),
    )  # fmt: skip
    summary = "Audits to moderate" if purpose == "moderation_sample" else "Moderation closing"
    return await _queue(
        session,
        key=f"{purpose}:{month}:{moderator.id}",
        recipient=moderator,
        purpose=purpose,
        period=month,
        card=card,
        summary=summary,
    )


async def queue_moderation_outcome(
    *,
    session: AsyncSession,
    detail: AuditDetail,
    standard: Standard,
    moderator: Staff,
    lines: list[tuple[str, str, str]],
    overall_comment: str,
) -> OutboxMessage:
    """Send the auditor the moderation of their audit."""
    assert detail.audit.id is not None
    card = moderated_card(
        audit_heading(detail, standard),
        moderator_name=moderator.name,
        lines=lines,
        overall_comment=overall_comment,
        for_auditor=True,
    )
    return await _queue(
        session,
        key=f"moderation-outcome:{detail.audit.id}",
        recipient=detail.auditor,
        purpose="moderation_outcome",
        period=detail.audit.month,
        card=card,
        summary=f"Your audit was moderated: {standard.label}",
        audit_id=detail.audit.id,
    )
