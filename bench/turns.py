"""Benchmark 1, turn latency: simulated auditors doing whole audits through /api/messages.

Each database gets a fresh schema, a roster of 200 social workers (imported with
`pqf-bot import-staff` and `import-cases`) and enough self-audit requests of standard 3 for
the run. The real bot (`pqf-bot serve`) and a minimal botbuilder echo bot
(`bench.echo_bot`) run as separate processes and reply to a fake Bot Connector that runs in
this process, answers at once and never throttles; it keeps each conversation's last card,
from which an auditor takes the `seq` and `step` of its next submit, as Teams would.

Two loads, each after a warm-up: a closed loop (200 auditors, each sending its next turn as
soon as the last was answered: the saturation rate) and an open loop (Poisson arrivals at
20 turns/s, each given to an idle auditor: latency from sending the POST to its answer, by
kind of turn). All the bots run at once but only one is loaded at a time: the run goes in
rounds, and in each round every bot takes the closed loop, then every bot the open loop, in
an order that turns each round; a bot's saturation rate is the median of its rounds, and its
ratio to the echo bot the median of the rounds' ratios.

The Execute variant: 40 more auditors answer every card by `Action.Execute` (an
`adaptiveCard/action` invoke, the next card in the HTTP answer, as Teams does since issue 18).
In each round, after the open loops, each real bot takes the same open loop from them, so a
criterion step answered in place is measured beside the `Action.Submit` one (a message, the
answered card replaced and the next posted through the Connector) in the same rounds, against
the same process and database. `bench/living_card.py` measures whole audits both ways.
They also take a closed loop of their own after each bot's. The goals (saturation, open-loop
p50 and p99 against the echo bot) are judged on the Execute variant: a step by Action.Submit
makes about two Connector requests, and Teams' 50 requests/s (the bot keeps to
`PQF_SEND_RATE`, 48) hold such steps to 25-30 a second whatever the CPU, and make some wait
for room when 20 a second arrive at random (the echo bot, which ignores Teams' limits, never
waits). The Action.Submit figures are still shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import ctypes
import functools
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import (
    ROOT,
    Result,
    Stopwatch,
    arguments,
    database,
    free_port,
    peak_rss_mb,
    percentile,
    scratch,
)
from practice.month import Month

AUDITORS = 200
EXECUTORS = 40  # more auditors, answering by Action.Execute (the Execute variant)
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
OPEN_LOOP_RATE = 20.0  # turns per second, offered by all auditors together
STANDARD = 3  # eight criteria: open, case, 8 criteria, feedback call, submit = 12 turns
MONTH = "2026-11"
CASES_EACH = 3
TENANT = "7e4c1a52-0a4e-4d57-9c07-6f6a6f0b0b01"
BOT_ACCOUNT = {"id": "28:pqf-bench-bot", "name": "PQF Audit Bot"}
KINDS = ("open", "case", "criterion", "feedback", "submit")
ALL = "all turns"
MEMORY_GOAL_MB = 200.0
EVIDENCE = (
    "Read the assessment and the case notes for the last three months. The person's own words "
    "about what matters to them are recorded, strengths are named before needs, and the plan "
    "builds on the support their family already gives. Outcomes are specific and reviewed."
)
# What profiling (py-spy on the bot process during the closed loop) found, and what
# changed; the figures are --quick runs on the machine above.
PROFILE_NOTES = (
    "First round of profiling (stop 8; py-spy, 200 Hz, on the bot process during the closed "
    "loop). First run: 39.6 turns/s = 0.48 × echo, open-loop p50 27.5 ms (2.0 × echo), p99 "
    "444 ms (5.8 × echo), peak RSS 211 MB. What dominated the event loop: (1) `audit_detail` "
    "built three `aliased(Staff)` and their joins anew on each call (a quarter of the "
    "loop's CPU, and never found in the compiled cache): now built once with a bound "
    "parameter (storage/audits.py). (2) botbuilder's CloudAdapter builds a Connector client "
    "and a user-token client for every turn (each a requests Session, urllib3 pool, msrest "
    "retry policy and pipeline): about a fifth of the loop. `ReusingAuthentication` "
    "(bot/adapter.py) keeps one per app, service URL and audience, as botbuilder's older "
    "BotFrameworkAdapter did. (3) On SQLite, writers that found the database locked slept "
    "in SQLite's busy handler (up to 100 ms a time) while the lock was free again: one "
    "asyncio lock per engine now queues the writers and wakes the next at once "
    "(storage/database.py). (4) Identifying the sender and checking their stored chat is "
    "one query instead of two (storage/roster.py).",
    "Second round (this page; py-spy on the bot in the closed loop, and on the TestAdapter "
    "harness doing whole audits, which leaves HTTP out). A criterion turn ran 11 SQL "
    "statements and read the audit's detail (a join of seven tables, loaded as ORM "
    "objects) twice, before and after saving the answer; building statements anew each "
    "turn (SQLAlchemy expressions, cache keys) was a seventh of the turn; botbuilder "
    "hashed the conversation state with jsonpickle twice a turn (7%); msrest walked every "
    "node of each outgoing card, checking each against the Connector's 159 model classes "
    "(0.5-0.95 ms a card, two cards a turn). Changes: the audit is not read again after an "
    "answer whose effect is known (every step but the case); the saved rating is not "
    "selected again; the per-turn statements are built once with bound parameters, the "
    "two per-turn UPDATEs run as plain SQL (storage/audits.py, roster.py, bot_state.py); "
    "the conversation state is compared by its stored JSON (`SqlConversationState`); "
    "plain-JSON cards pass msrest unwalked (`JsonContentSerializer`, bot/adapter.py; "
    "tested to give msrest's bytes). A criterion turn now runs 8 statements; in the "
    "harness it went from 12-13 ms to 7 ms, a whole audit from 140-158 ms to 89-99 ms of "
    "CPU.",
    "Before and after, with this benchmark as it now is (--quick, 2 rounds, same day): "
    "before, SQLite 27.5 turns/s = 0.56 × echo, PostgreSQL 33.1 = 0.67 × echo, open-loop "
    "p50 2.93 × and 2.54 × echo, p99 1.53 × and 1.72 ×; after, SQLite 52.0 = 0.99 × echo, "
    "PostgreSQL 50.9 = 0.96 × echo, p50 0.88 × and 1.05 ×, p99 1.10 × and 1.04 ×. The echo "
    "bot is botbuilder as shipped (a new Connector client each turn, msrest's card walk): "
    "ours now spends about as much CPU on a whole audit turn, database and cards included, "
    "as the stock SDK spends on echoing; the bot_cpu_ms_per_turn column says so directly.",
    "The benchmark itself was changed too. The closed loop used to start all 200 auditors "
    "at once: the bot's event loop shares itself among the turns in hand, so turns begun "
    "together ended together and the next 200 began together, and the answers came in "
    "waves a few seconds apart; a window's count depended on how many waves it held (the "
    "echo bot measured 60 to 80 turns/s on one day, and a --quick window counted exactly "
    "one wave of 200). The auditors now start one after another over the warm-up, and the "
    "bots run at once and take turns round by round (above), so the machine's drift falls "
    "on all of them alike.",
    "What remains of a turn's cost: botbuilder's HTTP path (aiohttp, msrest deserialising "
    "the incoming activity, requests sending two replies on executor threads) is now most "
    "of it, then the ORM loading the audit with its people and ratings (a criterion turn "
    "reads 4 times and writes 4). The design's answer to more load than one process's event loop "
    "serves is more processes: `pqf-bot serve` instances on one PostgreSQL behind the "
    "Azure Bot's endpoint (docs/deploy.md, 'More than one instance'); a council's peak (a "
    "few hundred auditors in the last days of a month) is a few turns a second, a tenth "
    "of one process's saturation rate.",
    "The open loop's p99 is set by its slowest ten or so turns, so it moves most from run "
    "to run: the full run of 2026-11-23 12:35 missed it on PostgreSQL (234.8 ms = 1.64 × "
    "echo, while its p95, 73.6 ms, was 0.87 × echo's), and a --quick PostgreSQL run "
    "straight after measured 47.0 ms = 0.75 × echo. What the bot itself adds to its tail, "
    "measured with gc.callbacks in that quick run: a full garbage-collector pass every few "
    "seconds under load, 14-28 ms each, freeing 8,000-15,000 objects held in reference "
    "cycles (turn objects that refer to each other: botbuilder's TurnContext and its turn "
    "state, the ORM session's objects); collections of younger generations take 5-12 ms. "
    "The remaining stalls of 200 ms and more fall on the echo bot too (its p99 was 143 ms "
    "against a p50 of 24 ms): they are the shared machine's.",
)
_NAV_FORWARD = ("next", "submit")
_ECHO_SEQUENCE = ("open", "case", *["criterion"] * 8, "feedback", "submit")
_KIND_OF_CARD = {
    "audit.case": "case",
    "audit.criterion": "criterion",
    "audit.feedback": "feedback",
    "audit.summary": "submit",
}


@dataclass(frozen=True)
class Plan:
    """How long each load runs (seconds), warm-up apart, and in how many rounds."""

    rounds: int
    closed_warmup: float
    closed_seconds: float
    open_warmup: float
    open_seconds: float
    audits_each: int

    @staticmethod
    def of(quick: bool) -> Plan:
        """Return the full plan, or the quick one for trying."""
        if quick:
            return Plan(rounds=2, closed_warmup=3, closed_seconds=4, open_warmup=1,
                        open_seconds=5, audits_each=8)  # fmt: skip
        return Plan(rounds=3, closed_warmup=5, closed_seconds=10, open_warmup=3,
                    open_seconds=15, audits_each=20)  # fmt: skip


# -- the processes ---------------------------------------------------------------------------


def _die_with_parent() -> None:
    # If this benchmark is killed outright, its children must not outlive it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Child:
    """A server in a child process, logging to a file, stopped on leaving its `with` block."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.command = command
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._ticks = os.sysconf("SC_CLK_TCK")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Child:
        with self.log.open("ab") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(
                [*self.command, "--port", str(self.port)], cwd=self.log.parent, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )  # fmt: skip
        try:
            self._wait_until_up(60)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):  # noqa: S310 - local
                    return
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not answer within {timeout} s; see {self.log}")

    def cpu_seconds(self) -> float:
        """Return the CPU time the process has used so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks  # utime, stime

    def peak_rss_mb(self) -> float:
        """Return the process's peak resident memory so far."""
        return peak_rss_mb(self.pid)

    def stop(self) -> None:
        """Stop the process, politely first."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _bot_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "PQF_ENVIRONMENT": "development",
        "MICROSOFT_APP_ID": "",
        "PQF_HOST": "127.0.0.1",
        "PQF_RUN_SCHEDULER": "false",
        "PQF_RUN_SENDER": "false",
        # Simulated auditors answer far faster than people: no per-person limit.
        "PQF_USER_RATE_LIMIT": "1000000/1",
        "PQF_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def _cli(folder: Path, database_url: str, *arguments_: str) -> None:
    """Run a `pqf-bot` command; fail with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "admin", *arguments_], cwd=folder,
        env={**os.environ, **_bot_env(database_url)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pqf-bot {' '.join(arguments_)} failed: {done.stderr or done.stdout}")


# -- the roster ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """One simulated auditor: a social worker with a personal chat and cases of their own."""

    index: int
    aad_object_id: str
    email: str
    cases: tuple[str, ...]

    @property
    def conversation_id(self) -> str:
        return f"personal-{self.index:04d}"


def people(count: int) -> list[Person]:
    """Return the simulated auditors, with fixed ids so runs are alike."""
    made = random.Random(1)
    return [
        Person(
            index=i,
            aad_object_id=str(uuid.UUID(int=made.getrandbits(128), version=4)),
            email=f"auditor{i:04d}@bench.example",
            cases=tuple(f"BENCH-{i:04d}-{c}" for c in range(CASES_EACH)),
        )
        for i in range(count)
    ]


def _staff_csv(auditors: list[Person]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "role", "team", "supervisor_email", "aad_object_id"])
    teams = 10
    for team in range(teams):
        writer.writerow([f"manager{team:02d}@bench.example", f"Manager {team:02d}", "SVM",
                         f"Bench Team {team:02d}", "", ""])  # fmt: skip
    for p in auditors:
        team = p.index % teams
        writer.writerow([p.email, f"Auditor {p.index:04d}", "SW", f"Bench Team {team:02d}",
                         f"manager{team:02d}@bench.example", p.aad_object_id])  # fmt: skip
    return out.getvalue()


