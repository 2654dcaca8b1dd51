"""Benchmark 4, delivery under Teams' faults: answers that survive throttling, and a killed sender.

Answers. 40 simulated auditors complete self-audits at once through /api/messages of the
real bot (`pqf-bot serve`, running its outbox sender) while a fake Bot Connector in this
process enforces Teams' rate limits and refuses 5% of every call with 429 (half of them
with Retry-After: 1) and 1% with 503: answers (POST), card updates (PUT) and the outbox's
proactive messages alike. Each auditor thinks 1-3 s before pressing a card's button
(people take far longer), waits for the bot's HTTP answer, then for the next card, which
may come a little later through the outbox; with no card after 30 s it types `resume`, as
a person would. Counted: "Sorry, something went wrong" messages, audits that needed
`resume`, cards delivered twice, turn times (POST to answer), the answers the bot tried
again or left to the outbox (its /metrics), and how long auditors waited for a card.

Recovery. 341 messages for 341 people and two senders side by side (child processes, the
default lease and heartbeat, 22 requests/s each), with the same faults;
one is killed with SIGKILL a third of the way through. Counted: the messages it had
claimed, the seconds from the kill until the other sender had claimed the last of them,
messages lost, messages delivered twice, and how many of those Teams had accepted before
the database recorded them (the one case the sender's guarantee allows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlmodel import col, select

from bench.common import ROOT, Result, Stopwatch, arguments, database, percentile, scratch
from bench.turns import EVIDENCE, TENANT, Child, Person, _bot_env, people, prepare
from delivery.limits import SendLimits
from storage import outbox, roster
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus, Staff
from tests.fake_connector import FakeConnector, FaultPlan, Recorded

AUDITORS = 40
MESSAGES = 341
THINK = (1.0, 3.0)  # seconds an auditor takes before pressing a button
CARD_PATIENCE = 30.0  # seconds an auditor waits for the next card before typing resume
SORRY = "Sorry, something went wrong"
# The Retry-After of the throttled half: 1 s, and then 10 s, longer than a turn can wait.
RETRY_AFTERS = ("1", "10")


def _faults(seed: int, retry_after: str = "1") -> FaultPlan:
    """Return what Teams does to every call: 5% 429 (half with Retry-After), 1% 503."""
    return FaultPlan(
        seed=seed, throttle_with_retry_after=0.025, retry_after=retry_after, throttle=0.025,
        server_error=0.01, server_errors=(503,), updates=True,
    )  # fmt: skip


# -- answers under faults -----------------------------------------------------------------


def _step_action(card: dict[str, Any]) -> dict[str, Any] | None:
    """Return the data of a step card's forward button (Next, Start, Submit), if it is one."""
    pending: list[Any] = [card.get("actions", []), card.get("body", [])]
    while pending:
        for item in pending.pop(0):
            if not isinstance(item, dict):
                continue
            data = item.get("data")
            if (
                # Sent as a message, as a card from before Action.Execute is still answered
                # (bench/living_card.py measures the Action.Execute way).
                item.get("type") in ("Action.Submit", "Action.Execute")
                and isinstance(data, dict)
                and "seq" in data
                and data.get("nav") in ("next", "submit")
            ):
                return data
            for key in ("actions", "items", "body", "columns"):
                if isinstance(item.get(key), list):
                    pending.append(item[key])
    return None


@dataclass
class Tally:
    """What the auditors went through."""

    turns: list[float] = field(default_factory=list)  # seconds from POST to answer
    card_waits: list[float] = field(default_factory=list)  # answer to next card, seconds
    completed: int = 0
    resumed: int = 0
    failed_posts: int = 0


