"""A minimal botbuilder bot, the floor the SDK sets: each message gets a text and one card.

Run as `python -m bench.echo_bot --port P`. It builds its CloudAdapter as `bot/adapter.py`
does with no app id (authentication off), and gives the event loop's default executor the
same room as `bot/app.py` does, because botbuilder's replies to the Connector run there.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web
from botbuilder.core import ActivityHandler, CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

# The same executor size as bot/app.py (SEND_CONCURRENCY + 16), so both bots send alike.
EXECUTOR_WORKERS = 32
ADAPTER = web.AppKey("adapter", CloudAdapter)


@dataclass(frozen=True)
class _AuthConfiguration:
    # The attribute names botbuilder's ConfigurationBotFrameworkAuthentication reads.
    APP_ID: str = ""
    APP_PASSWORD: str = ""
    APP_TYPE: str = "MultiTenant"
    APP_TENANTID: str = ""


class EchoBot(ActivityHandler):  # type: ignore[misc]
    """Answer every message with its text and a small Adaptive Card."""

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        """Reply with one text and one card."""
        text = turn_context.activity.text or "a card submit"
        await turn_context.send_activity(f"You said: {text[:100]}")
        card = {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": "Echo", "wrap": True}],
            "actions": [{"type": "Action.Submit", "title": "Next", "data": {"echo": "next"}}],
        }
        await turn_context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))


async def messages(request: web.Request) -> web.StreamResponse:
    """Hand the request to the adapter, as botbuilder's samples do."""
    response = await request.app[ADAPTER].process(request, request.app[BOT])
    return response if response is not None else web.Response(status=201)


async def healthz(_request: web.Request) -> web.Response:
    """Say the process is alive."""
    return web.json_response({"status": "ok"})


BOT = web.AppKey("bot", EchoBot)


def create_app() -> web.Application:
    """Build the echo bot's web application."""
    app = web.Application()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=EXECUTOR_WORKERS, thread_name_prefix="echo")
        )
        app[ADAPTER] = CloudAdapter(ConfigurationBotFrameworkAuthentication(_AuthConfiguration()))
        app[BOT] = EchoBot()
        yield

    app.cleanup_ctx.append(resources)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    """Serve the echo bot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    web.run_app(create_app(), host=options.host, port=options.port, print=None)


if __name__ == "__main__":
    main()
