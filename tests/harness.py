"""Drive the bot through botbuilder's TestAdapter as Teams users, and read what it sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from botbuilder.core import Storage
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
)

from bot.adapter import on_turn_error
from bot.handler import AuditBot
from bot.limits import MessageRateLimit
from practice.framework import Framework
from storage.bot_state import SqlConversationState, SqlStorage
from storage.database import Database

TENANT = "00000000-0000-0000-0000-0000000000001"


@dataclass(frozen=True)
class User:
    """A Teams user as the bot sees them."""

    aad_object_id: str
    teams_id: str
    name: str = "Someone"

    @property
    def conversation_id(self) -> str:
        return f"personal-{self.teams_id}"


@dataclass
class Turn:
    """What the bot sent and replaced during one turn."""

    sent: list[Activity] = field(default_factory=list)
    updated: list[Activity] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [a.text for a in self.sent if a.text]

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [card_of(a) for a in self.sent if a.attachments]

    @property
    def card(self) -> dict[str, Any]:
        """Return the last card sent as a new message."""
        cards = self.cards
        assert cards, f"no card was sent; texts: {self.texts}"
        return cards[-1]

    @property
    def invoke_response(self) -> Any:
        """Return the turn's answer to an invoke (botbuilder's InvokeResponse), if it had one."""
        answers = [a.value for a in self.sent if a.type == ActivityTypes.invoke_response]
        assert len(answers) <= 1, "an invoke is answered once"
        return answers[0] if answers else None

    @property
    def in_place(self) -> dict[str, Any] | None:
        """Return the card an Action.Execute press was answered with, to replace the card pressed."""
        response = self.invoke_response
        if response is None or response.body is None:
            return None
        body = response.body
        assert response.status == 200
        if body.type != "application/vnd.microsoft.card.adaptive":
            return None
        assert body.status_code == 200
        card: dict[str, Any] = json.loads(json.dumps(body.value))
        return card

    @property
    def in_place_error(self) -> str | None:
        """Return the message of an Action.Execute answered with an error (the card stays)."""
        response = self.invoke_response
        if response is None or response.body is None:
            return None
        body = response.body
        if body.type != "application/vnd.microsoft.error":
            return None
        return str(body.value["message"])

    @property
    def messages(self) -> list[Activity]:
        """Return what went as messages (not the invoke's answer): each a call to Teams."""
        return [a for a in self.sent if a.type != ActivityTypes.invoke_response]

    @property
    def card_ids(self) -> list[str]:
        return [a.id for a in self.sent if a.attachments]

    def updated_cards(self) -> list[dict[str, Any]]:
        return [card_of(a) for a in self.updated if a.attachments]


def card_of(activity: Activity) -> dict[str, Any]:
    """Return the Adaptive Card content of a message."""
    content = activity.attachments[0].content
    return content if isinstance(content, dict) else json.loads(json.dumps(content))


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every submit action of a card, including those inside action sets."""
    found = list(card.get("actions", []))

    def walk(elements: list[dict[str, Any]]) -> None:
        for element in elements:
            if element.get("type") == "ActionSet":
                found.extend(element["actions"])
            for key in ("items", "body", "columns"):
                if isinstance(element.get(key), list):
                    walk(element[key])

    walk(card.get("body", []))
    return found


def action(card: dict[str, Any], title: str) -> dict[str, Any]:
    """Return the data of the card's button with this title."""
    for candidate in actions(card):
        if candidate.get("title") == title:
            return dict(candidate["data"])
    raise AssertionError(f"no {title!r} button; buttons: {[a.get('title') for a in actions(card)]}")


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the card's inputs by id."""
    found: dict[str, dict[str, Any]] = {}

    def walk(elements: list[dict[str, Any]]) -> None:
        for element in elements:
            if str(element.get("type", "")).startswith("Input."):
                found[element["id"]] = element
            for key in ("items", "body", "columns"):
                if isinstance(element.get(key), list):
                    walk(element[key])

    walk(card.get("body", []))
    return found


def all_text(card: dict[str, Any]) -> str:
    """Return every piece of text on a card, for assertions about wording."""
    pieces: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("text", "title", "value", "label") and isinstance(item, str):
                    pieces.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(card.get("body", []))
    return "\n".join(pieces)


class BotHarness:
    """A bot wired as in production, behind botbuilder's TestAdapter."""

    def __init__(
        self,
        *,
        database: Database,
        framework: Framework,
        clock: Callable[[], datetime],
        storage: Storage | None = None,
        rate_limit: MessageRateLimit | None = None,
    ) -> None:
        self.database = database
        self.adapter = TestAdapter(
            template_or_conversation=Activity(
                channel_id="msteams",
                service_url="https://smba.example.test/uk/",
                recipient=ChannelAccount(id="28:pqf-bot", name="PQF Audit Bot"),
                from_property=ChannelAccount(id="29:nobody"),
                conversation=ConversationAccount(id="unset"),
            )
        )
        self.adapter.on_turn_error = on_turn_error
        self.bot = AuditBot(
            database=database,
            framework=framework,
            conversation_state=SqlConversationState(storage or SqlStorage(database)),
            zone=ZoneInfo("Europe/London"),
            support_contact="the Practice Quality team (pqf@example.com)",
            clock=clock,
            # Tests answer cards far faster than people: no limit unless a test sets one.
            rate_limit=rate_limit or MessageRateLimit(1_000_000, 1),
        )
        self.adapter.logic = self.bot.on_turn

    async def _turn(self, activity: Activity, user: User) -> Turn:
        activity.from_property = ChannelAccount(
            id=user.teams_id, name=user.name, aad_object_id=user.aad_object_id
        )
        activity.conversation = ConversationAccount(
            id=user.conversation_id, conversation_type="personal", tenant_id=TENANT
        )
        activity.channel_data = {"tenant": {"id": TENANT}}
        sent_before = len(self.adapter.activity_buffer)
        updated_before = len(self.adapter.updated_activities)
        await self.adapter.receive_activity(activity)
        sent = self.adapter.activity_buffer[sent_before:]
        # Give each sent activity the id the adapter answered with, as Teams would.
        first_id = self.adapter._next_id - len(sent) + 1
        for offset, item in enumerate(sent):
            item.id = str(first_id + offset)
        return Turn(sent=list(sent), updated=list(self.adapter.updated_activities[updated_before:]))

    async def say(self, user: User, text: str) -> Turn:
        """Send a typed message."""
        return await self._turn(Activity(type=ActivityTypes.message, text=text), user)

    async def submit(self, user: User, reply_to_id: str | None, value: Any) -> Turn:
        """Submit a card, as Teams sends an Action.Submit."""
        return await self._turn(
            Activity(type=ActivityTypes.message, value=value, reply_to_id=reply_to_id), user
        )

    async def press(
        self, user: User, turn: Turn, title: str, card_index: int = -1, **inputs_: Any
    ) -> Turn:
        """Press a button on a card a turn sent, with these input values."""
        card = turn.cards[card_index]
        card_id = turn.card_ids[card_index]
        return await self.submit(user, card_id, {**action(card, title), **inputs_})

    async def execute(
        self, user: User, card_id: str | None, value: Any, *, trigger: str = "manual"
    ) -> Turn:
        """Press an Action.Execute button, as Teams sends it: an `adaptiveCard/action` invoke."""
        verb = value.get("pqf", "") if isinstance(value, dict) else ""
        invoke = Activity(
            type=ActivityTypes.invoke,
            name="adaptiveCard/action",
            value={
                "action": {"type": "Action.Execute", "verb": verb, "data": value},
                "trigger": trigger,
            },
            reply_to_id=card_id,
        )
        return await self._turn(invoke, user)

    async def install(self, user: User) -> Turn:
        """Install the app in the user's personal scope."""
        return await self._turn(
            Activity(type=ActivityTypes.installation_update, action="add"), user
        )


class LivingCard:
    """One card in a person's chat, pressed with Action.Execute and replaced in place each time."""

    def __init__(self, harness: BotHarness, user: User, card_id: str, card: dict[str, Any]):
        self.harness = harness
        self.user = user
        self.card_id = card_id
        self.card = card
        self.turns: list[Turn] = []

    @classmethod
    def sent_in(cls, harness: BotHarness, user: User, turn: Turn, index: int = -1) -> LivingCard:
        """Return the card a turn sent as a message."""
        return cls(harness, user, turn.card_ids[index], turn.cards[index])

    async def press(self, title: str, **inputs_: Any) -> Turn:
        """Press a button with these inputs; the card becomes the one the bot answered with."""
        turn = await self.harness.execute(
            self.user, self.card_id, {**action(self.card, title), **inputs_}
        )
        self.turns.append(turn)
        if turn.in_place is not None:
            self.card = turn.in_place
        return turn

    @property
    def text(self) -> str:
        return all_text(self.card)

    @property
    def connector_calls(self) -> int:
        """Return the messages sent and cards updated through Teams over every press so far."""
        return sum(len(t.messages) + len(t.updated) for t in self.turns)