def _cases_csv(auditors: list[Person]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["case_reference", "team", "allocated_worker_email", "status", "closed_on"])
    for p in auditors:
        for reference in p.cases:
            writer.writerow([reference, f"Bench Team {p.index % 10:02d}", p.email, "open", ""])
    return out.getvalue()


def _months_back(month: str, count: int) -> str:
    """Return the month `count` months before 'YYYY-MM' (one audit of a standard a month each)."""
    return str(Month.parse(month).plus(-count))


async def _request_audits(
    database_url: str, auditors: list[Person], each: int
) -> dict[int, list[int]]:
    """Ask every auditor for `each` self-audits of the standard, as `pqf-bot request` would.

    One a month, this month's and the months before (nobody is asked for two audits of a
    standard in one month). Auditor n's first audit is already answered up to step n mod 11
    (nothing, the case, the case and some criteria, ... everything but the summary), stored
    as the bot stores it, so that the auditors are spread over the steps of an audit from
    the start, as in a real month, instead of all taking the same kind of turn at the same
    moment.
    """
    from messages.requests import request_audit
    from practice.audit_steps import AuditKind
    from practice.framework import load_framework
    from storage import audits as audit_store
    from storage import roster as roster_store
    from storage.database import Database

    framework = load_framework(None)
    standard = framework.standard(STANDARD)
    assert standard is not None
    today = datetime.now(UTC).date()
    found: dict[int, list[int]] = {}
    store = Database(database_url)
    try:
        async with store.session() as session:
            for p in auditors:
                for number in range(each):
                    requested = await request_audit(
                        session=session, framework=framework, auditor_email=p.email,
                        standard_number=STANDARD, month=_months_back(MONTH, number), today=today,
                        kind=AuditKind.SELF,
                    )  # fmt: skip
                    audit = requested.audit
                    assert audit.id is not None
                    found.setdefault(p.index, []).append(audit.id)
                    done = p.index % 11 if number == 0 else 0
                    if not done:
                        continue
                    case = await roster_store.case_by_reference(
                        session=session, reference=p.cases[0]
                    )
                    auditor = requested.auditor
                    await audit_store.confirm_case(session=session, audit=audit, case=case,
                                                   subject=auditor)  # fmt: skip
                    await audit_store.start(session=session, audit=audit, actor_id=auditor.id or 0)
                    for criterion in standard.criteria[: done - 1]:
                        await audit_store.save_rating(
                            session=session, audit_id=audit.id, criterion_id=criterion.id,
                            rating="meets", evidence=EVIDENCE,
                        )  # fmt: skip
                    if done == 10:
                        await audit_store.save_feedback_call(
                            session=session, audit_id=audit.id, contacted=("person",),
                            what_they_said="They felt listened to.", no_contact_reason="",
                            suitable_for_report=True, complete=True,
                        )  # fmt: skip
    finally:
        await store.dispose()
    return found