class Auditor:
    """One person doing their audits in their chat, card by card."""

    def __init__(
        self, person: Person, audits: list[int], connector: FakeConnector, seed: int
    ) -> None:
        self.person = person
        self.audits = audits
        self.connector = connector
        self.cursor = 0  # connector calls already looked at
        self.number = 0
        self.random = random.Random(seed)

    async def run(self, session: aiohttp.ClientSession, bot_url: str, tally: Tally) -> None:
        """Complete every audit; resume when a card does not come."""
        await asyncio.sleep(self.random.uniform(0, THINK[1]))  # not all at the same instant
        for audit_id in self.audits:
            answered = await self._turn(
                session, bot_url, tally, {"pqf": "audit.open", "audit_id": audit_id}, None
            )
            while True:
                found = await self._next(audit_id, answered, tally)
                if found is None:
                    tally.resumed += 1
                    answered = await self._turn(session, bot_url, tally, None, None, "resume")
                    continue
                if isinstance(found, str):  # "is submitted"
                    tally.completed += 1
                    break
                call, data = found
                await asyncio.sleep(self.random.uniform(*THINK))
                answered = await self._turn(session, bot_url, tally, self._answer(data), call.id)

    def _answer(self, data: dict[str, Any]) -> dict[str, Any]:
        answer = dict(data)
        kind = data.get("pqf")
        if kind == "audit.case":
            answer["case_choice"] = self.person.cases[0]
        elif kind == "audit.criterion":
            answer.update(rating="meets", evidence=EVIDENCE)
        elif kind == "audit.feedback":
            answer.update(contacted="person", what_they_said="They felt listened to.",
                          suitable_for_report="true")  # fmt: skip
        elif kind == "audit.involvement":
            answer["how"] = "joint_in_person"
        return answer

    async def _turn(
        self,
        session: aiohttp.ClientSession,
        bot_url: str,
        tally: Tally,
        value: dict[str, Any] | None,
        reply_to: str | None,
        text: str | None = None,
    ) -> float:
        """Post one activity as Teams would; return when it was answered."""
        self.number += 1
        activity: dict[str, Any] = {
            "type": "message", "id": f"in-{self.person.index}-{self.number}",
            "timestamp": datetime.now(UTC).isoformat(), "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": {"id": f"29:user-{self.person.index:04d}",
                     "aadObjectId": self.person.aad_object_id},
            "conversation": {"id": self.person.conversation_id, "conversationType": "personal",
                             "tenantId": TENANT},
            "recipient": {"id": "28:pqf-bench-bot"}, "channelData": {"tenant": {"id": TENANT}},
        }  # fmt: skip
        if value is not None:
            activity["value"] = value
        if text is not None:
            activity["text"] = text
        if reply_to:
            activity["replyToId"] = reply_to
        started = time.perf_counter()
        async with session.post(f"{bot_url}/api/messages", json=activity) as response:
            await response.read()
            if response.status != 201:
                tally.failed_posts += 1
        answered = time.perf_counter()
        tally.turns.append(answered - started)
        return answered

    async def _next(
        self, audit_id: int, since: float, tally: Tally
    ) -> tuple[Recorded, dict[str, Any]] | str | None:
        """Wait for the audit's next card (or the thank-you); None if it never comes."""
        deadline = time.monotonic() + CARD_PATIENCE
        while time.monotonic() < deadline:
            calls = self.connector.calls
            while self.cursor < len(calls):
                call = calls[self.cursor]
                self.cursor += 1
                if not call.delivered or call.conversation_id != self.person.conversation_id:
                    continue
                if "is submitted" in call.body.get("text", ""):
                    tally.card_waits.append(time.perf_counter() - since)
                    return "submitted"
                attachments = call.body.get("attachments") or []
                card = attachments[0].get("content") if attachments else None
                data = _step_action(card) if isinstance(card, dict) else None
                if data is not None and data.get("audit_id") == audit_id:
                    tally.card_waits.append(time.perf_counter() - since)
                    return call, data
            await asyncio.sleep(0.05)
        return None


async def _metrics(session: aiohttp.ClientSession, bot_url: str) -> dict[str, float]:
    """Return the bot's answer counts by outcome (pqf_answers_total)."""
    async with session.get(f"{bot_url}/metrics") as response:
        text = await response.text()
    found: dict[str, float] = {}
    for outcome, value in re.findall(r'^pqf_answers_total\{outcome="(\w+)"\} (\S+)$', text, re.M):
        found[outcome] = float(value)
    return found


