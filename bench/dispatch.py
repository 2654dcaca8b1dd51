"""Benchmark 2: plan a month's audit requests for a large roster and send them to Teams.

Method. A roster of 2,000 (and 10,000) staff in the framework's role mix, 30 (150) teams,
supervisors, 10-25 cases per practitioner and the previous twelve months' audits (so the
draws must avoid recently audited cases and recent peer pairs) is written to a new SQLite
or PostgreSQL database in bulk. For October 2026 (standard 2: case draws for managers,
peer pairs for practitioners) the benchmark times `plan_month` alone (the pure planning,
on the inputs `dispatch_month` reads) and the whole `dispatch_month` (reading the inputs,
planning, writing the audit requests, their history and the outbox rows in one
transaction), the latter in a fresh child process, as the scheduler would run it inside
the bot, so that its peak memory is measured too. `plan_month` is also timed for July
2027 (standard 10, where managers draw supervision records instead of cases).

Then the real bot (`python -m admin serve`, sender on, scheduler off, default
`PQF_SEND_RATE`) sends the 2,000-staff month to the test suite's fake Connector, which
enforces Teams' limits (50 requests/s per tenant, and each chat's) and injects 5% 429s
(half with Retry-After) and 1% 5xx. Deliveries are counted at the fake, by the audit each
request card carries.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import Connection

from bench.common import (
    Result,
    Stopwatch,
    arguments,
    database,
    free_port,
    peak_rss_mb,
    scratch,
)
from practice.calendar import AuditMonth, audits_in_month
from practice.dispatch import dispatch_key, plan_month
from practice.framework import Framework, load_framework
from practice.month import Month
from scheduler.jobs import Cycle, dispatch_month
from storage import roster
from storage.database import Database, sync_url
from storage.dispatch import dispatch_inputs
from storage.migrate import upgrade
from storage.models import (
    AuditRequest,
    AuditStatus,
    CaseRecord,
    CaseStatus,
    OutboxMessage,
    OutboxStatus,
    Staff,
)
from tests.fake_connector import FakeConnector, FaultPlan

MONTH = "2026-10"  # standard 2, a peer month: case draws and peer pairs
SUPERVISION_MONTH = "2027-07"  # standard 10: managers draw supervision records
DISPATCH_SEED = "bench/dispatch"
ZONE = ZoneInfo("Europe/London")
FULL_SIZES = (2_000, 10_000)
QUICK_SIZES = (500,)
# Per 1,000 staff, as in the 1,000-staff plan test; practitioners make up the rest.
ROLES_PER_THOUSAND = {
    "DIR": 2, "SM": 8, "SVM": 30, "AP": 40, "PDAP": 10, "MOD": 6,
    "OT": 200, "ASCP": 150, "OTA": 54,
}  # fmt: skip
PRACTITIONERS = ("SW", "OT", "ASCP", "OTA")
STAFF_PER_TEAM = 67
CASES_PER_PRACTITIONER = (10, 25)
# 5% throttled (half with Retry-After), 1% server errors: the mix.
THROTTLED_WITH_RETRY_AFTER, THROTTLED, SERVER_ERRORS = 0.025, 0.025, 0.01
TEAMS_TENANT_LIMIT = 50
GOAL_PLAN_SECONDS = 2.0
GOAL_RATE = 45.0
DEFAULT_SEND_RATE = 48.0  # PQF_SEND_RATE's default (answers to people are counted in it)
GOAL_RSS_MB = 200.0


def _year_and_number(month: str) -> tuple[int, int]:
    parsed = Month.parse(month)
    return parsed.year, parsed.number


# What profiling found and what changed, with the figures before and after.
PROFILE_NOTES = (
    "Before and after, planning (py-spy and timers on dispatch_month, 10,000 staff, SQLite, "
    "this machine): reading the inputs took 1.6-2.1 s, building 160,000 CaseCandidate "
    "objects and 10,000 ORM staff and streaming a year of audits through Python; writing "
    "took 1.2-1.5 s. Now the roster is read as columns, the case query itself leaves out "
    "cases closed too long ago and those audited in the last twelve months (in id order, "
    "so a seed draws alike on PostgreSQL), the cases are held as columns of numbers and "
    "built only when drawn, the draw is a lazy Fisher-Yates shuffle instead of shuffling "
    "the whole list, supervision draws try people at random instead of filtering the "
    "roster for each manager (plan_month for standard 10: 0.73 -> 0.04 s), the status "
    "history is one INSERT ... SELECT, and rows are built a batch at a time. Whole "
    "dispatch_month: 3.6-4.1 s -> 1.3-1.7 s (SQLite), about 2.9 s "
    "-> 1.7-2.2 s (PostgreSQL) across runs. On PostgreSQL about 0.6 s of that was the "
    "server storing 32,000 rows, 18 MB of them request cards, and 0.35 s building those "
    "cards: the design was the limit. So the design changed: the dispatch queues each "
    "request card unmade (the outbox row names the audit) and the sender makes it as it "
    "sends it, 48 a second, from the audit as it is then "
    "(messages.request_cards.outbox_activity; "
    "tested to make the very card the dispatch made). Whole dispatch_month, 10,000 staff, "
    "one run each before and after on the same day: SQLite 1.27 -> 0.81 s, PostgreSQL "
    "1.72 -> 1.15 s; the send rate is unchanged (46.9 requests/s).",
    "Before and after, memory: the child that runs dispatch_month used to hold only the "
    "storage and scheduler modules (127 MB before the dispatch); it now loads the whole "
    "bot (bot.app: botbuilder, aiohttp, dialogs, 156 MB), so its peak is what the bot's "
    "would be. Measured so, the old code peaked at 201-213 MB and, with the bigger heap, "
    "took 2.2 s on PostgreSQL: the collector's full passes walked every start-up object. "
    "`pqf-bot serve` now freezes its start-up heap once started (bot.app.settle_heap; the "
    "child does the same), and the case columns take about 3 MB where the rows took 20: "
    "peak 181-185 MB.",
    "Before and after, sending: the sender halved its rate for 10 s on every 429, so 5% "
    "random 429s held it near 21 delivered/s; it now slows down only when 429s are 15% or "
    "more of the last 5 s of answers. The default PQF_SEND_RATE was 45, keeping 5 of "
    "Teams' 50 requests/s idle for answers to people: 43.5 requests/s, 40.6 delivered/s. "
    "Now the bot's own answers are counted in the sender's window as they are made "
    "(delivery/answers.py TeamsAdapter), so the default is 48 and the dispatch yields to them.",
)


# -- the roster --------------------------------------------------------------------------


@dataclass
class Workforce:
    """Rows for the staff, case and audit tables, ready for bulk inserts."""

    staff: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier months' audits
    sent: list[dict[str, Any]] = field(default_factory=list)  # their request cards


def role_counts(size: int) -> dict[str, int]:
    """Return how many of each role a roster of this size has."""
    counts = {role: max(1, round(size * n / 1000)) for role, n in ROLES_PER_THOUSAND.items()}
    counts["SW"] = size - sum(counts.values())
    return counts


def workforce(framework: Framework, size: int, seed: int = 2) -> Workforce:
    """Return a roster of `size` staff with cases and a year of audits, drawn from a seed."""
    rng = random.Random(seed)
    today = audits_in_month(framework, *_year_and_number(MONTH))[0].requests_on
    now = datetime.now(UTC)
    teams = [f"Locality Team {n:03d}" for n in range(max(4, size // STAFF_PER_TEAM))]
    counts = role_counts(size)
    rows: list[dict[str, Any]] = []
    by_role: dict[str, list[int]] = {role: [] for role in counts}
    team_managers: dict[str, list[int]] = {team: [] for team in teams}

    def add(role: str, team: str, supervisor: int | None) -> None:
        staff_id = len(rows) + 1
        roll = rng.random()
        rows.append({
            "id": staff_id, "email": f"staff{staff_id}@example.com",
            "aad_object_id": aad_of(staff_id), "name": f"Staff Member {staff_id}",
            "role_code": role, "team": team, "supervisor_id": supervisor,
            "active": roll >= 0.01,
            "on_leave_until": today + timedelta(days=rng.randint(0, 20)) if roll > 0.96 else None,
            "created_at": now, "updated_at": now,
        })  # fmt: skip
        by_role[role].append(staff_id)

    # Supervisors first, so every supervisor_id names a row already written.
    for _ in range(counts["DIR"]):
        add("DIR", "Directorate", None)
    for _ in range(counts["SM"]):
        add("SM", "Leadership", rng.choice(by_role["DIR"]))
    for n in range(counts["SVM"]):
        add("SVM", teams[n % len(teams)], rng.choice(by_role["SM"]))
        team_managers[teams[n % len(teams)]].append(len(rows))
    for n in range(counts["AP"]):
        team = teams[n % len(teams)]
        add("AP", team, rng.choice(team_managers[team] or by_role["SVM"]))
        team_managers[team].append(len(rows))
    for role, team in (("PDAP", "Practice Development"), ("MOD", "Learning and Development")):
        for _ in range(counts[role]):
            add(role, team, rng.choice(by_role["SM"]))
    for role in PRACTITIONERS:
        for _ in range(counts[role]):
            team = rng.choice(teams)
            add(role, team, rng.choice(team_managers[team] or by_role["SVM"]))

    cases: list[dict[str, Any]] = []
    own_cases: dict[int, list[int]] = {}
    for role in PRACTITIONERS:
        for worker in by_role[role]:
            mine = own_cases.setdefault(worker, [])
            for _ in range(rng.randint(*CASES_PER_PRACTITIONER)):
                case_id = len(cases) + 1
                roll = rng.random()
                closed_on = (
                    None if roll < 0.7
                    else today - timedelta(days=rng.randint(1, 80)) if roll < 0.85
                    else today - timedelta(days=rng.randint(120, 400))
                )  # fmt: skip
                cases.append({
                    "id": case_id, "reference": f"C{case_id:07d}",
                    "team": rows[worker - 1]["team"], "allocated_worker_id": worker,
                    "status": CaseStatus.OPEN if closed_on is None else CaseStatus.CLOSED,
                    "closed_on": closed_on, "added_by_auditor": False, "updated_at": now,
                })  # fmt: skip
                mine.append(case_id)
    found = Workforce(staff=rows, cases=cases)
    _add_history(found, framework, by_role, own_cases, rng, now)
    return found


def aad_of(staff_id: int) -> str:
    """Return a made-up Entra object id for a member of staff."""
    return f"00000000-0000-0000-0000-{staff_id:012d}"


def _months_before(month: str, count: int) -> Iterator[tuple[int, int]]:
    year, number = _year_and_number(month)
    for _ in range(count):
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
        yield year, number


def _add_history(
    found: Workforce,
    framework: Framework,
    by_role: dict[str, list[int]],
    own_cases: dict[int, list[int]],
    rng: random.Random,
    now: datetime,
) -> None:
    """Add the audits of the eleven months before, as earlier dispatches would have."""
    roles = {r.code: r for r in framework.roles}
    case_ids = [c["id"] for c in found.cases]
    supervised = [s["id"] for s in found.staff if s["supervisor_id"] is not None]
    active = {s["id"] for s in found.staff if s["active"]}

    def add(audit: AuditMonth, auditor: int, slot: int, kind: str, **what: int | None) -> None:
        key = dispatch_key(audit.month, audit.standard, auditor, slot)
        roll = rng.random()
        found.history.append({
            "month": audit.month, "standard": audit.standard, "kind": kind,
            "framework_version": framework.version, "auditor_id": auditor,
            "case_id": what.get("case_id"), "subject_worker_id": what.get("subject_id"),
            "status": AuditStatus.SUBMITTED if roll < 0.85
            else AuditStatus.IN_PROGRESS if roll < 0.9 else AuditStatus.REQUESTED,
            "due_on": audit.due_on, "dispatch_key": key, "voluntary": False,
            "team": "", "source": "bot", "requested_at": now, "current_step": "case",
            "card_seq": 0, "updated_at": now,
        })  # fmt: skip
        # Sent long ago, and emptied a month after sending, as retention does.
        found.sent.append({
            "idempotency_key": f"history:{key}", "recipient_id": auditor,
            "purpose": "audit_request", "period": audit.month, "activity": "{}",
            "status": OutboxStatus.SENT, "attempts": 1, "last_error": "",
            "created_at": now, "sent_at": now,
        })  # fmt: skip

    for year, number in _months_before(MONTH, 11):
        for audit in audits_in_month(framework, year, number):
            standard = framework.standard(audit.standard)
            supervision = standard is not None and standard.subject == "supervision"
            for code, members in by_role.items():
                role = roles[code]
                for auditor in members:
                    if auditor not in active:
                        continue
                    if audit.additional:
                        quota = 1 if code in audit.roles else 0
                    else:
                        quota = role.monthly_audits if role.audit_kind == "sampled" else 0
                    for slot in range(1, quota + 1):
                        if supervision:
                            add(audit, auditor, slot, "sampled", subject_id=rng.choice(supervised))
                        else:
                            add(audit, auditor, slot, "sampled", case_id=rng.choice(case_ids))
                    if role.audit_kind != "practitioner" or audit.additional:
                        continue
                    if audit.practitioner_kind == "self":
                        add(audit, auditor, 1, "self", subject_id=auditor,
                            case_id=rng.choice(own_cases[auditor]))  # fmt: skip
                    else:
                        add(audit, auditor, 1, "peer", subject_id=rng.choice(members))


# -- the database --------------------------------------------------------------------------


def seed_database(url: str, found: Workforce) -> None:
    """Write the roster, cases and history in bulk (a blocking connection, for speed)."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            tables: list[tuple[Any, list[dict[str, Any]]]] = [
                (Staff.__table__, found.staff),  # type: ignore[attr-defined]
                (CaseRecord.__table__, found.cases),  # type: ignore[attr-defined]
                (AuditRequest.__table__, found.history),  # type: ignore[attr-defined]
                (OutboxMessage.__table__, found.sent),  # type: ignore[attr-defined]
            ]
            for table, rows in tables:
                for start in range(0, len(rows), 5_000):
                    connection.execute(insert(table), rows[start : start + 5_000])
            _advance_sequences(connection)
    finally:
        engine.dispose()


