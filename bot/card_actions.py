"""A button pressed on a card (`Action.Execute`): what it sent, and the answer Teams expects.

Teams sends the press as an `adaptiveCard/action` invoke and puts the card in the answer in
place of the card pressed: no call to the Bot Connector. Checked with botbuilder 4.17.1 and
CloudAdapter: the answer must be an `InvokeResponse` whose body is an
`AdaptiveCardInvokeResponse` (a plain dict, or that model returned from botbuilder's own
`on_adaptive_card_invoke`, ends in a 500), so the bot answers from `on_invoke_activity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botbuilder.core import InvokeResponse
from botbuilder.schema import Activity, AdaptiveCardInvokeResponse

CARD = "application/vnd.microsoft.card.adaptive"
ERROR = "application/vnd.microsoft.error"
AUTOMATIC = "automatic"  # the trigger of a card's `refresh`; a person's press is "manual"


@dataclass(frozen=True)
class CardAction:
    """What a pressed button sent: its verb, and its data with the card's inputs."""

    verb: str
    data: dict[str, Any]


def card_action_of(activity: Activity) -> CardAction | None:
    """Return the press an `adaptiveCard/action` invoke carries, or None if it cannot be read."""
    value = activity.value
    if not isinstance(value, dict):
        return None
    action = value.get("action")  # a plain dict, as Teams sent it
    if not isinstance(action, dict):
        return None
    data = action.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None
    verb = action.get("verb")
    return CardAction(verb=verb if isinstance(verb, str) else "", data=data)


def is_refresh(activity: Activity) -> bool:
    """Return whether Teams sent this invoke for a card's `refresh`, not for a person's press."""
    value = activity.value
    return isinstance(value, dict) and value.get("trigger") == AUTOMATIC


def card_response(card: dict[str, Any]) -> InvokeResponse:
    """Return the answer that puts this card in place of the one pressed."""
    return InvokeResponse(
        status=200, body=AdaptiveCardInvokeResponse(status_code=200, type=CARD, value=card)
    )


def error_response(message: str) -> InvokeResponse:
    """Return the answer that leaves the card pressed as it is (what was typed too) and says why."""
    return InvokeResponse(
        status=200,
        body=AdaptiveCardInvokeResponse(
            status_code=400, type=ERROR, value={"code": "BadRequest", "message": message}
        ),
    )


def empty_response() -> InvokeResponse:
    """Return the answer to a press whose reply went as messages: the card pressed stays."""
    return InvokeResponse(status=200)