async def _answers(bot_url: str, connector: FakeConnector, audits: dict[int, list[int]],
                   roster_: list[Person]) -> tuple[Tally, dict[str, float], float]:  # fmt: skip
    tally = Tally()
    auditors = [Auditor(p, audits[p.index], connector, seed=p.index) for p in roster_]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        with Stopwatch() as watch:
            await asyncio.gather(*(a.run(session, bot_url, tally) for a in auditors))
        await asyncio.sleep(1.0)  # anything still in the outbox
        counts = await _metrics(session, bot_url)
    return tally, counts, watch.seconds


def measure_answers(
    result: Result, folder: Path, kind: str, audits_each: int, retry_after: str
) -> None:
    """Run the 40 auditors against the bot on one database; record the figures."""
    roster_ = people(AUDITORS)
    with database(kind, folder, "delivery") as url:
        audits = prepare(folder, url, roster_, audits_each)

        async def run() -> tuple[Tally, dict[str, float], float, FakeConnector]:
            connector = await FakeConnector(
                enforce_limits=True, faults=_faults(12, retry_after)
            ).start()
            try:
                env = {**_bot_env(url), "PQF_RUN_SENDER": "true", "PQF_LOG_LEVEL": "INFO"}
                with Child("bot", [sys.executable, "-m", "admin", "serve"], env,
                           folder / f"bot-{kind}.log") as bot:  # fmt: skip
                    tally, counts, seconds = await _answers(bot.url, connector, audits, roster_)
            finally:
                await connector.close()
            return tally, counts, seconds, connector

        tally, counts, seconds, connector = asyncio.run(run())
    delivered = [c for c in connector.calls if c.delivered]
    sorry = sum(1 for c in delivered if SORRY in c.body.get("text", ""))
    stale = sum(1 for c in delivered if "out of date" in c.body.get("text", ""))
    cards = Counter(
        (c.conversation_id, json.dumps(c.body["attachments"][0]["content"], sort_keys=True))
        for c in delivered
        if c.body.get("attachments")
    )
    duplicated = sum(n - 1 for n in cards.values() if n > 1)
    faults = connector.faults_answered()
    over = Counter(c.over for c in connector.calls if c.fault == "limit")
    calls = Counter(c.method for c in connector.calls)
    result.table("Answers under Teams' faults (40 auditors at once)", {
        "database": kind, "Retry-After s": retry_after,
        "audits completed": f"{tally.completed} of {AUDITORS * audits_each}",
        "turns": len(tally.turns), "Sorry messages": sorry, "audits needing resume": tally.resumed,
        "cards delivered twice": duplicated, "out-of-date refusals": stale,
        "turn p50 ms": round(percentile(tally.turns, 0.5) * 1000, 1),
        "turn p99 ms": round(percentile(tally.turns, 0.99) * 1000, 1),
        "turn max ms": round(max(tally.turns) * 1000, 1),
        "card wait p99 s": round(percentile(tally.card_waits, 0.99), 2),
        "card wait max s": round(max(tally.card_waits), 2),
        "answers retried": int(counts.get("retried", 0)),
        "answers via outbox": int(counts.get("queued", 0)),
        "answers failed": int(counts.get("failed", 0)),
        "card updates given up": int(counts.get("not_updated", 0)),
        "Connector calls (POST/PUT)": f"{calls['POST']}/{calls['PUT']}",
        "429 injected": faults["429"] + faults["429+retry-after"], "503 injected": faults["503"],
        "429 over Teams' limits (global/chat)": f"{over['global']}/{over['conversation']}",
        "seconds": round(seconds, 1),
    })  # fmt: skip
    result.goal(
        f"answers survive throttling ({kind}, Retry-After {retry_after} s)",
        "0 Sorry, 0 resume, 0 duplicated cards",
        f"{sorry} Sorry, {tally.resumed} resume, {duplicated} duplicated",
        sorry == 0 and tally.resumed == 0 and duplicated == 0
        and tally.completed == AUDITORS * audits_each,
    )  # fmt: skip


