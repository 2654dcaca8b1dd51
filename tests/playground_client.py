"""Talk to the Agents Playground's HTTP and WebSocket API as its signed-in user would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

Frame = dict[str, Any]


class PlaygroundChat:
    """The signed-in user's personal chat with the bot, in the playground."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        self.frames: list[Frame] = []
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Condition()

    async def connect(self) -> PlaygroundChat:
        async with self.session.get(f"{self.base_url}/_internal/v1/config") as response:
            config = (await response.json())["config"]
        self.chat_id = config["personalChat"]["id"]
        self.user_id = config["currentUser"]["id"]
        ws_url = (
            self.base_url.replace("http", "ws", 1) + "/_ws_conversation/v1/conversations/stream"
        )
        self.websocket = await self.session.ws_connect(ws_url)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self.websocket:
            if message.type == aiohttp.WSMsgType.TEXT:
                async with self._arrived:
                    self.frames.append(json.loads(message.data))
                    self._arrived.notify_all()

    async def _until(self, ready: Callable[[], bool], within: float) -> bool:
        """Wait until `ready()` holds (checked whenever a frame arrives); say if it did."""
        try:
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(ready)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.websocket.close()

    async def wait_for(
        self, predicate: Callable[[Frame], bool], since: int, within: float = 15
    ) -> Frame:
        """Return the first frame after `since` that matches, waiting for it if need be."""

        def first() -> Frame | None:
            return next((f for f in self.frames[since:] if predicate(f)), None)

        if await self._until(lambda: first() is not None, within):
            found = first()
            assert found is not None
            return found
        shown = [_describe(f) for f in self.frames[since:]]
        raise TimeoutError(f"no matching message within {within} s; got {shown}")

    async def install(self) -> int:
        """Install the app in the personal chat (what opening the playground does)."""
        mark = len(self.frames)
        async with self.session.post(
            f"{self.base_url}/_debug/conversation/{self.chat_id}/installation", json={}
        ) as response:
            assert response.status == 200
        return mark

    async def say(self, text: str) -> int:
        mark = len(self.frames)
        async with self.session.post(
            f"{self.base_url}/_conversation/v1/conversations/{self.chat_id}/messages",
            json={"from": {"id": self.user_id}, "text": text, "textFormat": "plain"},
        ) as response:
            assert response.status == 200, await response.text()
        return mark

    async def submit(self, card_message_id: str, value: dict[str, Any]) -> int:
        """Press a card's Action.Submit, as the playground's UI does."""
        mark = len(self.frames)
        async with self.session.post(
            f"{self.base_url}/_conversation/v1/submit",
            json={"conversation": {"id": self.chat_id}, "from": {"id": self.user_id},
                  "replyToId": card_message_id, "value": value},
        ) as response:  # fmt: skip
            assert response.status == 200, await response.text()
        return mark

    async def next_card(
        self, containing: str, since: int, within: float = 15
    ) -> tuple[str, dict[str, Any]]:
        """Wait for a new card whose text contains `containing`; return its id and content."""
        frame = await self.wait_for(
            lambda f: (
                f.get("action") == "createMessage"
                and bool(f["message"].get("attachments"))
                and containing in json.dumps(f["message"]["attachments"][0]["content"])
            ),
            since,
            within,
        )
        return frame["message"]["messageId"], frame["message"]["attachments"][0]["content"]

    async def new_cards(
        self, containing: str, since: int, *, count: int, within: float = 15
    ) -> list[tuple[str, dict[str, Any]]]:
        """Wait for `count` new cards containing the text; return their ids and contents."""

        def matching() -> list[Frame]:
            return [
                f
                for f in self.frames[since:]
                if f.get("action") == "createMessage"
                and f["message"].get("attachments")
                and containing in json.dumps(f["message"]["attachments"][0]["content"])
            ]

        await self._until(lambda: len(matching()) >= count, within)
        found = matching()
        if len(found) < count:
            raise TimeoutError(f"{len(found)} of {count} cards containing {containing!r} arrived")
        return [
            (f["message"]["messageId"], f["message"]["attachments"][0]["content"])
            for f in found[:count]
        ]

    async def next_text(self, containing: str, since: int, within: float = 15) -> str:
        frame = await self.wait_for(
            lambda f: (
                f.get("action") == "createMessage"
                and containing in (f["message"].get("text") or "")
            ),
            since,
            within,
        )
        return str(frame["message"]["text"])

    async def replaced(self, message_id: str, since: int, within: float = 15) -> dict[str, Any]:
        """Wait for the card with this id to be replaced; return the new content."""
        frame = await self.wait_for(
            lambda f: (
                f.get("action") == "updateMessage" and f["message"]["messageId"] == message_id
            ),
            since,
            within,
        )
        return frame["message"]["attachments"][0]["content"]  # type: ignore[no-any-return]


def _describe(frame: Frame) -> str:
    message = frame.get("message", {})
    if message.get("attachments"):
        body = message["attachments"][0]["content"].get("body", [])
        texts = [b.get("text") for b in body if b.get("type") == "TextBlock"][:2]
        return f"{frame.get('action')} card {texts}"
    return f"{frame.get('action')} text {message.get('text', '')[:80]!r}"
