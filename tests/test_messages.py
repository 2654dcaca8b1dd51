"""What the bot queues outside a dialog: the activity around a card is the one botbuilder makes."""

from __future__ import annotations

import json

import pytest

from dialogs.turn import card_message
from messages.activity import card_activity
from practice.framework import Framework
from tests.card_gallery import phone_gallery


@pytest.mark.parametrize("summary", [None, "", "New audit: Standard 4: Working with risk"])
def test_a_card_activity_is_the_json_botbuilder_makes_of_the_card(
    framework: Framework, summary: str | None
) -> None:
    for name, card in phone_gallery(framework).items():
        made = json.dumps(card_activity(card, summary=summary))
        # Byte for byte, keys in the same order: the outbox stores it as text.
        assert made == json.dumps(card_message(card, summary=summary).serialize()), name
