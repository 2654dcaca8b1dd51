"""What the bot puts in a turn's state for the dialogs, and how the dialogs show their cards."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity

from storage.models import Staff

STAFF_KEY = "pqf.staff"
ANSWER_KEY = "pqf.answer"
MODERATION_KEY = "pqf.moderation"

log = logging.getLogger(__name__)


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


async def replace_card(context: TurnContext, activity_id: str, card: dict[str, Any]) -> bool:
    """Replace an earlier message with this card; say whether Teams took the change."""
    try:
        await context.update_activity(card_update(activity_id, card))
    except Exception as error:
        # The adapter tried again while the turn's time allowed; each dialog has saved its
        # answer first, so a card left behind is only out of date.
        log.warning("could not replace card %s: %s", activity_id, type(error).__name__)
        return False
    return True
