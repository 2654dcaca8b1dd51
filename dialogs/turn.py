"""What the bot puts in a turn's state for the dialogs: who is talking, and their answer."""

from __future__ import annotations

from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity

from storage.models import Staff

STAFF_KEY = "pqf.staff"
ANSWER_KEY = "pqf.answer"
MODERATION_KEY = "pqf.moderation"


def current_staff(context: TurnContext) -> Staff:
    """Return the member of staff this turn is from (the bot checked the roster first)."""
    staff = context.turn_state.get(STAFF_KEY)
    if not isinstance(staff, Staff):
        raise LookupError("the turn has no member of staff; the bot must identify them first")
    return staff


def card_message(card: dict[str, Any], *, summary: str | None = None) -> Activity:
    """Return a message activity carrying one Adaptive Card."""
    activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
    if summary:
        activity.summary = summary
    return activity


def card_update(activity_id: str, card: dict[str, Any]) -> Activity:
    """Return the activity that replaces an earlier message with this card."""
    activity = card_message(card)
    activity.id = activity_id
    return activity
