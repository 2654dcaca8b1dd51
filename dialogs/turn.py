"""What the bot puts in a turn's state for the dialogs, and how the dialogs show their cards.

A card reaches the person one of two ways. A button pressed on a card (`Action.Execute`, an
`adaptiveCard/action` invoke) is answered with the card that takes its place, in the HTTP
response: no call to Teams at all. The dialog leaves that card in the turn (`show_in_place`)
and the bot returns it. A typed command, or an older card's `Action.Submit` (a message), is
answered with messages through the Bot Connector, as `card_message` and `replace_card` make.
"""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity, ActivityTypes

from storage.models import Staff

STAFF_KEY = "pqf.staff"
ANSWER_KEY = "pqf.answer"
MODERATION_KEY = "pqf.moderation"
IN_PLACE_KEY = "pqf.in_place"

log = logging.getLogger(__name__)


def current_staff(context: TurnContext) -> Staff:
    """Return the member of staff this turn is from (the bot checked the roster first)."""
    staff = context.turn_state.get(STAFF_KEY)
    if not isinstance(staff, Staff):
        raise LookupError("the turn has no member of staff; the bot must identify them first")
    return staff


def is_card_action(context: TurnContext) -> bool:
    """Return whether this turn is a press of an `Action.Execute` button, answered in place."""
    activity = context.activity
    return bool(activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action")


def show_in_place(context: TurnContext, card: dict[str, Any]) -> None:
    """Answer the pressed button with this card, in place of the card pressed."""
    context.turn_state[IN_PLACE_KEY] = card


def card_in_place(context: TurnContext) -> dict[str, Any] | None:
    """Return the card a dialog chose to show in place of the one pressed, if any."""
    card = context.turn_state.get(IN_PLACE_KEY)
    return card if isinstance(card, dict) else None


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