def _advance_sequences(connection: Connection) -> None:
    # The staff and case ids were given explicitly: PostgreSQL's sequences must catch up.
    if connection.dialect.name != "postgresql":
        return
    for table in ("staff", "case_record"):
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
        )


async def store_conversations(url: str, staff_ids: Sequence[int], service_url: str) -> None:
    """Store each person's personal chat, as the bot does when they install the app."""
    db = Database(url)
    try:
        async with db.session() as session:
            for staff_id in staff_ids:
                stored = await roster.remember_conversation(
                    session=session,
                    aad_object_id=aad_of(staff_id),
                    reference=roster.ChatReference(
                        channel_id="msteams",
                        service_url=service_url,
                        conversation_id=f"a:chat{staff_id}",
                        tenant_id="t",
                        teams_user_id=f"29:staff{staff_id}",
                        bot_id="28:bot",
                    ),
                )
                assert stored
    finally:
        await db.dispose()


# -- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanFigures:
    """The pure planning of one month: how many requests, how long (median of runs)."""

    requests: int
    seconds: float


async def time_plan(url: str, framework: Framework, month: str, runs: int) -> PlanFigures:
    """Time `plan_month` alone on the inputs `dispatch_month` would read."""
    audits = audits_in_month(framework, *_year_and_number(month))
    db = Database(url)
    try:
        async with db.session() as session:
            inputs, _ = await dispatch_inputs(session=session, framework=framework, audits=audits)
    finally:
        await db.dispose()
    times: list[float] = []
    requests = 0
    for _ in range(runs):
        with Stopwatch() as watch:
            plan = plan_month(framework, inputs, DISPATCH_SEED)
        times.append(watch.seconds)
        requests = len(plan.requests)
    return PlanFigures(requests, statistics.median(times))


