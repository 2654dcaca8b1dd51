"""The notice that the Board's pack for a month is published, queued for the Board.

It goes to everyone on the roster whose role sees the whole report (directors, strategic
managers, the Practice Development Advanced Practitioners: the Practice Quality Board and the
report's owners), once per version, through the outbox; not to whoever published it, whose
card says so in place. Its button asks the bot for the
month's report, which for a published month is the pack with fresh signed links (a link in a
queued message could expire before it is read).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from cards.board_pack_cards import pack_published_card
from messages.activity import card_activity
from practice.framework import Framework
from practice.month import month_label
from storage import outbox, roster
from storage.models import OutboxMessage

PURPOSE = "board_pack"


async def queue_pack_published(
    *,
    session: AsyncSession,
    framework: Framework,
    month: str,
    version: int,
    reason: str,
    completed: int,
    quotes: int,
    actions: int,
    summary: str,
    publisher_id: int | None = None,
) -> list[OutboxMessage]:
    """Queue the notice of the month's published version to everyone who sees the whole report
    but its publisher."""
    card = pack_published_card(
        month=month, month_label=month_label(month), version=version, reason=reason,
        completed=completed, quotes=quotes, actions=actions, summary=summary,
    )  # fmt: skip
    queued = []
    for person in await roster.all_staff(session=session):
        role = framework.role(person.role_code)
        if not person.active or role is None or role.sees != "all" or person.id is None:
            continue
        if person.id == publisher_id:
            continue
        message, _new = await outbox.enqueue(
            session=session, key=f"{PURPOSE}:{month}:{version}:{person.id}",
            recipient_id=person.id, purpose=PURPOSE, period=month,
            activity=card_activity(card, summary=f"The Board's pack for {month_label(month)}"),
        )  # fmt: skip
        queued.append(message)
    return queued
