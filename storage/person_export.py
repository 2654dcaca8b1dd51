"""Everything held about one member of staff, for a subject access request (UK GDPR Art. 15)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audits as audit_store
from storage import moderation as moderation_store
from storage.directory_sync import held_about
from storage.models import (
    AccessLogEntry,
    AuditRequest,
    AuditStatusChange,
    Moderation,
    OutboxMessage,
    Staff,
    TeamsAppInstall,
    TeamsConversation,
    as_json,
)


def _plain(row: Any, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    data = as_json(row)
    for name in leave_out:
        data.pop(name, None)
    return data


async def _audit(session: AsyncSession, audit_id: int) -> dict[str, Any]:
    detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
    assert detail is not None
    moderation = await moderation_store.moderation_of(session=session, audit_id=audit_id)
    views = await moderation_store.ratings_of(session=session, audit_id=audit_id)
    return {
        "audit": _plain(detail.audit, leave_out=("live_card_activity_id", "card_seq")),
        "auditor": detail.auditor.email,
        "audited_worker": detail.subject.email if detail.subject else None,
        "case_reference": detail.case.reference if detail.case else None,
        "ratings": [_plain(r) for r in detail.ratings.values()],
        "feedback_call": _plain(detail.feedback) if detail.feedback else None,
        "worker_involvement": _plain(detail.involvement) if detail.involvement else None,
        "moderation": _plain(moderation) if moderation else None,
        "moderation_ratings": [_plain(v) for v in views.values()],
    }


async def person_record(*, session: AsyncSession, staff: Staff) -> dict[str, Any]:
    """Return every record about this person: roster entry, chats, audits, messages, log."""
    assert staff.id is not None
    supervisor = await session.get(Staff, staff.supervisor_id) if staff.supervisor_id else None
    conversation = None
    install = None
    held = await held_about(session=session, email=staff.email, aad_object_id=staff.aad_object_id)
    if staff.aad_object_id:
        install = await session.get(TeamsAppInstall, staff.aad_object_id)
        conversation = (
            await session.exec(
                select(TeamsConversation).where(
                    TeamsConversation.aad_object_id == staff.aad_object_id
                )
            )
        ).first()
    done = list(
        await session.exec(
            select(AuditRequest.id)
            .where(AuditRequest.auditor_id == staff.id)
            .order_by(col(AuditRequest.id))
        )
    )
    of_them = list(
        await session.exec(
            select(AuditRequest.id)
            .where(AuditRequest.subject_worker_id == staff.id, AuditRequest.auditor_id != staff.id)
            .order_by(col(AuditRequest.id))
        )
    )
    moderated = list(
        await session.exec(select(Moderation.audit_id).where(Moderation.moderator_id == staff.id))
    )
    messages = await session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.recipient_id == staff.id)
        .order_by(col(OutboxMessage.id))
    )
    log = await session.exec(
        select(AccessLogEntry)
        .where(AccessLogEntry.staff_id == staff.id)
        .order_by(col(AccessLogEntry.at))
    )
    changes = await session.exec(
        select(AuditStatusChange)
        .where(AuditStatusChange.changed_by_id == staff.id)
        .order_by(col(AuditStatusChange.id))
    )
    named_in_cases = list(
        await session.exec(
            select(AuditRequest.id).where(
                or_(AuditRequest.auditor_id == staff.id, AuditRequest.subject_worker_id == staff.id)
            )
        )
    )
    return {
        "about": "Everything the PQF Audit Bot holds about this member of staff.",
        "staff": {
            **_plain(staff),
            "supervisor_email": supervisor.email if supervisor else None,
        },
        "teams_chat": _plain(conversation) if conversation else None,
        "teams_app_install": _plain(install) if install else None,
        # What a roster sync read of them but could not yet apply (an unmapped job title).
        "held_by_roster_sync": [_plain(row) for row in held],
        "audits_they_did": [await _audit(session, audit_id) for audit_id in done if audit_id],
        "audits_of_their_work": [
            await _audit(session, audit_id) for audit_id in of_them if audit_id
        ],
        "moderations_they_did": [await _audit(session, audit_id) for audit_id in moderated],
        "messages_sent_to_them": [_plain(m, leave_out=("activity",)) for m in messages],
        "status_changes_they_made": [_plain(c) for c in changes],
        "access_log": [_plain(entry) for entry in log],
        "audit_count": len(named_in_cases),
    }


async def held_person_record(*, session: AsyncSession, email: str) -> dict[str, Any] | None:
    """Return what a roster sync holds of someone not on the roster, or None if nothing.

    (Graph's last record of a member of the roster groups it could not place: an unmapped
    job title, or a disabled account.)
    """
    held = await held_about(session=session, email=email)
    if not held:
        return None
    return {
        "about": "Everything the PQF Audit Bot holds about this person, who is not on its "
        "roster: what a roster sync from Microsoft Entra ID read of them but could not place.",
        "staff": None,
        "held_by_roster_sync": [_plain(row) for row in held],
        "audits_they_did": [],
        "audits_of_their_work": [],
        "audit_count": 0,
    }
