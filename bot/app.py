"""The aiohttp application: one factory builds everything the bot needs and closes it again."""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web
from botbuilder.core import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ChannelAccount
from msrest.exceptions import DeserializationError
from msrest.serialization import Model

from bot.adapter import create_adapter
from bot.auth import AuthenticationUnavailableError, NotAuthenticatedError, authenticate
from bot.handler import AuditBot
from bot.json_body import BodyError, read_json
from bot.limits import MessageRateLimit
from bot.links import LinkMaker
from bot.metrics import OUTBOX_STATES, Metrics
from bot.pages import LINKS, add_pages
from bot.settings import Settings
from delivery.answers import TeamsAdapter
from delivery.leader import (
    AnswerSeconds,
    CountedReplies,
    DatabaseMembers,
    LeaderTimes,
    SendingLeader,
)
from delivery.limits import RateLimiter, SendLimits
from delivery.outcomes import Delivery
from delivery.sender import OutboxSender, default_instance_id
from directory.install import AppInstaller
from directory.sync import nightly_job
from messages.late_replies import OutboxReplies
from messages.request_cards import outbox_renderer
from practice.framework import Framework, load_framework
from practice.month import longest_range
from reports.service import ReportMaker, ReportService
from scheduler.jobs import Cycle
from scheduler.runner import JOBS, CycleScheduler
from storage import outbox
from storage.bot_state import SqlConversationState, SqlStorage
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
METRICS = web.AppKey("metrics", Metrics)
REPORTS = web.AppKey("reports", ReportService)


