"""A local stand-in for the Bot Connector service: records what the bot sends to Teams."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Recorded:
    """One call the bot made to the Connector."""

    method: str
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None


@dataclass
class FakeConnector:
    """Answers the Connector's conversation endpoints and keeps every call."""

    calls: list[Recorded] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/"))

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Return the activities posted (new messages), oldest first."""
        return [c.body for c in self.calls if c.method == "POST"]

    @property
    def updated(self) -> list[dict[str, Any]]:
        """Return the activities that replaced earlier ones."""
        return [c.body for c in self.calls if c.method == "PUT"]

    def cards(self) -> list[dict[str, Any]]:
        """Return the Adaptive Cards posted, oldest first."""
        return [body["attachments"][0]["content"] for body in self.sent if body.get("attachments")]

    def texts(self) -> list[str]:
        return [body["text"] for body in self.sent if body.get("text")]

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(
            Recorded("POST", request.match_info["conversation"], request.match_info.get("activity"),
                     body, request.headers.get("Authorization"))
        )  # fmt: skip
        return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)

    async def _put(self, request: web.Request) -> web.Response:
        body = await request.json()
        activity_id = request.match_info["activity"]
        self.calls.append(
            Recorded("PUT", request.match_info["conversation"], activity_id, body,
                     request.headers.get("Authorization"))
        )  # fmt: skip
        return web.json_response({"id": activity_id})

    async def start(self) -> FakeConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