# -- a killed sender ------------------------------------------------------------------------


async def _seed_messages(url: str, connector: FakeConnector) -> list[str]:
    """Add 341 people with a chat and queue one message for each; return the texts."""
    db = Database(url)
    texts: list[str] = []
    try:
        async with db.session() as session:
            for n in range(MESSAGES):
                staff = Staff(email=f"p{n}@bench.example", aad_object_id=f"aad-{n}",
                              name=f"Person {n}", role_code="SW", team="Team")  # fmt: skip
                session.add(staff)
                await session.flush()
                assert staff.id is not None
                await roster.remember_conversation(
                    session=session, aad_object_id=f"aad-{n}",
                    reference=roster.ChatReference(
                        channel_id="msteams", service_url=connector.url,
                        conversation_id=f"a:p{n}", tenant_id=TENANT,
                        teams_user_id=f"29:p{n}", bot_id="28:bot",
                    ),
                )  # fmt: skip
                text = f"message {n:03d}"
                await outbox.enqueue(
                    session=session, key=f"bench:{n}", recipient_id=staff.id, purpose="bench",
                    period="2026-11", activity={"type": "message", "text": text},
                )  # fmt: skip
                texts.append(text)
    finally:
        await db.dispose()
    return texts


async def _rows(url: str) -> list[OutboxMessage]:
    db = Database(url)
    try:
        async with db.session() as session:
            return list(await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))
    finally:
        await db.dispose()


@dataclass
class Recovery:
    claimed: int
    taken_over_s: float
    first_taken_s: float
    lost: int  # never delivered
    unrecorded: int  # not recorded as sent at the end
    duplicated: int
    accepted_unrecorded: int
    seconds: float


