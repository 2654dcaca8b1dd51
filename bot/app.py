"""The aiohttp application: one factory builds everything the bot needs and closes it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from json import JSONDecodeError

from aiohttp import web
from botbuilder.core import ConversationState, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from msrest.exceptions import DeserializationError
from sqlmodel import select

from bot.adapter import create_adapter
from bot.auth import AuthenticationUnavailableError, NotAuthenticatedError, authenticate
from bot.handler import AuditBot
from bot.links import LinkMaker
from bot.outbox_sender import OutboxSender, SendLimits
from bot.pages import LINKS, add_pages
from bot.settings import Settings
from practice.framework import Framework, load_framework
from scheduler.jobs import Cycle
from scheduler.runner import CycleScheduler
from storage.bot_state import SqlStorage
from storage.database import Database
from storage.migrate import is_current

log = logging.getLogger(__name__)

# Teams activities are a few kilobytes; anything far larger is refused before parsing.
MAX_BODY_BYTES = 256 * 1024
# Proactive messages in flight at once (to different people).
SEND_CONCURRENCY = 16

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
FRAMEWORK = web.AppKey("framework", Framework)
ADAPTER = web.AppKey("adapter", CloudAdapter)
BOT = web.AppKey("bot", AuditBot)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def messages(request: web.Request) -> web.StreamResponse:
    """Hand an activity from Teams to the adapter, after checking it is one."""
    if request.content_type != "application/json":
        return _problem(415, "expected application/json")
    try:
        body = await request.json()
    except (JSONDecodeError, UnicodeDecodeError):
        return _problem(400, "the body is not JSON")
    if not isinstance(body, dict):
        return _problem(400, "the body is not an activity")
    try:
        activity = Activity().deserialize(body)
    except (DeserializationError, TypeError, ValueError, AttributeError):
        return _problem(400, "the body is not an activity")
    if not activity.type or not isinstance(activity.type, str):
        return _problem(400, "the activity has no type")
    adapter = request.app[ADAPTER]
    try:
        authenticated = await authenticate(
            adapter, activity, request.headers.get("Authorization", "")
        )
    except NotAuthenticatedError:
        return _problem(401, "not authorised")
    except AuthenticationUnavailableError:
        return _problem(503, "cannot check the token now; try again")
    response = await adapter.process_activity(authenticated, activity, request.app[BOT].on_turn)
    if response is not None:
        return web.json_response(data=serializer_helper(response.body), status=response.status)
    return web.Response(status=201)


async def healthz(_request: web.Request) -> web.Response:
    """Say the process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Say whether the database is reachable and its schema current."""
    database = request.app[DATABASE]
    try:
        async with asyncio.timeout(5):
            async with database.session() as session:
                await session.exec(select(1))
        current = await asyncio.to_thread(is_current, request.app[SETTINGS].database_url)
    except Exception as error:
        log.warning("readiness check failed: %s", type(error).__name__)
        return web.json_response({"status": "database unreachable"}, status=503)
    if not current:
        return web.json_response({"status": "migrations pending: run pqf-bot migrate"}, status=503)
    return web.json_response({"status": "ready"})


def create_app(
    settings: Settings,
    *,
    framework: Framework | None = None,
    clock: Callable[[], datetime] | None = None,
) -> web.Application:
    """Build the web application: database, adapter, bot and routes."""
    framework = framework or load_framework(settings.framework_file)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[FRAMEWORK] = framework

    now = clock or (lambda: datetime.now(UTC))
    links = LinkMaker(
        public_url=settings.links_base,
        secret=settings.link_secret,
        minutes=settings.link_minutes,
        clock=now,
    )
    app[LINKS] = links

    async def resources(app: web.Application) -> AsyncIterator[None]:
        # botbuilder's HTTP calls run on the default thread pool: give it room for every
        # send the outbox sender has in flight, plus the turns' replies.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=SEND_CONCURRENCY + 16, thread_name_prefix="pqf")
        )
        database = Database(settings.database_url)
        adapter = create_adapter(settings)
        app[DATABASE] = database
        app[ADAPTER] = adapter
        app[BOT] = AuditBot(
            database=database,
            framework=framework,
            conversation_state=ConversationState(SqlStorage(database)),
            zone=settings.zone,
            support_contact=settings.support_contact,
            clock=now,
            instance_id=settings.instance_name,
            links=links,
        )
        stop = asyncio.Event()
        sender_task: asyncio.Task[None] | None = None
        if settings.run_sender:
            sender = OutboxSender(
                database=database,
                adapter=adapter,
                app_id=settings.app_id,
                limits=SendLimits(global_rate=settings.send_rate, concurrency=SEND_CONCURRENCY),
                instance_id=settings.instance_name,
            )
            sender_task = asyncio.create_task(sender.run(stop), name="outbox-sender")
        scheduler: CycleScheduler | None = None
        if settings.run_scheduler:
            cycle = Cycle(
                database=database, framework=framework, zone=settings.zone,
                instance=settings.instance_name,
            )  # fmt: skip
            scheduler = CycleScheduler(cycle, job_time=settings.job_time, clock=now)
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.shutdown()
        stop.set()
        if sender_task is not None:
            await sender_task
        await database.dispose()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    add_pages(app, settings=settings, framework=framework, database_key=DATABASE)
    return app