@dataclass(frozen=True)
class DispatchFigures:
    """One `dispatch_month`, measured in the child process that ran it."""

    requests: int
    seconds: float
    rss_before_mb: float  # the child's peak after imports and before the dispatch
    peak_rss_mb: float


def dispatch_in_child(url: str, month: str) -> DispatchFigures:
    """Run and time `dispatch_month` (in a fresh process: see `dispatch_elsewhere`)."""
    return asyncio.run(_dispatch(url, month))


async def _dispatch(url: str, month: str) -> DispatchFigures:
    framework = load_framework()
    db = Database(url)
    try:
        cycle = Cycle(database=db, framework=framework, zone=ZONE, instance="bench")
        # As in the bot, whose scheduler has worked out the calendar before any job runs:
        # the first call loads the `holidays` package's every country (about 0.3 s).
        audits_in_month(framework, *_year_and_number(month))
        # And whose memory holds the whole bot (botbuilder, aiohttp, the dialogs and cards),
        # so that the peak measured is the bot's, not a lighter process's.
        importlib.import_module("bot.app").settle_heap()  # as `pqf-bot serve` does
        before = peak_rss_mb(os.getpid())
        with Stopwatch() as watch:
            report = await dispatch_month(cycle, month, seed=DISPATCH_SEED)
        assert report.ran
        return DispatchFigures(
            int(report.summary["requests"]), watch.seconds, before, peak_rss_mb(os.getpid())
        )
    finally:
        await db.dispose()