async def _recovery(url: str, folder: Path, kind: str) -> Recovery:
    connector = await FakeConnector(enforce_limits=True, faults=_faults(20)).start()
    texts = await _seed_messages(url, connector)
    env = {**os.environ, "PQF_ENVIRONMENT": "development", "MICROSOFT_APP_ID": "",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    # The defaults (lease, heartbeat, send timeout, poll), 22/s each. Two senders side by
    # side, as the sender guarantees; deployed instances choose one sender among them
    # (delivery/leader.py, measured by bench/cluster.py).
    limits = SendLimits()
    timings = [str(t) for t in (limits.lease, limits.heartbeat, limits.send_timeout,
                                limits.poll_interval)]  # fmt: skip
    children: dict[str, asyncio.subprocess.Process] = {}
    started = time.monotonic()
    try:
        for name in ("doomed", "survivor"):
            with (folder / f"sender-{name}-{kind}.log").open("wb") as log:
                children[name] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tests.delivery_sender_child", url, name, *timings,
                    "22", cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
        while len(connector.sent) < MESSAGES // 3:
            if time.monotonic() - started > 120:
                raise RuntimeError("the senders did not get a third of the way")
            await asyncio.sleep(0.02)
        children["doomed"].send_signal(signal.SIGKILL)
        await children["doomed"].wait()
        killed = time.monotonic()
        delivered_before = {c.body.get("text") for c in connector.calls if c.delivered}
        held = {
            m.id: m
            for m in await _rows(url)
            if m.status == OutboxStatus.PENDING and (m.claimed_by or "").startswith("doomed#")
        }
        accepted_unrecorded = sum(
            1 for m in held.values() if json.loads(m.activity)["text"] in delivered_before
        )
        # When each of them was last seen claimed by the dead sender.
        taken_at: dict[int, float] = {}
        while len(taken_at) < len(held) and time.monotonic() - killed < 60:
            for row in await _rows(url):
                if (
                    row.id is not None
                    and row.id in held
                    and row.id not in taken_at
                    and not (row.claimed_by or "").startswith("doomed#")
                ):
                    taken_at[row.id] = time.monotonic() - killed
            await asyncio.sleep(0.1)
        while time.monotonic() - killed < 120:
            rows = await _rows(url)
            if all(r.status != OutboxStatus.PENDING for r in rows):
                break
            await asyncio.sleep(0.2)
        seconds = time.monotonic() - started
    finally:
        for child in children.values():
            if child.returncode is None:
                child.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(child.wait(), 15)
        await connector.close()
    rows = await _rows(url)
    delivered = Counter(c.body.get("text") for c in connector.calls if c.delivered)
    return Recovery(
        claimed=len(held),
        taken_over_s=max(taken_at.values(), default=float("nan")),
        first_taken_s=min(taken_at.values(), default=float("nan")),
        lost=sum(1 for t in texts if delivered[t] == 0),
        unrecorded=sum(1 for r in rows if r.status != OutboxStatus.SENT),
        duplicated=sum(n - 1 for n in delivered.values() if n > 1),
        accepted_unrecorded=accepted_unrecorded,
        seconds=seconds,
    )


def measure_recovery(result: Result, folder: Path, kind: str) -> None:
    """Kill one of two senders mid-dispatch on one database; record the figures."""
    with database(kind, folder, "recovery") as url:
        subprocess.run(
            [sys.executable, "-m", "admin", "migrate"], cwd=folder, check=True,
            env={**os.environ, "DATABASE_URL": url, "PQF_ENVIRONMENT": "development"},
            capture_output=True,
        )  # fmt: skip
        figures = asyncio.run(_recovery(url, folder, kind))
    result.table("A sender killed mid-dispatch (kill -9; 341 messages, two senders)", {
        "database": kind, "claimed by the killed sender": figures.claimed,
        "first taken over after s": round(figures.first_taken_s, 1),
        "all taken over after s": round(figures.taken_over_s, 1),
        "lost": figures.lost, "not recorded as sent": figures.unrecorded,
        "delivered twice": figures.duplicated,
        "of which Teams accepted before the database recorded them":
            figures.accepted_unrecorded,
        "seconds": round(figures.seconds, 1),
    })  # fmt: skip
    result.goal(
        f"a killed sender's messages taken over ({kind})",
        "within 15 s, 0 lost, duplicates only those accepted before recorded",
        f"{figures.taken_over_s:.1f} s, {figures.lost} lost, {figures.duplicated} twice "
        f"({figures.accepted_unrecorded} accepted before recorded)",
        figures.taken_over_s <= 15 and figures.lost == 0 and figures.unrecorded == 0
        and figures.duplicated <= figures.accepted_unrecorded,
    )  # fmt: skip


def main() -> None:
    """Run both measurements on each database and print (and optionally write) the result."""
    options = arguments(__doc__.splitlines()[0] if __doc__ else "delivery under faults")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on kill, as on Ctrl-C
    kinds = [k.strip() for k in options.databases.split(",") if k.strip()]
    result = Result(name="delivery", title="Delivery under Teams' faults")
    folder = scratch("delivery")
    with Stopwatch() as whole:
        for kind in kinds:
            for retry_after in RETRY_AFTERS:
                measure_answers(
                    result, folder, kind, audits_each=1 if options.quick else 2,
                    retry_after=retry_after,
                )  # fmt: skip
            measure_recovery(result, folder, kind)
    result.seconds = round(whole.seconds, 1)
    result.notes.append(
        "Faults on every Connector call: 5% 429 (half with Retry-After: 1 s, or 10 s in the "
        "second run, longer than a turn's 8 s budget), 1% 503, and Teams' own rate limits "
        "enforced (429 'over Teams' limits' counts those)."
    )
    if options.quick:
        result.notes.append("A --quick run: one audit per auditor.")
    print(f"[delivery] done in {result.seconds:.0f} s", flush=True)
    if options.out:
        result.write(options.out)


if __name__ == "__main__":
    main()