def prepare(
    folder: Path, database_url: str, auditors: list[Person], each: int
) -> dict[int, list[int]]:
    """Migrate, import the roster and cases, and request the audits; return audit ids by auditor."""
    _cli(folder, database_url, "migrate")
    staff = folder / "staff.csv"
    staff.write_text(_staff_csv(auditors), encoding="utf-8")
    cases = folder / "cases.csv"
    cases.write_text(_cases_csv(auditors), encoding="utf-8")
    _cli(folder, database_url, "import-staff", str(staff))
    _cli(folder, database_url, "import-cases", str(cases))
    return asyncio.run(_request_audits(database_url, auditors, each))


# -- the fake Bot Connector ------------------------------------------------------------------


@dataclass
class Connector:
    """Answers the Connector's conversation endpoints at once; keeps each chat's last card."""

    cards: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # chat -> (id, body)
    texts: dict[str, bytes] = field(default_factory=dict)  # chat -> last text message
    calls: Counter[str] = field(default_factory=Counter)
    _next_id: int = 0
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        self._next_id += 1
        activity_id = f"m{self._next_id}"
        chat = request.match_info["chat"]
        if b'"attachments"' in body:
            self.cards[chat] = (activity_id, body)
        else:
            self.texts[chat] = body
        self.calls["POST"] += 1
        return web.Response(status=201, body=b'{"id":"%s"}' % activity_id.encode(),
                            content_type="application/json")  # fmt: skip

    async def _put(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls["PUT"] += 1
        return web.Response(status=200, body=b'{"id":"%s"}' % request.match_info["id"].encode(),
                            content_type="application/json")  # fmt: skip

    async def start(self) -> Connector:
        """Listen on a free local port."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v3/conversations/{chat}/activities", self._post)
        app.router.add_post("/v3/conversations/{chat}/activities/{id}", self._post)
        app.router.add_put("/v3/conversations/{chat}/activities/{id}", self._put)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()


# -- the simulated auditors ------------------------------------------------------------------


def invoke_value(data: dict[str, Any]) -> dict[str, Any]:
    """Return what Teams sends when an Action.Execute button with this data is pressed."""
    return {
        "action": {"type": "Action.Execute", "verb": str(data.get("pqf", "")), "data": data},
        "trigger": "manual",
    }


def card_answered(body: bytes) -> dict[str, Any] | None:
    """Return the card an Action.Execute press was answered with (to replace it), if any."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("type") != ADAPTIVE_CARD:
        return None
    card = answer.get("value")
    return card if isinstance(card, dict) else None


def _forward_action(card: dict[str, Any]) -> dict[str, Any] | None:
    """Return the data of the card's Next (or Submit audit) button."""
    pending: list[Any] = [card.get("actions", []), card.get("body", [])]
    while pending:
        items = pending.pop(0)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            data = item.get("data")
            if (
                # Sent as a message, as a card from before Action.Execute is still answered
                # (bench/living_card.py measures the Action.Execute way).
                item.get("type") in ("Action.Submit", "Action.Execute")
                and isinstance(data, dict)
                and data.get("nav") in _NAV_FORWARD
            ):
                return data
            for key in ("actions", "items", "body", "columns"):
                if isinstance(item.get(key), list):
                    pending.append(item[key])
    return None


class Auditor:
    """One person doing audit after audit; knows what their next turn is."""

    def __init__(
        self, person: Person, audits: list[int], echo: bool, *, executes: bool = False
    ) -> None:
        self.person = person
        self.audits = deque(audits)
        self.echo = echo
        self.executes = executes  # presses Action.Execute: the card comes back in the answer
        self.audit_id = self.audits.popleft() if audits else 0
        self.kind = "open"
        self.card_id: str | None = None
        self.action: dict[str, Any] = {}
        # For the echo bot, which sends no audit cards: a place in the audit's 12 turns.
        self.step_index = person.index % 12
        if echo:
            self.kind = _ECHO_SEQUENCE[self.step_index]
        self.turns = 0
        self.problems = 0
        self.finished = 0

    def value(self) -> dict[str, Any]:
        """Return what the next turn's card submit carries."""
        if self.kind == "open":
            return {"pqf": "audit.open", "audit_id": self.audit_id}
        data = dict(self.action)
        if self.kind == "case":
            data["case_choice"] = self.person.cases[0]
        elif self.kind == "criterion":
            data.update(rating="meets", evidence=EVIDENCE)
        elif self.kind == "feedback":
            data.update(contacted="person", what_they_said="They felt listened to.",
                        suitable_for_report="true")  # fmt: skip
        return data

    def activity(self, service_url: str, number: int) -> bytes:
        """Return the activity Teams would post for the next turn."""
        activity: dict[str, Any] = {
            "type": "invoke" if self.executes else "message",
            "id": f"in-{number}",
            "timestamp": datetime.now(UTC).isoformat(),
            "channelId": "msteams",
            "serviceUrl": service_url,
            "from": {
                "id": f"29:user-{self.person.index:04d}",
                "aadObjectId": self.person.aad_object_id,
                "name": f"Auditor {self.person.index:04d}",
            },
            "conversation": {
                "id": self.person.conversation_id,
                "conversationType": "personal",
                "tenantId": TENANT,
            },
            "recipient": BOT_ACCOUNT,
            "channelData": {"tenant": {"id": TENANT}},
            "value": self.value(),
        }
        if self.executes:
            # Every press is on the one card: the request card, which becomes the audit.
            activity.update(name="adaptiveCard/action", value=invoke_value(self.value()),
                            replyToId=f"request-{self.audit_id}")  # fmt: skip
        elif self.card_id is not None and self.kind != "open":
            activity["replyToId"] = self.card_id
        return json.dumps(activity, separators=(",", ":")).encode()

    def advance(self, connector: Connector | None, ok: bool, answer: bytes = b"") -> None:
        """Read the bot's answer and decide the next turn (resuming the audit on a surprise).

        An auditor who presses Action.Execute reads only the HTTP answer (`connector` None).
        """
        self.turns += 1
        if self.echo:
            self._advance_echo()
            return
        if self.executes:
            self._advance_in_place(card_answered(answer) if ok else None)
            return
        assert connector is not None, "an Action.Submit auditor reads its cards at the Connector"
        chat = self.person.conversation_id
        if self.kind == "submit":
            if ok and b"is submitted" in self.texts(connector):
                self.finished += 1
                self._next_audit()
                return
            self._surprised()
            return
        card_id, body = connector.cards.get(chat, ("", b""))
        action: dict[str, Any] | None = None
        if ok and card_id and card_id != self.card_id:
            card = json.loads(body)["attachments"][0]["content"]
            action = _forward_action(card)
        if action is None or action.get("pqf") not in _KIND_OF_CARD:
            self._surprised()
            return
        self.card_id = card_id
        self.action = action
        self.kind = _KIND_OF_CARD[action["pqf"]]

    def texts(self, connector: Connector) -> bytes:
        return connector.texts.get(self.person.conversation_id, b"")

    def _advance_in_place(self, card: dict[str, Any] | None) -> None:
        if self.kind == "submit":
            if card is not None and "Audit submitted" in json.dumps(card):
                self.finished += 1
                self._next_audit()
                return
            self._surprised()
            return
        action = _forward_action(card) if card is not None else None
        if action is None or action.get("pqf") not in _KIND_OF_CARD:
            self._surprised()
            return
        self.card_id = f"request-{self.audit_id}"
        self.action = action
        self.kind = _KIND_OF_CARD[action["pqf"]]

    def _advance_echo(self) -> None:
        self.step_index = (self.step_index + 1) % len(_ECHO_SEQUENCE)
        self.kind = _ECHO_SEQUENCE[self.step_index]
        self.action = {"pqf": f"audit.{self.kind}", "audit_id": self.audit_id, "seq": 1,
                       "step": "case", "nav": "next"}  # fmt: skip
        self.card_id = "m1"

    def _surprised(self) -> None:
        # Anything unexpected (an error, a stale card): open the audit again, which carries
        # on at its first unanswered step, as a person would with `resume`.
        self.problems += 1
        self.kind = "open"

    def _next_audit(self) -> None:
        if not self.audits:
            raise RuntimeError("an auditor ran out of audit requests: raise Plan.audits_each")
        self.audit_id = self.audits.popleft()
        self.kind = "open"
        self.card_id = None


@dataclass
class Sample:
    """One turn: its kind, when it was answered and how long it took."""

    kind: str
    answered: float
    seconds: float
    ok: bool


class Load:
    """Sends the auditors' turns to one bot and records every one."""

    def __init__(self, bot_url: str, connector: Connector, auditors: list[Auditor]) -> None:
        self.bot_url = f"{bot_url}/api/messages"
        self.connector = connector
        self.auditors = auditors
        self.samples: list[Sample] = []
        self._numbers = iter(range(1, 10**9))
        self._session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Load]:
        """Hold the HTTP client open (one keep-alive connection per auditor in flight)."""
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            self._session = session
            yield self
        self._session = None

    async def turn(self, auditor: Auditor) -> Sample:
        """Send an auditor's next turn and wait for the answer."""
        assert self._session is not None
        body = auditor.activity(self.connector.url, next(self._numbers))
        kind = auditor.kind
        started = time.perf_counter()
        async with self._session.post(
            self.bot_url, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            answer = await response.read()
            ok = response.status in (200, 201)
        answered = time.perf_counter()
        auditor.advance(self.connector, ok, answer)
        sample = Sample(kind, answered, answered - started, ok)
        self.samples.append(sample)
        return sample

    async def everyone_once(self) -> None:
        """Have every auditor take one turn at once (their first contact with the bot)."""
        await asyncio.gather(*(self.turn(a) for a in self.auditors))

    async def closed_loop(self, warmup: float, seconds: float) -> list[Sample]:
        """Keep every auditor busy; return the turns answered within the measured window.

        The auditors start one after another over most of the warm-up. Started together,
        they stay in step: the bot's event loop shares itself among the turns in hand, so
        200 alike turns begun together end together, and the next 200 begin together. The
        answers then come in waves a few seconds apart, and a window's count depends on how
        many waves it happens to hold (up to a fifth either way, in runs before this).
        """
        stop = asyncio.Event()
        spread = warmup * 0.6 / len(self.auditors)

        async def keep_going(auditor: Auditor, start_after: float) -> None:
            await asyncio.sleep(start_after)
            while not stop.is_set():
                await self.turn(auditor)

        first = len(self.samples)
        tasks = [
            asyncio.create_task(keep_going(a, n * spread)) for n, a in enumerate(self.auditors)
        ]
        try:
            await asyncio.sleep(warmup)
            window_start = time.perf_counter()
            await asyncio.sleep(seconds)
            window_end = time.perf_counter()
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        return [s for s in self.samples[first:] if window_start <= s.answered <= window_end]

    async def open_loop(
        self, rate: float, warmup: float, seconds: float
    ) -> tuple[list[Sample], int]:
        """Offer Poisson arrivals at `rate` to idle auditors; return the measured turns.

        Also returns how many arrivals found no idle auditor (they are sent when one is).
        """
        idle: list[Auditor] = list(self.auditors)
        waiting = 0
        freed = asyncio.Event()
        arrivals = random.Random(20)
        choices = random.Random(21)
        in_flight: set[asyncio.Task[Sample]] = set()
        measured: list[Sample] = []
        clock = asyncio.get_running_loop().time
        start = clock()
        window_start = start + warmup
        end = window_start + seconds
        due = start

        async def one(auditor: Auditor, sent_at: float) -> Sample:
            try:
                sample = await self.turn(auditor)
            finally:
                idle.append(auditor)
                freed.set()
            if sent_at >= window_start:
                measured.append(sample)
            return sample

        while True:
            due += arrivals.expovariate(rate)
            if due >= end:
                break
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            while not idle:
                waiting += 1
                freed.clear()
                await freed.wait()
            # A random idle auditor, so that each does a varying number of turns and
            # the kinds of turn stay mixed.
            pick = choices.randrange(len(idle))
            idle[pick], idle[-1] = idle[-1], idle[pick]
            task = asyncio.create_task(one(idle.pop(), clock()))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        return measured, waiting


# -- measuring one bot -----------------------------------------------------------------------


@dataclass
class Measured:
    """What one bot did under both loads, over all the rounds."""

    closed_turns: int = 0
    closed_seconds: float = 0.0
    closed_rates: list[float] = field(default_factory=list)  # turns/s, one per round
    # The closed loop of the Execute variant's auditors (none for the echo bot).
    execute_closed_turns: int = 0
    execute_closed_rates: list[float] = field(default_factory=list)
    open_samples: list[Sample] = field(default_factory=list)
    open_seconds: float = 0.0
    open_waiting: int = 0
    problems: int = 0
    audits_submitted: int = 0
    # The Execute variant: its open-loop turns, and the Connector calls of each way's windows.
    execute_samples: list[Sample] = field(default_factory=list)
    connector_calls: dict[str, int] = field(default_factory=dict)
    connector_turns: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    @property
    def rate(self) -> float:
        """Return the median of the rounds' closed-loop rates."""
        return statistics.median(self.closed_rates) if self.closed_rates else 0.0

    @property
    def execute_rate(self) -> float:
        """Return the median of the rounds' closed-loop rates by Action.Execute."""
        return statistics.median(self.execute_closed_rates) if self.execute_closed_rates else 0.0

    @property
    def cpu(self) -> dict[str, tuple[float, float]]:
        """Return each load's CPU use (% of one core): the bot's and the load generator's."""
        return {
            load: (bot / seconds * 100, ours / seconds * 100)
            for load, (bot, ours, seconds) in self.cpu_seconds.items()
        }

    def add_cpu(self, load: str, bot: float, ours: float, seconds: float) -> None:
        """Count CPU seconds used during a load's window of `seconds`."""
        before = self.cpu_seconds.get(load, (0.0, 0.0, 0.0))
        self.cpu_seconds[load] = (before[0] + bot, before[1] + ours, before[2] + seconds)

    def by_kind(self, executed: bool = False) -> dict[str, list[float]]:
        """Return the open-loop latencies (ms) by kind of turn, and of all turns."""
        found: dict[str, list[float]] = {ALL: []}
        for sample in self.execute_samples if executed else self.open_samples:
            found.setdefault(sample.kind, []).append(sample.seconds * 1000)
            found[ALL].append(sample.seconds * 1000)
        return found


async def _cpu_during(
    child: Child, work: Callable[[], Awaitable[Any]]
) -> tuple[Any, float, float, float]:
    """Run the work; return its result, the bot's and this process's CPU seconds, and seconds."""
    bot_before, ours_before = child.cpu_seconds(), time.process_time()
    with Stopwatch() as watch:
        result = await work()
    bot = child.cpu_seconds() - bot_before
    ours = time.process_time() - ours_before
    return result, bot, ours, watch.seconds


@dataclass
class Subject:
    """One bot under test: its process, its Connector, its auditors and what they measured."""

    label: str
    child: Child
    auditors: list[Auditor]
    connector: Connector = field(default_factory=Connector)
    measured: Measured = field(default_factory=Measured)
    load: Load | None = None
    executors: list[Auditor] = field(default_factory=list)  # the Execute variant's auditors
    execute_load: Load | None = None


async def measure(subjects: list[Subject], plan: Plan) -> None:
    """Drive every bot with the warm-up, then closed and open loops, round by round.

    The bots take turns within each round (in a different order each round), so a change
    in the machine's speed during the run (it is shared) falls on all of them alike; each
    round's ratio to the echo bot is taken within the round.
    """
    async with contextlib.AsyncExitStack() as stack:
        for subject in subjects:
            await subject.connector.start()
            stack.push_async_callback(subject.connector.close)
            subject.load = Load(subject.child.url, subject.connector, subject.auditors)
            await stack.enter_async_context(subject.load.session())
            # Every auditor's first turn stores their conversation: part of the warm-up.
            await subject.load.everyone_once()
            if subject.executors:
                subject.execute_load = Load(subject.child.url, subject.connector, subject.executors)
                await stack.enter_async_context(subject.execute_load.session())
                await subject.execute_load.everyone_once()
        for number in range(plan.rounds):
            for subject in _in_turn(subjects, number):
                load = subject.load
                assert load is not None
                measured = subject.measured
                turns, rate = await _closed_round(subject, load, plan, number, "closed")
                measured.closed_turns += turns
                measured.closed_seconds += plan.closed_seconds
                measured.closed_rates.append(rate)
                if subject.execute_load is not None:
                    turns, rate = await _closed_round(
                        subject, subject.execute_load, plan, number, "closed, Action.Execute"
                    )
                    measured.execute_closed_turns += turns
                    measured.execute_closed_rates.append(rate)
            for subject in _in_turn(subjects, number):
                load = subject.load
                assert load is not None
                calls, turns = subject.connector.calls.total(), len(load.samples)
                (samples, waiting), bot, ours, seconds = await _cpu_during(
                    subject.child,
                    functools.partial(
                        load.open_loop, OPEN_LOOP_RATE, plan.open_warmup, plan.open_seconds
                    ),
                )
                measured = subject.measured
                measured.open_samples += samples
                measured.open_seconds += plan.open_seconds
                measured.open_waiting += waiting
                measured.add_cpu("open", bot, ours, seconds)
                _count_calls(measured, "submit", subject.connector.calls.total() - calls,
                             len(load.samples) - turns)  # fmt: skip
            for subject in _in_turn(subjects, number):
                if subject.execute_load is None:
                    continue  # the echo bot has no cards to answer in place
                calls = subject.connector.calls.total()
                turns = len(subject.execute_load.samples)
                executed, _ = await subject.execute_load.open_loop(
                    OPEN_LOOP_RATE, plan.open_warmup, plan.open_seconds
                )
                subject.measured.execute_samples += executed
                _count_calls(
                    subject.measured, "execute", subject.connector.calls.total() - calls,
                    len(subject.execute_load.samples) - turns,
                )  # fmt: skip
    for subject in subjects:
        subject.measured.problems = sum(a.problems for a in subject.auditors + subject.executors)
        subject.measured.audits_submitted = sum(
            a.finished for a in subject.auditors + subject.executors
        )
        subject.measured.peak_rss_mb = subject.child.peak_rss_mb()


async def _closed_round(
    subject: Subject, load: Load, plan: Plan, number: int, name: str
) -> tuple[int, float]:
    """Run one closed loop on a bot, count its CPU under `name`; return its turns and rate."""
    window, bot, ours, seconds = await _cpu_during(
        subject.child, functools.partial(load.closed_loop, plan.closed_warmup, plan.closed_seconds)
    )
    rate = len(window) / plan.closed_seconds
    subject.measured.add_cpu(name, bot, ours, seconds)
    print(
        f"[turns] round {number + 1}, {subject.label}: {name} loop {rate:.1f} turns/s "
        f"(bot CPU {bot / seconds:.0%}, load generator {ours / seconds:.0%})",
        flush=True,
    )
    return len(window), rate


def _count_calls(measured: Measured, way: str, calls: int, turns: int) -> None:
    """Count the Connector calls of a whole open loop (warm-up too) and its turns."""
    measured.connector_calls[way] = measured.connector_calls.get(way, 0) + calls
    measured.connector_turns[way] = measured.connector_turns.get(way, 0) + turns


def _in_turn(subjects: list[Subject], number: int) -> list[Subject]:
    """Return the bots in round `number`'s order (each round starts one further on)."""
    shift = number % len(subjects)
    return subjects[shift:] + subjects[:shift]


def _auditors(
    roster: list[Person], audits: dict[int, list[int]], echo: bool, *, executes: bool = False
) -> list[Auditor]:
    return [Auditor(p, audits.get(p.index, [1]), echo, executes=executes) for p in roster]


def run(folder: Path, kinds: list[str], roster: list[Person], plan: Plan) -> list[Subject]:
    """Start the echo bot and the real bot on a new database of each kind; measure them all."""
    with contextlib.ExitStack() as stack:
        echo = stack.enter_context(
            Child("echo bot", [sys.executable, "-m", "bench.echo_bot"],
                  {"PYTHONPATH": str(ROOT)}, folder / "echo.log")
        )  # fmt: skip
        # The echo bot ignores what it is sent: its auditors only cycle through the kinds.
        submitters, executors = roster[:AUDITORS], roster[AUDITORS:]
        subjects = [Subject("echo", echo, _auditors(submitters, {}, echo=True))]
        for kind in kinds:
            url = stack.enter_context(database(kind, folder, "turns"))
            with Stopwatch() as setup:
                audits = prepare(folder, url, roster, plan.audits_each)
            print(f"[turns] {kind}: roster, cases and {sum(map(len, audits.values()))} "
                  f"requests ready in {setup.seconds:.1f} s", flush=True)  # fmt: skip
            child = stack.enter_context(
                Child("bot", [sys.executable, "-m", "admin", "serve"], _bot_env(url),
                      folder / f"bot-{kind}.log")
            )  # fmt: skip
            subjects.append(
                Subject(
                    kind, child, _auditors(submitters, audits, echo=False),
                    executors=_auditors(executors, audits, echo=False, executes=True),
                )
            )  # fmt: skip
        asyncio.run(measure(subjects, plan))
    return subjects


# -- the report ------------------------------------------------------------------------------


def _ms(value: float) -> float:
    return round(value, 1)


def _ratios(ours: Measured, echo: Measured) -> list[float]:
    """Return each round's closed-loop rate as a fraction of the echo bot's in that round.

    A round in which the echo bot answered nothing within the window (on a loaded machine its
    turns can all end after it) has no ratio: it is left out, not divided by zero.
    """
    return [
        mine / floor
        for mine, floor in zip(ours.closed_rates, echo.closed_rates, strict=True)
        if floor > 0
    ]


def _ratio(ours: Measured, echo: Measured) -> float:
    """Return the median of the rounds' ratios to the echo bot (NaN if no round has one)."""
    ratios = _ratios(ours, echo)
    return statistics.median(ratios) if ratios else float("nan")


def _execute_ratios(ours: Measured, echo: Measured) -> list[float]:
    """Return each round's closed-loop rate by Action.Execute as a fraction of the echo's."""
    return [
        mine / floor
        for mine, floor in zip(ours.execute_closed_rates, echo.closed_rates, strict=True)
        if floor > 0
    ]


def report(result: Result, measured: dict[str, Measured], echo: Measured, plan: Plan) -> None:
    """Add the tables and goals."""
    section = "Closed loop (saturation)"
    for kind, bot, runs in (("none", "echo", echo), *[(k, "ours", m) for k, m in measured.items()]):
        result.table(section, {
            "database": kind, "bot": bot, "turns": runs.closed_turns,
            "seconds": runs.closed_seconds,
            "turns_per_s_by_round": ", ".join(f"{r:.1f}" for r in runs.closed_rates),
            "median_turns_per_s": round(runs.rate, 1),
            "ratio_to_echo_by_round": ", ".join(f"{r:.3f}" for r in _ratios(runs, echo)),
            "median_ratio": round(_ratio(runs, echo), 3),
            "bot_cpu_ms_per_turn": round(runs.cpu["closed"][0] * 10 / runs.rate, 1),
        })  # fmt: skip
    for kind, runs in measured.items():
        if not runs.execute_closed_rates:
            continue
        ratios = _execute_ratios(runs, echo)
        result.table(section, {
            "database": kind, "bot": "ours, Action.Execute", "turns": runs.execute_closed_turns,
            "seconds": runs.closed_seconds,
            "turns_per_s_by_round": ", ".join(f"{r:.1f}" for r in runs.execute_closed_rates),
            "median_turns_per_s": round(runs.execute_rate, 1),
            "ratio_to_echo_by_round": ", ".join(f"{r:.3f}" for r in ratios),
            "median_ratio": round(statistics.median(ratios), 3) if ratios else float("nan"),
            "bot_cpu_ms_per_turn": round(
                runs.cpu["closed, Action.Execute"][0] * 10 / runs.execute_rate, 1
            ),
        })  # fmt: skip

    section = f"Open loop at {OPEN_LOOP_RATE:g} turns/s"
    echo_kinds = echo.by_kind()
    for database_kind, bot, runs in (("none", "echo", echo), *[
        (k, "ours", m) for k, m in measured.items()
    ]):  # fmt: skip
        kinds = runs.by_kind()
        for kind in (*KINDS, ALL):
            values = kinds.get(kind, [])
            result.table(section, {"database": database_kind, "bot": bot, "kind": kind,
                                   "n": len(values),
                                   "p50_ms": _ms(percentile(values, 0.5)),
                                   "p95_ms": _ms(percentile(values, 0.95)),
                                   "p99_ms": _ms(percentile(values, 0.99))})  # fmt: skip

    section = "Open loop, ours ÷ echo"
    for database_kind, ours in measured.items():
        kinds = ours.by_kind()
        for kind in (*KINDS, ALL):
            row: dict[str, Any] = {"database": database_kind, "kind": kind}
            for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                row[f"{name}_ratio"] = round(
                    percentile(kinds.get(kind, []), fraction)
                    / percentile(echo_kinds.get(kind, []), fraction),
                    2,
                )
            result.table(section, row)

    section = "Execute variant: the same open loop, each card answered in place"
    for database_kind, ours in measured.items():
        for way, kinds in (
            ("Action.Submit", ours.by_kind()),
            ("Action.Execute", ours.by_kind(executed=True)),
        ):
            key = "execute" if way == "Action.Execute" else "submit"
            turns = ours.connector_turns.get(key, 0)
            for kind in ("criterion", ALL):
                values = kinds.get(kind, [])
                result.table(section, {
                    "database": database_kind, "answered by": way, "kind": kind,
                    "n": len(values), "p50_ms": _ms(percentile(values, 0.5)),
                    "p95_ms": _ms(percentile(values, 0.95)),
                    "p99_ms": _ms(percentile(values, 0.99)),
                    "connector_calls_per_turn": round(
                        ours.connector_calls.get(key, 0) / turns, 2) if turns else "—",
                })  # fmt: skip
    for database_kind, ours in measured.items():
        by_submit = percentile(ours.by_kind().get("criterion", []), 0.5)
        by_execute = percentile(ours.by_kind(executed=True).get("criterion", []), 0.5)
        calls = ours.connector_calls.get("execute", 0)
        result.goal(
            f"criterion step by Action.Execute ({database_kind})",
            "no Connector call; p50 no slower than Action.Submit's",
            f"{calls} calls; p50 {by_execute:.1f} ms against {by_submit:.1f} ms",
            calls == 0 and by_execute <= by_submit,
        )  # fmt: skip

    section = "CPU during each load (% of one core)"
    for database_kind, bot, runs in (("none", "echo", echo), *[
        (k, "ours", m) for k, m in measured.items()
    ]):  # fmt: skip
        for load, (bot_cpu, our_cpu) in runs.cpu.items():
            result.table(section, {"database": database_kind, "bot": bot, "load": load,
                                   "bot_process": round(bot_cpu),
                                   "load_generator": round(our_cpu)})  # fmt: skip

    section = "Memory"
    result.table(section, {"process": "echo bot", "database": "none",
                           "peak_rss_mb": round(echo.peak_rss_mb, 1)})  # fmt: skip
    for database_kind, ours in measured.items():
        result.table(section, {"process": "bot", "database": database_kind,
                               "peak_rss_mb": round(ours.peak_rss_mb, 1)})  # fmt: skip

    echo_all = echo.by_kind()[ALL]
    for database_kind, ours in measured.items():
        # The audit's steps as Teams sends them since issue 18: Action.Execute, answered in
        # the HTTP response. Steps by Action.Submit each make about two Connector requests,
        # so Teams' 50 requests/s (the bot keeps to PQF_SEND_RATE, 48) hold them to about
        # 25-30 a second whatever the CPU: that loop is shown, not judged against the echo.
        ratios = _execute_ratios(ours, echo)
        ratio = statistics.median(ratios) if ratios else float("nan")
        result.goal(f"saturation rate ({database_kind})", "at least 2/3 of the echo bot's",
                    f"{ours.execute_rate:.1f} turns/s by Action.Execute = {ratio:.2f} × echo "
                    f"({echo.rate:.1f}), median of {len(ratios)} rounds",
                    ratio >= 2 / 3)  # fmt: skip
        # The same, judged on the audit as Teams sends it now; steps by Action.Submit wait
        # their turn within Teams' limit when 20 a second make about 38 requests a second.
        ours_all = ours.by_kind(executed=True)[ALL]
        for name, fraction in (("p50", 0.5), ("p99", 0.99)):
            mine, floor = percentile(ours_all, fraction), percentile(echo_all, fraction)
            result.goal(f"open-loop {name} by Action.Execute ({database_kind})",
                        "within 1.5 × the echo bot's",
                        f"{mine:.1f} ms = {mine / floor:.2f} × echo ({floor:.1f} ms)",
                        mine <= 1.5 * floor)  # fmt: skip
    for database_kind, ours in measured.items():
        result.goal(
            f"peak RSS of the bot ({database_kind})",
            f"under {MEMORY_GOAL_MB:g} MB",
            f"{ours.peak_rss_mb:.0f} MB",
            ours.peak_rss_mb < MEMORY_GOAL_MB,
            "during this benchmark only (benchmark 2 runs its own bot process)",
        )

    problems = {k: m.problems for k, m in measured.items()}
    submitted = {k: m.audits_submitted for k, m in measured.items()}
    waiting = {k: m.open_waiting for k, m in (("echo", echo), *measured.items())}
    result.notes += [
        f"{AUDITORS} simulated social workers, each doing self-audits of standard {STANDARD} "
        "(8 criteria): open, case, 8 criteria, feedback call, submit = 12 turns per audit. "
        "Every submit carries the seq and step of the card the bot last sent to that chat, "
        "read from the fake Bot Connector, and the answered card's id as replyToId, so each "
        "turn replaces the answered card (PUT) and sends the next (POST), as in Teams.",
        "The bot runs as `pqf-bot serve` (development mode, no authentication, scheduler and "
        "outbox sender off, no per-person limit, log level WARNING) on a new database per "
        "kind; the echo bot (bench/echo_bot.py: a botbuilder ActivityHandler on aiohttp with "
        "CloudAdapter, replying with one text and one Adaptive Card) has no database. All run "
        "at once; only one is loaded at a time. Both send their replies through botbuilder's "
        "Connector client, which runs on the event loop's default executor, sized alike "
        "(32 threads).",
        "The load generator and the fake Bot Connector share one asyncio process (aiohttp "
        "client and server, keep-alive connections); the Connector answers every call at "
        "once and never throttles. Latency is measured in the load generator, from sending "
        "the POST to /api/messages to reading its answer (the bot answers after its replies "
        "reached the Connector).",
        f"{plan.rounds} rounds; in each, every bot in turn (the order turning each round) "
        f"takes {plan.closed_warmup:g} s of closed loop before a {plan.closed_seconds:g} s "
        f"measured window, then every bot {plan.open_warmup:g} s of open loop before a "
        f"{plan.open_seconds:g} s measured window. So a change in the shared machine's speed "
        "falls on every bot alike, and each round's ratio to the echo bot is taken within "
        "the round. Warm-up before the first round: every auditor's first turn (it stores "
        "their conversation). Closed loop: turns answered within the window / its length; "
        "a bot's rate is the median of its rounds, its ratio to the echo bot the median of "
        "the rounds' ratios. Open loop (the rounds' turns together): Poisson arrivals at "
        f"{OPEN_LOOP_RATE:g} turns/s (seeded), each given to an idle auditor (never two turns "
        "of one auditor in flight); latency of the turns sent within the windows.",
        f"The Execute variant: {EXECUTORS} more auditors answer every card by Action.Execute "
        "(an adaptiveCard/action invoke on the request card, the next card read from the "
        "invoke's HTTP answer). In each round, after every bot's open loop, each real bot takes "
        "the same open loop from them alone: same rate, warm-up and window. Connector calls "
        "per turn count each way's whole loop, warm-up included.",
        f"Checks: turns that did not get the expected card or confirmation {problems} (the "
        f"auditor then reopens the audit); audits submitted {submitted}; arrivals that found "
        f"no idle auditor {waiting}.",
        *PROFILE_NOTES,
    ]


def _limit_note(result: Result, measured: dict[str, Measured], echo: Measured) -> None:
    parts = []
    for label, runs in (("echo", echo), *measured.items()):
        bot_cpu, our_cpu = runs.cpu["closed"]
        limit = "the bot process" if bot_cpu >= our_cpu else "the load generator"
        parts.append(f"{label}: bot {bot_cpu:.0f}%, load generator {our_cpu:.0f}% ({limit})")
    result.notes.append(
        f"CPU in the closed loop (% of one core; the machine has {os.cpu_count()} cores): "
        + "; ".join(parts)
        + ". A bot process near 100% is saturated: it serves turns on one event loop."
    )
    for label, runs in measured.items():
        turns = runs.connector_turns.get("submit", 0)
        if not turns or not runs.rate:
            continue
        calls = runs.connector_calls.get("submit", 0) / turns
        result.notes.append(
            f"{label}: a step by Action.Submit made {calls:.2f} Connector requests (open loop), "
            f"and the bot keeps its requests within Teams' 50 a second (PQF_SEND_RATE, 48): "
            f"{48 / calls:.0f} such steps a second, an answer that finds no room within its "
            "turn's time being left to the outbox (not running here). So its closed loop by "
            f"Action.Submit ({runs.rate:.1f} turns/s, the bot at {runs.cpu['closed'][0]:.0f}% "
            "of a core) is held by Teams' limit, not the bot's CPU. By Action.Execute (no "
            f"Connector request) it reached {runs.execute_rate:.1f} turns/s, the figure the "
            "saturation goal judges."
        )


def main() -> None:
    """Run the benchmark and print (and optionally write) its result."""
    options = arguments(__doc__.splitlines()[0] if __doc__ else "turn latency")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on kill, as on Ctrl-C
    plan = Plan.of(options.quick)
    kinds = [k.strip() for k in options.databases.split(",") if k.strip()]
    result = Result(name="turns", title="Turn latency")
    folder = scratch("turns")
    roster = people(AUDITORS + EXECUTORS)
    with Stopwatch() as whole:
        subjects = run(folder, kinds, roster, plan)
        echo = subjects[0].measured
        measured = {s.label: s.measured for s in subjects[1:]}
        report(result, measured, echo, plan)
        _limit_note(result, measured, echo)
    result.seconds = round(whole.seconds, 1)
    if options.quick:
        result.notes.append("A --quick run: short windows, figures only indicative.")
    print(f"[turns] done in {result.seconds:.0f} s", flush=True)
    if options.out:
        result.write(options.out)


if __name__ == "__main__":
    main()
