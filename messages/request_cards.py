"""The card asking an auditor for an audit: its outbox row, and the card made when it is sent.

Each audit's request card is queued once, under `request_card_key`: by `queue_request_card`
(one request, made now) or, for a month's dispatch, as `unrendered_request_card` rows that
the sender makes into cards as it sends them (`outbox_activity`, given to the sender by
`outbox_renderer`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from cards.audit_cards import request_card
from cards.common import teams_id
from cards.views import heading_for
from delivery.outcomes import UnrenderableMessageError
from delivery.sender import Render
from messages.activity import card_activity
from practice.framework import Framework, Standard
from storage import outbox
from storage.audits import audit_detail
from storage.database import Database
from storage.models import AuditRequest, CaseRecord, OutboxMessage, Staff

# The purpose of a request card's outbox row.
REQUEST_CARD_PURPOSE = "audit_request"

# What a month's dispatch queues for each request card: the card itself is made when the
# sender sends it, from the audit as it is then (`outbox_activity`). Making 10,000 cards and
# storing 18 MB of them took about half of the month's transaction on PostgreSQL.
UNRENDERED_REQUEST = json.dumps({"render": "audit_request"}, separators=(",", ":"))


def request_card_key(audit_id: int) -> str:
    """Return the outbox key of the request card of the audit with this id."""
    return f"audit-request:{audit_id}"


def request_card_activity(
    audit: AuditRequest,
    standard: Standard,
    case: CaseRecord | None,
    subject: Staff | None,
    auditor: Staff | None = None,
) -> dict[str, Any]:
    """Return the message that asks the auditor for this audit (Teams refreshes it for them)."""
    card = request_card(
        heading_for(audit, standard, case, subject),
        what_people_can_expect=standard.what_people_can_expect,
        refresh_for=teams_id(auditor.aad_object_id) if auditor else None,
    )
    return card_activity(card, summary=f"New audit: {standard.label}")


def unrendered_request_card(*, audit_id: int, auditor_id: int, month: str) -> dict[str, Any]:
    """Return the values of the outbox row of a request card to be made when it is sent.

    The values are by `OutboxMessage` column, for a bulk insert of a month's requests.
    """
    return {
        "idempotency_key": request_card_key(audit_id),
        "recipient_id": auditor_id,
        "purpose": REQUEST_CARD_PURPOSE,
        "period": month,
        "audit_id": audit_id,
        "activity": UNRENDERED_REQUEST,
    }


async def queue_request_card(
    *,
    session: AsyncSession,
    audit: AuditRequest,
    standard: Standard,
    case: CaseRecord | None,
    subject: Staff | None,
    auditor: Staff | None = None,
) -> OutboxMessage:
    """Queue the audit's request card for its auditor (once per audit)."""
    assert audit.id is not None
    message, _new = await outbox.enqueue(
        session=session,
        key=request_card_key(audit.id),
        recipient_id=audit.auditor_id,
        purpose=REQUEST_CARD_PURPOSE,
        period=audit.month,
        activity=request_card_activity(audit, standard, case, subject, auditor),
        audit_id=audit.id,
    )
    return message


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
    return request_card_activity(
        detail.audit, standard, detail.case, detail.subject, detail.auditor
    )


def outbox_renderer(*, database: Database, framework: Framework | None) -> Render:
    """Return what makes each outbox row's activity as the sender sends it."""

    async def render(message: OutboxMessage) -> dict[str, Any]:
        return await outbox_activity(database=database, framework=framework, message=message)

    return render