async def dispatch_elsewhere(url: str, month: str) -> DispatchFigures:
    """Run `dispatch_month` in a new process, so its time and memory are its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, dispatch_in_child, url, month)


# -- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendFigures:
    """What the fake Connector saw while the bot sent a month's request cards."""

    send_rate: float  # PQF_SEND_RATE
    messages: int
    delivered: int
    seconds: float
    sustained_per_s: float  # deliveries per second, up to the 95th-percentile delivery
    requests_per_s: float  # every POST Teams would count, faults included, same span
    overall_per_s: float  # every delivery over the whole run, the retries' tail included
    busiest_second: int
    injected_429: int
    injected_5xx: int
    over_limit: int
    lost: int
    duplicated: int
    undeliverable: int
    peak_rss_mb: float


def busiest_window(times: Sequence[float], seconds: float = 1.0) -> int:
    """Return the most requests that arrived within any window of this length."""
    ordered = sorted(times)
    busiest, first = 0, 0
    for last, arrived in enumerate(ordered):
        while ordered[first] <= arrived - seconds:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


def audit_of(activity: dict[str, Any]) -> int | None:
    """Return the audit a request card asks for (its Start button's audit id)."""
    for attachment in activity.get("attachments") or []:
        for action in attachment.get("content", {}).get("actions", []):
            audit_id = action.get("data", {}).get("audit_id")
            if isinstance(audit_id, int):
                return audit_id
    return None


