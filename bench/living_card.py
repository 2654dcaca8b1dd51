"""One living card per audit (issue 18): Connector calls, messages and turn latency, both ways.

    python -m bench.living_card [--quick] [--out build/bench/living_card.json]

Part of `make bench` (`bench/run.py`); SQLite only (`--databases` is accepted and ignored).
`bench/turns.py` measures the criterion step both ways under its open loop, on each database.

The real app (`create_app`, sender and scheduler off) runs in this process behind aiohttp's
test server, against the fake Bot Connector of the tests (`tests/fake_connector.py`). Self-
audits of standard 3 (12 turns: open, the case, 8 criteria, the feedback call, submit) are
done two ways, in the same run on the same machine, alternating:

- **submit**: each answer an `Action.Submit` (a message); the bot replaces the answered card
  (PUT) and posts the next (POST), as cards sent before Universal Actions still are answered;
- **execute**: each answer an `Action.Execute` (an `adaptiveCard/action` invoke); the next
  card comes back in the HTTP answer.

Figures: Connector requests per completed audit, messages left in the chat by one audit (the
request card counted as one), and each turn's latency (POST to its HTTP answer). Then the load:
40 auditors at once doing whole audits by Action.Execute with 5% 429 and 1% 503 injected on
every Connector call (POSTs and PUTs), counting "Sorry" messages and audits that would need
`resume` (a press not answered with the next card, or an audit not submitted at the end).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bench.common import Result, Stopwatch, arguments, percentile, scratch
from bench.turns import TENANT, Person, card_answered, invoke_value, people, prepare
from tests.fake_connector import FakeConnector, FaultPlan
from tests.harness import action, actions

SORRY = "Sorry, something went wrong"
KINDS = ("open", "case", "criterion", "feedback", "submit")


@dataclass
class Done:
    """One audit done one way: its turns' latencies by kind, and what reached the Connector."""

    way: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    connector_calls: int = 0
    messages_left: int = 1  # the request card, sent by the outbox before the audit
    finished: bool = False
    needed_resume: bool = False


def _activity(person: Person, connector_url: str, number: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"in-{person.index}-{number}", "channelId": "msteams", "serviceUrl": connector_url,
        "from": {"id": f"29:bench-{person.index}", "aadObjectId": person.aad_object_id},
        "recipient": {"id": "28:pqf-bench-bot", "name": "PQF Audit Bot"},
        "conversation": {"id": person.conversation_id, "conversationType": "personal",
                         "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}}, **fields,
    }  # fmt: skip


def _kind(number: int) -> str:
    return KINDS[min(number, 2)] if number < 10 else ("feedback" if number == 10 else "submit")


def _answers(card: dict[str, Any], person: Person) -> tuple[str, dict[str, Any]]:
    """Return the button an auditor presses on this card and the inputs they give."""
    titles = [a["title"] for a in actions(card)]
    if "Use this case" in titles:
        return "Use this case", {"case_choice": person.cases[0]}
    if "Submit audit" in titles:
        return "Submit audit", {}
    if "Criterion" in str(card.get("body", ""))[:2000]:
        return "Next", {"rating": "meets", "evidence": "Seen on the file, with the plan."}
    return "Next", {"contacted": "person", "what_they_said": "They felt listened to."}


async def execute_audit(
    client: TestClient,  # type: ignore[type-arg]
    connector: FakeConnector,
    person: Person,
    audit_id: int,
) -> Done:
    """Do a whole audit by Action.Execute on the request card, the card replaced in place."""
    done = Done("execute")
    before = len(connector.calls)
    data: dict[str, Any] = {"pqf": "audit.open", "audit_id": audit_id}
    for number in range(12):
        activity = _activity(
            person, connector.url, number, type="invoke", name="adaptiveCard/action",
            replyToId=f"request-{audit_id}", value=invoke_value(data),
        )  # fmt: skip
        started = time.perf_counter()
        response = await client.post("/api/messages", json=activity)
        answer = await response.read() if response.status == 200 else b""
        done.latencies.setdefault(_kind(number), []).append(time.perf_counter() - started)
        card = card_answered(answer)
        if card is None:
            done.needed_resume = True
            return done
        if number == 11:
            done.finished = "Audit submitted" in str(card)
            break
        title, inputs = _answers(card, person)
        data = {**action(card, title), **inputs}
    done.connector_calls = len(
        [c for c in connector.calls[before:] if c.conversation_id == person.conversation_id]
    )
    done.messages_left += sum(
        1
        for c in connector.calls[before:]
        if c.conversation_id == person.conversation_id and c.delivered
    )
    return done


async def submit_audit(
    client: TestClient,  # type: ignore[type-arg]
    connector: FakeConnector,
    person: Person,
    audit_id: int,
) -> Done:
    """Do a whole audit by Action.Submit: each answer a message, each card a new message."""
    done = Done("submit")
    before = len(connector.calls)
    value: dict[str, Any] = {"pqf": "audit.open", "audit_id": audit_id}
    reply_to = f"request-{audit_id}"
    for number in range(12):
        seen = len(connector.calls)
        activity = _activity(
            person, connector.url, number, type="message", value=value, replyToId=reply_to
        )
        started = time.perf_counter()
        response = await client.post("/api/messages", json=activity)
        done.latencies.setdefault(_kind(number), []).append(time.perf_counter() - started)
        if response.status != 201:
            done.needed_resume = True
            return done
        posted = [
            c for c in connector.calls[seen:]
            if c.delivered and c.body.get("attachments")
            and c.conversation_id == person.conversation_id
        ]  # fmt: skip
        if number == 11:
            updated = [c for c in connector.calls[seen:] if c.method == "PUT"]
            done.finished = any("Audit submitted" in str(c.body) for c in updated)
            break
        if not posted:
            done.needed_resume = True
            return done
        card = posted[-1].body["attachments"][0]["content"]
        reply_to = str(posted[-1].id)
        title, inputs = _answers(card, person)
        value = {**action(card, title), **inputs}
    calls = [c for c in connector.calls[before:] if c.conversation_id == person.conversation_id]
    done.connector_calls = len(calls)
    done.messages_left += sum(1 for c in calls if c.delivered)
    return done


async def _with_app(
    database_url: str,
    work: Callable[[TestClient, FakeConnector], Awaitable[None]],  # type: ignore[type-arg]
) -> None:
    from bot.app import create_app
    from bot.settings import load_settings
    from practice.framework import load_framework

    settings = load_settings(
        env_file=None, DATABASE_URL=database_url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false", PQF_USER_RATE_LIMIT="1000/1",
    )  # fmt: skip
    connector = await FakeConnector().start()
    client = TestClient(TestServer(create_app(settings, framework=load_framework(None))))
    await client.start_server()
    try:
        await work(client, connector)
    finally:
        await client.close()
        await connector.close()


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q / 100) * 1000, 1)


