"""A card's `refresh`: the request or moderation sample card as it now is, for the person looking.

Teams asks for it (an `adaptiveCard/action` invoke with the trigger "automatic") when someone
opens the chat holding the card, so an old card shows the audit's progress, its due date, who
holds each audit of a sample, and never offers what can no longer be done. Nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.moderation_samples import Samples
from cards.audit_cards import request_card, submitted_card
from cards.common import Element, teams_id
from cards.submissions import AuditRefresh, SampleRefresh
from cards.views import audit_heading, list_entry, summary_items
from dialogs.moderation_dialog import is_moderator
from practice.framework import Framework
from storage import audits as audit_store
from storage.database import Database
from storage.models import AuditStatus, Staff


@dataclass(frozen=True)
class CardRefresh:
    """Make the card a `refresh` asks for, as it stands now for the person asking."""

    database: Database
    framework: Framework
    zone: ZoneInfo
    samples: Samples

    async def card(self, staff: Staff, asked: AuditRefresh | SampleRefresh) -> Element | None:
        """Return the card now, or None if it is not this person's to see."""
        if isinstance(asked, SampleRefresh):
            if not is_moderator(self.framework, staff):
                return None
            return await self.samples.card_of_month(staff, asked.month)
        async with self.database.session() as session:
            detail = await audit_store.audit_detail(session=session, audit_id=asked.audit_id)
        if detail is None or detail.audit.auditor_id != staff.id:
            return None
        standard = self.framework.standard(detail.audit.standard)
        if standard is None:
            return None
        heading = audit_heading(detail, standard)
        if detail.audit.status == AuditStatus.SUBMITTED:
            submitted = detail.audit.submitted_at
            assert submitted is not None
            return submitted_card(
                heading,
                items=summary_items(detail, standard, self.framework),
                submitted_on=submitted.astimezone(self.zone).date(),
            )
        entry = list_entry(detail, standard, self.framework, self.zone)
        return request_card(
            heading,
            what_people_can_expect=standard.what_people_can_expect,
            refresh_for=teams_id(staff.aad_object_id),
            steps_done=entry.steps_done,
            steps_total=entry.steps_total,
        )