class BotProcess:
    """`python -m admin serve` sending the outbox (no scheduler), logging to a file."""

    def __init__(self, url: str, folder: Path, send_rate: float) -> None:
        self.port = free_port()
        self.log_path = folder / "bot.log"
        # Only what this run sets: no PQF_* or DATABASE_URL from the caller's shell.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PQF_", "MICROSOFT_", "DATABASE_URL"))
        }
        env = {
            **inherited,
            "DATABASE_URL": url,
            "PQF_ENVIRONMENT": "development",
            "PQF_HOST": "127.0.0.1",
            "PQF_PORT": str(self.port),
            "PQF_RUN_SCHEDULER": "false",
            "PQF_RUN_SENDER": "true",
            "PQF_SEND_RATE": f"{send_rate:g}",
            "PQF_INSTANCE_NAME": "bench-sender",
            "PQF_LOG_FORMAT": "text",
        }
        with self.log_path.open("ab") as log:
            # Started in the scratch folder, so no .env file there changes its settings.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "admin", "serve"], cwd=folder, env=env,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def wait_ready(self, within: float = 60.0) -> None:
        """Wait until the bot answers /healthz."""
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    async with client.get(f"http://127.0.0.1:{self.port}/healthz") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"the bot did not start within {within} s; see {self.log_path}")

    def check_alive(self) -> None:
        """Fail if the bot has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the bot exited with {self.process.returncode}; see {self.log_path}"
            )

    async def stop(self) -> None:
        """Stop the bot as a service manager would (SIGTERM), killing it if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while self.process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


