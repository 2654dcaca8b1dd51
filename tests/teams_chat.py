"""People using the bot in Teams, for tests of the app in process.

They open the bot, type and press card buttons through `/api/messages`, as Teams sends
them; and they see their chat as Teams would show it: every message the fake Bot Connector
accepted for their conversation, in the order it arrived, each as last replaced. The bot's
own messages reach them through its outbox sender (`settle_outbox` waits for it).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from storage import outbox
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.fake_connector import FakeConnector
from tests.harness import action, all_text

TENANT_ID = "22222222-2222-2222-2222-222222222222"
BOT = {"id": "28:pqf-audit-bot", "name": "PQF Audit Bot"}


@dataclass(frozen=True)
class Person:
    """Someone on the roster, as Teams knows them."""

    email: str
    name: str
    aad_object_id: str

    @property
    def handle(self) -> str:
        return self.email.split("@")[0]

    @property
    def teams_id(self) -> str:
        return f"29:{self.handle}"

    @property
    def conversation_id(self) -> str:
        return f"a:personal-{self.handle}"


@dataclass
class ChatMessage:
    """One message in a person's chat with the bot, as it stands now."""

    id: str
    activity: dict[str, Any]  # as last replaced
    proactive: bool  # sent by the bot of its own accord, not as a reply within a turn
    position: int  # its place among everything delivered to anyone
    sent: dict[str, Any] = field(default_factory=dict)  # as first sent

    @property
    def notification(self) -> str:
        """Return the summary Teams showed in the notification of the message as first sent."""
        return str(self.sent.get("summary") or "")

    @property
    def card(self) -> dict[str, Any] | None:
        attachments = self.activity.get("attachments") or []
        return attachments[0]["content"] if attachments else None

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")

    @property
    def summary(self) -> str:
        return str(self.activity.get("summary") or "")

    @property
    def words(self) -> str:
        """Return the text of the message or every piece of text on its card."""
        return all_text(self.card) if self.card is not None else self.text


class Teams:
    """The Teams clients of everyone in a test, against one app and one fake Connector."""

    def __init__(self, client: TestClient, connector: FakeConnector) -> None:  # type: ignore[type-arg]
        self._client = client
        self._connector = connector
        self._ids = itertools.count(1)

    def chat(self, person: Person) -> list[ChatMessage]:
        """Return the person's chat: each accepted message, oldest first, as last replaced."""
        return self._chat(person.conversation_id)

    def _chat(self, conversation_id: str) -> list[ChatMessage]:
        messages: dict[str, ChatMessage] = {}
        for position, call in enumerate(self._connector.calls):
            if call.conversation_id != conversation_id or not 200 <= call.status < 300:
                continue
            if call.method == "POST" and call.id is not None:
                messages[call.id] = ChatMessage(
                    call.id, call.body, not call.is_reply, position, call.body
                )
            elif call.method == "PUT" and call.activity_id in messages:
                messages[call.activity_id].activity = call.body
        return list(messages.values())

    def since(self, person: Person, count: int) -> list[ChatMessage]:
        """Return the messages after the first `count` of the person's chat."""
        return self.chat(person)[count:]

    def latest_card_with(self, person: Person, title: str) -> ChatMessage:
        """Return the newest message in the chat with a button of this title."""
        for message in reversed(self.chat(person)):
            if message.card is None:
                continue
            try:
                action(message.card, title)
            except AssertionError:
                continue
            return message
        raise AssertionError(f"no card in {person.name}'s chat has a {title!r} button")

    def _activity(self, person: Person, **fields: Any) -> dict[str, Any]:
        activity_id = f"incoming-{next(self._ids)}"
        self._connector.incoming.add(activity_id)
        return {
            "id": activity_id,
            "channelId": "msteams",
            "serviceUrl": self._connector.url,
            "from": {"id": person.teams_id, "aadObjectId": person.aad_object_id,
                     "name": person.name},
            "conversation": {"id": person.conversation_id, "conversationType": "personal",
                             "tenantId": TENANT_ID},
            "recipient": BOT,
            "channelData": {"tenant": {"id": TENANT_ID}},
            **fields,
        }  # fmt: skip

    async def _post(self, body: dict[str, Any]) -> list[ChatMessage]:
        before = len(self._connector.calls)
        response = await self._client.post("/api/messages", json=body)
        assert response.status in (200, 201), (response.status, await response.text())
        conversation = body["conversation"]["id"]
        answered = {
            call.id
            for call in self._connector.calls[before:]
            if call.conversation_id == conversation and call.is_reply and call.id
        }
        return [m for m in self._chat(conversation) if m.id in answered]

    async def install(self, person: Person) -> list[ChatMessage]:
        """Open the bot for the first time (Teams installs the app in the personal scope)."""
        return await self._post(self._activity(person, type="installationUpdate", action="add"))

    async def say(self, person: Person, text: str) -> list[ChatMessage]:
        """Type a message; return the bot's replies within the turn."""
        return await self._post(self._activity(person, type="message", text=text))

    async def press(
        self, person: Person, message: ChatMessage, title: str, **inputs: Any
    ) -> list[ChatMessage]:
        """Press a button on a card in the chat, with these input values; return the replies."""
        assert message.card is not None, "that message has no card"
        return await self.send(person, message, {**action(message.card, title), **inputs})

    async def send(
        self, person: Person, message: ChatMessage, value: dict[str, Any]
    ) -> list[ChatMessage]:
        """Send what a button of this message's card sends (its data and the inputs)."""
        return await self._post(
            self._activity(person, type="message", value=value, replyToId=message.id)
        )


class SettableClock(Protocol):
    """The bot's clock in a test: it reads `now`, which the test may move on."""

    now: datetime

    def __call__(self) -> datetime: ...


async def settle_outbox(database: Database, clock: SettableClock, within: float = 90.0) -> None:
    """Wait while the bot's outbox sender delivers all it can, moving the clock on to retries.

    A message Teams refused waits for its retry time, by the bot's clock: the clock is moved
    on to it (time passes) rather than waited for. Messages put off until their recipient
    opens the bot are left waiting.
    """
    deadline = time.monotonic() + within
    while True:
        now = clock()
        async with database.session() as session:
            rows = list(
                await session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.status == OutboxStatus.PENDING)
                    .order_by(col(OutboxMessage.id))
                )
            )
        busy = [r for r in rows if r.claimed_until is not None and r.claimed_until >= now]
        behind: set[int] = set()  # people with an earlier message waiting: the rest queue
        claimable, later = [], []
        for row in rows:
            due = row.next_attempt_at is None or row.next_attempt_at <= now
            # Put off until the person opens the bot: due again each hour, yet going
            # nowhere until they do (their opening the bot makes them due at once).
            for_later = row.last_error == outbox.NOT_INSTALLED
            if row.recipient_id not in behind and due and not for_later:
                claimable.append(row)
            if not due and not for_later:
                later.append(row)
            if not due or row in busy or for_later:
                behind.add(row.recipient_id)
        if not busy and not claimable:
            if not later:
                return
            # A retry: Teams asked to wait, or the sender backs off. Time passes.
            clock.now = min(r.next_attempt_at for r in later if r.next_attempt_at is not None)
            clock.now += timedelta(seconds=1)
        assert time.monotonic() < deadline, f"the outbox did not settle: {len(rows)} pending"
        await asyncio.sleep(0.05)
