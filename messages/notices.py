"""Compose the bot's proactive messages and put them in the outbox, each under its own key.

The key names the purpose, the period and the recipient, so however often a job or a turn
runs, each message is queued once; the outbox sender then delivers it within Teams' limits.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from cards.audit_cards import AuditHeading, request_card
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
from cards.views import audit_heading, heading_for, summary_items
from dialogs.turn import card_message
from practice.framework import Framework, Standard
from storage import outbox
from storage.audits import AuditDetail, audit_detail
from storage.database import Database
from storage.models import AuditRequest, CaseRecord, OutboxMessage, Staff


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
        activity=card_message(card, summary=summary).serialize(),
        audit_id=audit_id,
    )
    return message


async def queue_late_reply(
    *,
    session: AsyncSession,
    key: str,
    recipient: Staff,
    period: str,
    activity: dict[str, Any],
    not_before: datetime,
) -> bool:
    """Queue an answer Teams would not take during its turn; return whether it is new."""
    assert recipient.id is not None
    _message, new = await outbox.enqueue(
        session=session,
        key=key,
        recipient_id=recipient.id,
        purpose=outbox.REPLY,
        period=period,
        activity=activity,
        not_before=not_before,
    )
    return new


def request_card_activity(
    audit: AuditRequest, standard: Standard, case: CaseRecord | None, subject: Staff | None
) -> dict[str, object]:
    """Return the message that asks the auditor for this audit."""
    return request_message(heading_for(audit, standard, case, subject), standard)


def request_message(heading: AuditHeading, standard: Standard) -> dict[str, object]:
    """Return the message asking for the audit with this heading."""
    card = request_card(heading, what_people_can_expect=standard.what_people_can_expect)
    # botbuilder's serialiser walks every node of the card (half a millisecond a message,
    # seconds for a workforce's requests): the message around the card is serialised once
    # per standard and the card, already JSON, put in a fresh copy of it.
    activity: dict[str, Any] = json.loads(_request_envelope(standard.label))
    activity["attachments"][0]["content"] = card
    return activity


@functools.lru_cache(maxsize=64)
def _request_envelope(standard_label: str) -> str:
    envelope = card_message({}, summary=f"New audit: {standard_label}").serialize()
    return json.dumps(envelope)


# What a month's dispatch queues for each request card: the card itself is made when the
# sender sends it, from the audit as it is then (`outbox_activity`). Making 10,000 cards and
# storing 18 MB of them took about half of the month's transaction on PostgreSQL.
UNRENDERED_REQUEST = json.dumps({"render": "audit_request"}, separators=(",", ":"))


class UnrenderableMessageError(Exception):
    """An outbox message whose card cannot be made (its audit is gone): it cannot be sent."""


async def outbox_activity(
    *, database: Database, framework: Framework | None, message: OutboxMessage
) -> dict[str, Any]:
    """Return the activity to send for an outbox message, making a request card now if need be.

    Raise ValueError if the stored activity is not JSON, UnrenderableMessageError if the card
    cannot be made.
    """
    if message.activity != UNRENDERED_REQUEST:
        stored: dict[str, Any] = json.loads(message.activity)
        return stored
    if framework is None:
        raise UnrenderableMessageError("this sender was given no framework to make request cards")
    if message.audit_id is None:
        raise UnrenderableMessageError("a request card without an audit")
    async with database.session() as session:
        detail = await audit_detail(session=session, audit_id=message.audit_id)
    if detail is None:
        raise UnrenderableMessageError("the audit of this request card no longer exists")
    standard = framework.standard(detail.audit.standard)
    if standard is None:
        raise UnrenderableMessageError(f"standard {detail.audit.standard} is not in the framework")
    return request_card_activity(detail.audit, standard, detail.case, detail.subject)


def request_key(audit: AuditRequest) -> str:
    """Return the outbox key of an audit's request card."""
    return request_key_of(audit.id)


def request_key_of(audit_id: int | None) -> str:
    """Return the outbox key of the request card of the audit with this id."""
    return f"audit-request:{audit_id}"


async def queue_request_card(
    *,
    session: AsyncSession,
    audit: AuditRequest,
    standard: Standard,
    case: CaseRecord | None,
    subject: Staff | None,
) -> OutboxMessage:
    """Queue the audit's request card for its auditor (once per audit)."""
    assert audit.id is not None
    message, _new = await outbox.enqueue(
        session=session,
        key=request_key(audit),
        recipient_id=audit.auditor_id,
        purpose="audit_request",
        period=audit.month,
        activity=request_card_activity(audit, standard, case, subject),
        audit_id=audit.id,
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
        supervisor = await session.get(Staff, worker.supervisor_id)
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
        month_label=month_label, until=until, entries=entries, moderator_name=moderator.name
    )
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