async def requeue(url: str) -> None:
    """Put the month's request cards back in the outbox as never sent (for another run)."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    db = Database(url)
    try:
        async with db.session() as session:
            await session.exec(
                update(table)
                .where(table.c.period == MONTH, table.c.purpose == "audit_request")
                .values(
                    status=OutboxStatus.PENDING,
                    attempts=0,
                    last_error="",
                    sent_activity_id=None,
                    next_attempt_at=None,
                    claimed_until=None,
                    claimed_by=None,
                    sent_at=None,
                )
            )
            await session.commit()
    finally:
        await db.dispose()


async def outbox_state(db: Database, month: str) -> dict[str, int]:
    """Count the month's request cards in the outbox by status."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    async with db.session() as session:
        connection = await session.connection()
        rows = await connection.execute(
            select(table.c.status, func.count())
            .where(table.c.period == month, table.c.purpose == "audit_request")
            .group_by(table.c.status)
        )
        return {str(status): int(count) for status, count in rows}


async def send_month(
    url: str, folder: Path, staff_ids: Sequence[int], seed: int, send_rate: float
) -> SendFigures:
    """Let the bot send the month's outbox to a fake Connector; count what arrives there."""
    connector = await FakeConnector(
        enforce_limits=True,
        faults=FaultPlan(
            seed=seed,
            throttle_with_retry_after=THROTTLED_WITH_RETRY_AFTER,
            throttle=THROTTLED,
            server_error=SERVER_ERRORS,
        ),
    ).start()
    db = Database(url)
    try:
        await store_conversations(url, staff_ids, connector.url)
        messages = (await outbox_state(db, MONTH)).get(OutboxStatus.PENDING, 0)
        bot = BotProcess(url, folder, send_rate)
        try:
            await bot.wait_ready()
            deadline = time.monotonic() + 60 + messages / 20
            while (await outbox_state(db, MONTH)).get(OutboxStatus.PENDING, 0):
                bot.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the outbox was not sent in time; see {bot.log_path}")
                await asyncio.sleep(0.5)
            # Room for a late duplicate to show up, before the bot stops.
            await asyncio.sleep(1.0)
            rss = peak_rss_mb(bot.process.pid)
        finally:
            await bot.stop()
        return await _count_deliveries(db, connector, messages, rss, send_rate)
    finally:
        await db.dispose()
        await connector.close()


