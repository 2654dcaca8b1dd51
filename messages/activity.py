"""The message activity around a card, as plain JSON: what the outbox stores and Teams is sent."""

from __future__ import annotations

from typing import Any

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def card_activity(card: dict[str, Any], *, summary: str | None = None) -> dict[str, Any]:
    """Return the message activity carrying one Adaptive Card."""
    # The JSON botbuilder makes of MessageFactory.attachment(CardFactory.adaptive_card(card)),
    # key for key and in its order (tests/test_messages.py holds the two together), without
    # botbuilder: its serialiser walks every node of the card, and this room is below it.
    activity: dict[str, Any] = {"type": "message", "attachmentLayout": "list"}
    if summary:
        activity["summary"] = summary
    activity["attachments"] = [{"contentType": ADAPTIVE_CARD, "content": card}]
    return activity