def _problem(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    request.app[METRICS].refused.labels(reason).inc()
    return web.json_response({"error": message}, status=status)


def tenant_of(activity: Activity) -> str | None:
    """Return the Microsoft Entra tenant an activity comes from, as Teams states it."""
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = channel_data.get("tenant") if isinstance(channel_data.get("tenant"), dict) else None
    found = (tenant or {}).get("id") or getattr(activity.conversation, "tenant_id", None)
    return str(found).lower() if found else None


def _authentication_view(body: dict[str, Any]) -> Activity:
    """Return an activity holding only the fields the token check reads, each if it is text."""

    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    recipient = body.get("recipient")
    role = text(recipient.get("role")) if isinstance(recipient, dict) else None
    return Activity(
        channel_id=text(body.get("channelId")),
        service_url=text(body.get("serviceUrl")),
        recipient=ChannelAccount(role=role),
    )


async def messages(request: web.Request) -> web.StreamResponse:
    """Hand an activity from Teams to the adapter, after checking it is one and genuine."""
    if request.content_type != "application/json":
        return _problem(request, 415, "content_type", "expected application/json")
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _problem(request, 413, "too_large", "the body is too large")
    try:
        body = read_json(data)
    except BodyError as error:
        return _problem(request, 400, error.reason, str(error))
    if not isinstance(body, dict):
        return _problem(request, 400, "not_activity", "the body is not an activity")
    adapter = request.app[ADAPTER]
    # The token is checked before the body is read as an activity: a stranger's request
    # costs a bounded parse and a signature check, and never reaches botbuilder's models.
    try:
        authenticated = await authenticate(
            adapter, _authentication_view(body), request.headers.get("Authorization", "")
        )
    except NotAuthenticatedError:
        return _problem(request, 401, "not_authenticated", "not authorised")
    except AuthenticationUnavailableError:
        return _problem(request, 503, "keys_unavailable", "cannot check the token now; try again")
    try:
        activity = Activity().deserialize(body)
    except (DeserializationError, TypeError, ValueError, AttributeError):
        return _problem(request, 400, "not_activity", "the body is not an activity")
    if not activity.type or not isinstance(activity.type, str):
        return _problem(request, 400, "not_activity", "the activity has no type")
    tenants = request.app[SETTINGS].tenants
    if tenants and tenant_of(activity) not in tenants:
        log.warning("refused an activity from tenant %s, not ours", tenant_of(activity))
        return _problem(request, 403, "foreign_tenant", "this bot serves one organisation only")
    metrics = request.app[METRICS]
    started = time.perf_counter()
    outcome = "error"
    try:
        response = await adapter.process_activity(authenticated, activity, request.app[BOT].on_turn)
        outcome = "ok"
    finally:
        metrics.turns.labels(activity.type, outcome).inc()
        metrics.turn_seconds.labels(activity.type).observe(time.perf_counter() - started)
    if response is not None:
        # An invoke's answer: a botbuilder model, or plain JSON such as our refusal.
        body = response.body
        data = serializer_helper(body) if isinstance(body, Model) else body
        return web.json_response(data=data, status=response.status)
    return web.Response(status=201)


async def metrics_page(request: web.Request) -> web.Response:
    """Report the metrics in Prometheus' text format, to a caller with the token if one is set."""
    token = request.app[SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            return _problem(request, 401, "metrics_token", "not authorised")
    metrics = request.app[METRICS]
    try:
        async with request.app[DATABASE].session() as session:
            counts = await outbox.summary(session=session)
        for state in OUTBOX_STATES:
            metrics.outbox.labels(state).set(getattr(counts, state))
    except Exception as error:  # the metrics still answer when the database does not
        log.warning("could not count the outbox for metrics: %s", type(error).__name__)
    return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")


async def healthz(_request: web.Request) -> web.Response:
    """Say the process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Say whether the database is reachable and its schema current."""
    database = request.app[DATABASE]
    try:
        async with asyncio.timeout(5):
            await database.ping()
        current = await asyncio.to_thread(is_current, request.app[SETTINGS].database_url)
    except Exception as error:
        log.warning("readiness check failed: %s", type(error).__name__)
        return web.json_response({"status": "database unreachable"}, status=503)
    if not current:
        return web.json_response({"status": "migrations pending: run pqf-bot migrate"}, status=503)
    return web.json_response({"status": "ready"})


async def _start_metrics_listener(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve /metrics (and the health checks) alone on a port of its own; return its runner."""
    own = web.Application()
    own[SETTINGS] = app[SETTINGS]
    own[DATABASE] = app[DATABASE]
    own[METRICS] = app[METRICS]
    own.router.add_get("/metrics", metrics_page)
    own.router.add_get("/healthz", healthz)
    own.router.add_get("/readyz", readyz)
    runner = web.AppRunner(own, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("metrics on http://%s:%s/metrics", host, port)
    return runner


def _start_sending(
    database: Database,
    settings: Settings,
    sender: OutboxSender | None,
    limiter: RateLimiter,
    adapter: TeamsAdapter,
    now: Callable[[], datetime],
    stop: asyncio.Event,
    metrics: Metrics,
) -> asyncio.Task[None] | None:
    """Send the outbox here, or (on PostgreSQL) take part in choosing the one instance that does.

    SQLite serves one instance: its sender runs, if on. On PostgreSQL every instance beats
    and counts its answers to people, and the one holding the lease sends (delivery.leader).
    """
    metrics.send_rate.set_function(lambda: limiter.budget_rate)
    metrics.send_rate_now.set_function(lambda: limiter.global_rate)
    if database.dialect == "sqlite":
        adapter.replies = limiter
        metrics.send_leader.set(1 if sender is not None else 0)
        if sender is None:
            return None
        return asyncio.create_task(sender.run(stop), name="outbox-sender")
    times = LeaderTimes()
    seconds = AnswerSeconds(times.answers_window)
    adapter.replies = CountedReplies(limiter, seconds, now)
    instance = (
        sender.instance_id
        if sender is not None
        else f"{(settings.instance_name or default_instance_id())[:55]}#{secrets.token_hex(4)}"
    )
    leader = SendingLeader(
        members=DatabaseMembers(database, times.stale),
        instance=instance,
        sender=sender,
        limiter=limiter,
        budget=settings.send_rate,
        seconds=seconds,
        clock=now,
        monotonic=time.monotonic,
        times=times,
    )
    metrics.send_leader.set_function(lambda: 1.0 if leader.leading else 0.0)
    return asyncio.create_task(leader.run(stop), name="sending-leader")


def _count_attempt(metrics: Metrics, outcome: str, status: int) -> None:
    metrics.send_attempts.labels(outcome).inc()
    if status == 429:
        metrics.throttled.inc()


def _roster_sync_job(
    settings: Settings, database: Database, framework: Framework
) -> Callable[[date], Awaitable[Any]] | None:
    """Return the nightly roster sync from Microsoft Graph, if the settings ask for one."""
    missing = settings.graph_missing()
    if missing or settings.graph_mapping_file is None:
        if settings.graph_groups or settings.graph_mapping_file is not None:
            # Half set up: say so, rather than never syncing without a word.
            log.warning(
                "nightly roster sync is off: missing %s%s",
                ", ".join(missing),
                settings.graph_missing_hint(missing),
            )
        return None
    tokens = settings.graph_tokens()
    installer = (
        AppInstaller(
            catalog_app_id=settings.teams_catalog_app_id,
            bot_app_id=settings.app_id,
            tenant_id=settings.app_tenant_id or None,
            service_url=settings.teams_service_url,
            rate=settings.graph_install_rate,
        )
        if settings.teams_catalog_app_id
        else None
    )
    return nightly_job(
        database=database, framework=framework, graph_url=settings.graph_url, tokens=tokens,
        groups=settings.graph_group_ids, mapping_file=settings.graph_mapping_file,
        instance=settings.instance_name, installer=installer,
    )  # fmt: skip


def settle_heap() -> None:
    """Keep what start-up built (it lives as long as the process) out of the collector's way."""
    # The collector's full passes walk every tracked object, and start-up leaves some
    # 190,000 (botbuilder, SQLAlchemy, the framework): each pass would walk them again
    # while a turn, or a month's dispatch making 100,000 rows, waits. Frozen, they are
    # left out; none of them is garbage, as a collection has just run.
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    framework: Framework | None = None,
    clock: Callable[[], datetime] | None = None,
    rate_clock: Callable[[], float] | None = None,
) -> web.Application:
    """Build the web application: database, adapter, bot and routes.

    `clock` is the time of day; `rate_clock` the seconds Teams' rate limits are counted on
    (time.monotonic unless a test runs it ahead for the time its people would take).
    """
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
        longest_report=longest_range(settings.retention_months),
    )
    app[LINKS] = links
    metrics = Metrics(jobs=list(JOBS), send_outcomes=[d.value for d in Delivery])
    app[METRICS] = metrics

    async def resources(app: web.Application) -> AsyncIterator[None]:
        # botbuilder's HTTP calls run on the default thread pool: give it room for every
        # send the outbox sender has in flight, plus the turns' replies.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=SEND_CONCURRENCY + 16, thread_name_prefix="pqf")
        )
        database = Database(settings.database_url)
        adapter = create_adapter(settings, clock=now)
        # Answers Teams will not take during their turn follow through the outbox.
        adapter.late_replies = OutboxReplies(database=database, clock=now, zone=settings.zone)
        adapter.on_answer = lambda outcome: metrics.answers.labels(outcome).inc()
        app[DATABASE] = database
        app[ADAPTER] = adapter
        reports = ReportService(
            database=database, framework=framework, zone=settings.zone, clock=now,
            maker=ReportMaker(
                database=database, framework=framework, zone=settings.zone,
                workers=settings.report_workers,
            ),
        )  # fmt: skip
        app[REPORTS] = reports
        app[BOT] = AuditBot(
            database=database,
            framework=framework,
            conversation_state=SqlConversationState(SqlStorage(database)),
            zone=settings.zone,
            support_contact=settings.support_contact,
            clock=now,
            links=links,
            rate_limit=MessageRateLimit(*settings.user_rate),
            on_rate_limited=metrics.rate_limited.inc,
            reports=reports,
            longest_report=longest_range(settings.retention_months),
        )
        stop = asyncio.Event()
        sender: OutboxSender | None = None
        if settings.run_sender:
            sender = OutboxSender(
                database=database,
                adapter=adapter,
                app_id=settings.app_id,
                limits=SendLimits(global_rate=settings.send_rate, concurrency=SEND_CONCURRENCY),
                instance_id=settings.instance_name,
                render=outbox_renderer(database=database, framework=framework),
                on_attempt=lambda outcome, status: _count_attempt(metrics, outcome, status),
                clock=now,
                rate_clock=rate_clock,
            )
            # Answers to people count in the sender's limits: it leaves them room.
            limiter = sender.limiter
        else:
            # No sender here: the answers keep to Teams' limits on their own.
            limiter = RateLimiter(
                SendLimits(global_rate=settings.send_rate),
                rate_clock or time.monotonic,
                asyncio.sleep,
            )
        background = _start_sending(
            database, settings, sender, limiter, adapter, now, stop, metrics
        )
        metrics_site: web.AppRunner | None = None
        if settings.metrics_port is not None:
            metrics_site = await _start_metrics_listener(app, settings.host, settings.metrics_port)
        scheduler: CycleScheduler | None = None
        if settings.run_scheduler:
            cycle = Cycle(
                database=database, framework=framework, zone=settings.zone,
                instance=settings.instance_name, retention_months=settings.retention_months,
                held=settings.held_retention,
            )  # fmt: skip
            scheduler = CycleScheduler(
                cycle,
                job_time=settings.job_time,
                clock=now,
                on_run=lambda job, outcome: metrics.job_runs.labels(job, outcome).inc(),
                roster_sync=_roster_sync_job(settings, database, framework),
            )
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.shutdown()
        stop.set()
        if background is not None:
            await background
        if metrics_site is not None:
            await metrics_site.cleanup()
        reports.close()
        await database.dispose()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if settings.metrics_on_main_listener:
        app.router.add_get("/metrics", metrics_page)
    add_pages(
        app, settings=settings, framework=framework, database_key=DATABASE, reports_key=REPORTS
    )
    return app