async def _count_deliveries(
    db: Database, connector: FakeConnector, messages: int, rss: float, send_rate: float
) -> SendFigures:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    async with db.session() as session:
        connection = await session.connection()
        rows = list(
            await connection.execute(
                select(table.c.audit_id, table.c.status).where(
                    table.c.period == MONTH, table.c.purpose == "audit_request"
                )
            )
        )
    delivered_calls = [c for c in connector.calls if c.delivered]
    delivered = Counter(audit_of(c.body) for c in delivered_calls)
    arrivals = sorted(c.arrived for c in delivered_calls)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    # The steady part: the last few per cent are retries waiting out Retry-After or
    # back-off, alone at the end, which says nothing about the rate the sender keeps.
    steady_end = arrivals[math.ceil(0.95 * len(arrivals)) - 1] if arrivals else float("nan")
    steady = steady_end - arrivals[0] if arrivals else float("nan")
    posts = [c.arrived for c in connector.calls if c.method == "POST"]
    faults = connector.faults_answered()
    expected = {audit_id for audit_id, _ in rows}
    return SendFigures(
        messages=messages,
        delivered=sum(delivered.values()),
        send_rate=send_rate,
        seconds=round(span, 1),
        sustained_per_s=round(sum(1 for a in arrivals if a <= steady_end) / steady, 1),
        requests_per_s=round(sum(1 for a in posts if a <= steady_end) / steady, 1),
        overall_per_s=round(len(arrivals) / span, 1),
        busiest_second=busiest_window(posts),
        injected_429=faults["429"] + faults["429+retry-after"],
        injected_5xx=faults["502"] + faults["503"] + faults["504"],
        over_limit=connector.limit_rejections,
        lost=sum(1 for audit_id in expected if not delivered[audit_id]),
        # Twice the same card, or a card for no queued audit at all.
        duplicated=sum(n - 1 for n in delivered.values())
        + sum(n for a, n in delivered.items() if a not in expected),
        undeliverable=sum(1 for _, status in rows if status == OutboxStatus.UNDELIVERABLE),
        peak_rss_mb=round(rss, 1),
    )


# -- the run -------------------------------------------------------------------------------


async def measure(
    kind: str, size: int, send_rates: Sequence[float], folder: Path, result: Result
) -> None:
    """Plan the month for one roster on one kind of database, and send it at each rate."""
    framework = load_framework()
    with Stopwatch() as building:
        found = workforce(framework, size)
    with database(kind, folder, f"dispatch_{kind}_{size}") as url:
        with Stopwatch() as seeding:
            upgrade(url)
            seed_database(url, found)
        print(
            f"[dispatch] {kind} {size} staff: {len(found.cases)} cases, "
            f"{len(found.history)} earlier audits; built in {building.seconds:.1f} s, "
            f"stored in {seeding.seconds:.1f} s",
            flush=True,
        )
        plan = await time_plan(url, framework, MONTH, runs=3)
        supervision = await time_plan(url, framework, SUPERVISION_MONTH, runs=3)
        dispatched = await dispatch_elsewhere(url, MONTH)
        assert dispatched.requests == plan.requests, "the dispatch planned something else"
        result.table(
            "Planning",
            {
                "database": kind,
                "staff": size,
                "cases": len(found.cases),
                "requests": dispatched.requests,
                "plan_s": round(plan.seconds, 3),
                "dispatch_s": round(dispatched.seconds, 2),
                "supervision_requests": supervision.requests,
                "supervision_plan_s": round(supervision.seconds, 3),
            },
        )
        result.table(
            "Memory",
            {
                "process": f"dispatch_month, {size:,} staff ({kind})",
                "peak_rss_mb": round(dispatched.peak_rss_mb, 1),
                "before_dispatch_mb": round(dispatched.rss_before_mb, 1),
            },
        )
        if not send_rates:
            return
        staff_ids = [s["id"] for s in found.staff]
        for number, rate in enumerate(send_rates):
            if number:  # the same month again, from a fresh outbox
                await requeue(url)
            sent = await send_month(url, folder, staff_ids, seed=size, send_rate=rate)
            _record_sending(result, kind, size, sent)


def _record_sending(result: Result, kind: str, size: int, sent: SendFigures) -> None:
    result.table(
        "Sending",
        {
            "database": kind,
            "staff": size,
            "PQF_SEND_RATE": f"{sent.send_rate:g}",
            "messages": sent.messages,
            "delivered": sent.delivered,
            "seconds": sent.seconds,
            "sustained_per_s": sent.sustained_per_s,
            "requests_per_s": sent.requests_per_s,
            "overall_per_s": sent.overall_per_s,
            "busiest_second": sent.busiest_second,
            "injected_429": sent.injected_429,
            "injected_5xx": sent.injected_5xx,
            "over_limit_429": sent.over_limit,
            "lost": sent.lost,
            "duplicated": sent.duplicated,
            "undeliverable": sent.undeliverable,
        },
    )
    result.table(
        "Memory",
        {
            "process": f"pqf-bot serve sending {sent.messages:,} messages ({kind})",
            "peak_rss_mb": sent.peak_rss_mb,
            "before_dispatch_mb": "",
        },
    )