async def run(
    result: Result, database_url: str, auditors: list[Person], audits: dict[int, list[int]],
    rounds: int, load: int,
) -> None:  # fmt: skip
    """Measure both ways, then the load with faults."""
    # The second audit of each auditor is last month's: nothing answered yet.
    fresh = {p.index: audits[p.index][1] for p in auditors}
    done: list[Done] = []

    async def both_ways(client: TestClient, connector: FakeConnector) -> None:  # type: ignore[type-arg]
        for number in range(rounds):
            first, second = auditors[2 * number], auditors[2 * number + 1]
            ways = [(execute_audit, first), (submit_audit, second)]
            for way, person in ways if number % 2 else reversed(ways):
                done.append(await way(client, connector, person, fresh[person.index]))

    await _with_app(database_url, both_ways)
    for way in ("submit", "execute"):
        mine = [d for d in done if d.way == way]
        assert all(d.finished for d in mine), f"an audit done by {way} did not finish"
        result.table(
            "Per completed audit (12 turns)",
            {"answered by": way, "audits": len(mine),
             "Connector requests": statistics.median_low(d.connector_calls for d in mine),
             "messages left in the chat": statistics.median_low(d.messages_left for d in mine)},
        )  # fmt: skip
        for kind in KINDS:
            values = [v for d in mine for v in d.latencies.get(kind, [])]
            result.table(
                "Turn latency (ms, POST to its answer; fake Connector answering at once)",
                {"answered by": way, "turn": kind, "turns": len(values),
                 "p50": _ms(values, 50), "p90": _ms(values, 90), "max": _ms(values, 100)},
            )  # fmt: skip
    executed = [d for d in done if d.way == "execute"]
    result.goal(
        "Connector requests during an audit", "0", str(max(d.connector_calls for d in executed)),
        all(d.connector_calls == 0 for d in executed),
    )  # fmt: skip
    result.goal(
        "messages left in the chat by one audit", "1",
        str(max(d.messages_left for d in executed)),
        all(d.messages_left == 1 for d in executed),
    )  # fmt: skip

    loaded: list[Done] = []
    sorry = 0
    calls = 0

    async def under_faults(client: TestClient, connector: FakeConnector) -> None:  # type: ignore[type-arg]
        nonlocal sorry, calls
        connector.faults = FaultPlan(
            seed=18, throttle=0.05, server_error=0.01, server_errors=(503,), updates=True
        )
        people_ = auditors[2 * rounds :]
        loaded.extend(
            await asyncio.gather(
                *(execute_audit(client, connector, p, fresh[p.index]) for p in people_)
            )
        )
        sorry = sum(1 for text in connector.texts() if SORRY in text)
        calls = len(connector.calls)

    with Stopwatch() as watch:
        await _with_app(database_url, under_faults)
    finished = sum(1 for d in loaded if d.finished)
    needing_resume = sum(1 for d in loaded if d.needed_resume or not d.finished)
    latencies = [v for d in loaded for values in d.latencies.values() for v in values]
    result.table(
        f"{load} auditors at once, 5% 429 + 1% 503 on every Connector call",
        {"audits finished": finished, "needing resume": needing_resume, "Sorry messages": sorry,
         "Connector requests": calls, "turns": len(latencies), "p50 ms": _ms(latencies, 50),
         "p99 ms": _ms(latencies, 99), "seconds": round(watch.seconds, 1)},
    )  # fmt: skip
    result.goal(
        f"{load} concurrent auditors under 5% 429 + 1% 503", "0 Sorry, 0 needing resume",
        f"{sorry} Sorry, {needing_resume} needing resume, {finished}/{load} submitted",
        sorry == 0 and needing_resume == 0 and finished == load,
    )  # fmt: skip


def main() -> None:
    options = arguments(__doc__ or "")
    result = Result("living_card", "One living card per audit")
    folder = scratch("living_card")
    rounds, load = (4 if options.quick else 12), 40
    auditors = people(2 * rounds + load)
    database_url = f"sqlite:///{folder}/living.db"
    with Stopwatch() as watch:
        audits = prepare(folder, database_url, auditors, 2)
        asyncio.run(run(result, database_url, auditors, audits, rounds, load))
    result.seconds = watch.seconds
    if options.out:
        result.write(options.out)


if __name__ == "__main__":
    main()