def judge(result: Result, quick: bool) -> None:
    """Record the issue's goals against the figures measured."""
    planning = result.tables.get("Planning", [])
    largest = [r for r in planning if r["staff"] == max(FULL_SIZES)]
    if largest:
        worst = max(r["dispatch_s"] for r in largest)
        worst_plan = max(max(r["plan_s"], r["supervision_plan_s"]) for r in largest)
        result.goal(
            "planning 10,000 staff (the whole dispatch_month: inputs, plan, requests, outbox)",
            f"< {GOAL_PLAN_SECONDS:g} s",
            f"{worst:.2f} s (slowest database); plan_month alone {worst_plan:.3f} s",
            worst < GOAL_PLAN_SECONDS,
        )
    elif quick:
        result.notes.append("--quick: no 10,000-staff roster, so the planning goal is not judged.")
    sending = result.tables.get("Sending", [])
    if sending:
        busiest = max(r["busiest_second"] for r in sending)
        over = sum(r["over_limit_429"] for r in sending)
        slowest = min(sending, key=lambda r: float(r["requests_per_s"]))
        # Teams' limit counts requests, and "90% of the limit" is 45 of its 50 requests a
        # second; with 6% of requests refused by the injected faults (and sent again),
        # deliveries can be at most 94% of that.
        result.goal(
            f"sustained send rate (PQF_SEND_RATE={DEFAULT_SEND_RATE:g}, the default)",
            f">= {GOAL_RATE:g} requests/s (90% of Teams' {TEAMS_TENANT_LIMIT}), "
            f"never over {TEAMS_TENANT_LIMIT}/s",
            f"{slowest['requests_per_s']} requests/s, {slowest['sustained_per_s']} "
            f"delivered/s ({slowest['database']}); busiest second {busiest} requests, "
            f"{over} refused for going over a limit",
            float(slowest["requests_per_s"]) >= GOAL_RATE
            and busiest <= TEAMS_TENANT_LIMIT
            and over == 0,
            "deliveries are 94% of requests by construction (6% refused by the injected "
            "faults and sent again): 45 delivered/s would need 47.9 requests/s, 96% of the "
            "limit",
        )
        lost = sum(r["lost"] for r in sending)
        result.goal("no message lost", "0", str(lost), lost == 0)
        duplicated = sum(r["duplicated"] for r in sending)
        result.goal("no message duplicated", "0", str(duplicated), duplicated == 0)
    memory = result.tables.get("Memory", [])
    if memory:
        peak = max(memory, key=lambda r: float(r["peak_rss_mb"]))
        result.goal(
            "peak RSS of the bot process",
            f"< {GOAL_RSS_MB:g} MB",
            f"{peak['peak_rss_mb']} MB ({peak['process']})",
            float(peak["peak_rss_mb"]) < GOAL_RSS_MB,
        )


async def main() -> int:
    """Run the benchmark and print (and, with --out, write) its figures."""
    args = arguments(__doc__.splitlines()[0] if __doc__ else "monthly dispatch")
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    result = Result(name="dispatch", title="Monthly dispatch")
    folder = scratch("dispatch")
    with Stopwatch() as whole:
        for kind in kinds:
            for size in sizes:
                # The smaller roster's month is sent at the default rate on each database.
                rates = [DEFAULT_SEND_RATE] if size == min(sizes) else []
                await measure(kind, size, rates, folder, result)
    result.seconds = round(whole.seconds, 1)
    judge(result, args.quick)
    result.notes += PROFILE_NOTES
    if args.out:
        result.write(args.out)
    print(f"[dispatch] done in {result.seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
