"""Random and malformed activities and card payloads at /api/messages, as several people.

Hypothesis throws well over a thousand requests at a running app (development mode, so no
token is needed, and the tenant restricted) whose database holds audits in every state:
requested, part-answered and submitted, belonging to different people. After every request:

- the answer is never a 5xx;
- an audit changed only if the person who sent the activity is its auditor (nobody writes
  to someone else's audit), and a new audit belongs to the sender;
- a card payload the bot cannot read, an activity of another type, another tenant or a
  refused request changes no audit at all.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from admin.demo_data import cases_csv, staff_csv
from bot.app import ADAPTER, create_app
from bot.settings import load_settings
from cards.submissions import SubmissionError, parse_submission
from practice.framework import Framework
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import (
    AuditRequest,
    AuditStatusChange,
    CriterionRating,
    FeedbackCall,
    Staff,
    WorkerInvolvement,
)
from tests.conftest import TODAY
from tests.fake_connector import FakeConnector
from tests.harness import BotHarness, User, all_text, inputs

TENANT = "00000000-0000-0000-0000-0000000000001"
FOREIGN_TENANT = "99999999-0000-0000-0000-000000000009"
ALEX = User("00000000-0000-0000-0000-0000000000020", "user-id-0", "Alex Wilber")  # SW
MEGAN = User("00000000-0000-0000-0000-0000000000021", "user-id-1", "Megan Bowen")  # SVM
ADELE = User("00000000-0000-0000-0000-0000000000022", "user-id-2", "Adele Vance")  # OT
ISAIAH = User("00000000-0000-0000-0000-0000000000023", "user-id-3", "Isaiah Langer")  # PDAP
PATTI = User("00000000-0000-0000-0000-0000000000024", "user-id-4", "Patti Fernandez")  # MOD
STRANGER = User("99999999-9999-9999-9999-999999999999", "user-id-9", "Not On Roster")
PEOPLE = (ALEX, MEGAN, ADELE, ISAIAH, PATTI, STRANGER)
EXAMPLES = 520  # two requests each: over a thousand in all
COMMANDS = ("help", "my audits", "resume", "cancel", "new audit", "moderation", "report",
            "report 2026-10", "report 2026-11 to 2025-01", "hello", "", " ")  # fmt: skip
STEP = ("audit_id", "seq", "step", "nav")
FIELDS: dict[str, tuple[str, ...]] = {  # what each of the bot's cards submits
    "audit.open": ("audit_id",),
    "command": ("command",),
    "audit.case": (*STEP, "case_choice", "case_reference"),
    "audit.criterion": (*STEP, "rating", "evidence"),
    "audit.feedback": (*STEP, "contacted", "what_they_said", "no_contact_reason",
                       "suitable_for_report"),
    "audit.involvement": (*STEP, "how", "reason"),
    "audit.summary": (*STEP, "edit_step"),
    "audit.download": ("audit_id",),
    "audit.new": ("standard", "what"),
    "moderation.claim": ("audit_id",),
    "moderation.open": ("audit_id",),
    "moderation.answer": ("audit_id", "seq", "nav", "comment", "view_3.1", "reason_3.1"),
}  # fmt: skip
STEPS = ("case", "feedback", "involvement", "summary", "criterion:3.1", "criterion:3.2",
         "criterion:3.8", "criterion:1.1", "criterion:99.1")  # fmt: skip


# -- the app, on its own event loop -----------------------------------------------------------


@dataclass
class Target:
    """A running app, its database and the fake Bot Connector it replies to."""

    loop: asyncio.AbstractEventLoop
    client: TestClient  # type: ignore[type-arg]
    connector: FakeConnector
    database: Database
    staff_by_aad: dict[str, int]
    posts: Counter[int] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    changes: Counter[int] = field(default_factory=Counter)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


async def _prepare(url: str, framework: Framework) -> dict[str, int]:
    """Load the roster and cases, and leave audits requested, part-answered and submitted."""
    database = Database(url)
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(TODAY))).ok
    harness = BotHarness(database=database, framework=framework, clock=lambda: _now())
    from tests.test_audit_dialog import answer_criteria, new_request

    alex_done = await new_request(database, framework, "alexw@example.com")
    turn = await harness.submit(ALEX, None, {"pqf": "audit.open", "audit_id": alex_done})
    choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
    turn = await harness.press(ALEX, turn, "Use this case", case_choice=choice)
    turn = await answer_criteria(harness, ALEX, turn, 8)
    turn = await harness.press(ALEX, turn, "Next", contacted="person", what_they_said="Fine")
    turn = await harness.press(ALEX, turn, "Submit audit")
    assert "is submitted" in turn.text

    adele_started = await new_request(database, framework, "adelev@example.com")
    turn = await harness.submit(ADELE, None, {"pqf": "audit.open", "audit_id": adele_started})
    choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
    turn = await harness.press(ADELE, turn, "Use this case", case_choice=choice)
    turn = await answer_criteria(harness, ADELE, turn, 2)
    assert "Criterion 3 of" in all_text(turn.card)

    # Requested, not opened (of another standard: Alex's one audit of standard 3 is done).
    await new_request(database, framework, "alexw@example.com", standard=2)
    await new_request(database, framework, "meganb@example.com")
    async with database.session() as session:
        staff = {s.aad_object_id: s.id for s in await session.exec(select(Staff))}
    await database.dispose()
    return {aad: id_ for aad, id_ in staff.items() if aad and id_ is not None}


def _now() -> Any:
    from tests.conftest import NOW

    return NOW


async def _start(url: str, framework: Framework) -> Target:
    staff = await _prepare(url, framework)
    connector = await FakeConnector().start()
    app_settings = load_settings(
        env_file=None, DATABASE_URL=url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false", PQF_ALLOWED_TENANTS=TENANT,
        PQF_USER_RATE_LIMIT="1000000/1",
    )  # fmt: skip
    client = TestClient(TestServer(create_app(app_settings, framework=framework, clock=_now)))
    await client.start_server()
    # A thousand activities in six chats would wait for Teams' chat limits (8 requests in
    # 2 s), which this fake Connector does not enforce: what is tested here is elsewhere.
    client.app[ADAPTER].replies = None
    loop = asyncio.get_running_loop()
    return Target(loop, client, connector, Database(url), staff)


async def _stop(target: Target) -> None:
    await target.client.close()
    await target.connector.close()
    await target.database.dispose()


@pytest.fixture
def target(tmp_path: Path, sqlite_template: Path, framework: Framework) -> Iterator[Target]:
    path = tmp_path / "pqf.db"
    shutil.copyfile(sqlite_template, path)
    loop = asyncio.new_event_loop()
    try:
        started = loop.run_until_complete(_start(f"sqlite:///{path}", framework))
        try:
            yield started
        finally:
            loop.run_until_complete(_stop(started))
    finally:
        loop.close()


# -- what the audits look like --------------------------------------------------------------


@dataclass(frozen=True)
class AuditState:
    """An audit's auditor, live card and step, and a fingerprint of all stored about it."""

    auditor_id: int
    seq: int
    step: str
    fingerprint: str


async def snapshot(database: Database) -> dict[int, AuditState]:
    """Return the state of every audit."""
    found: dict[int, list[Any]] = {}
    audits: dict[int, AuditRequest] = {}
    async with database.session() as session:
        for audit in await session.exec(select(AuditRequest)):
            assert audit.id is not None
            audits[audit.id] = audit
            found[audit.id] = [audit.model_dump(mode="json")]
        for model in (CriterionRating, FeedbackCall, WorkerInvolvement, AuditStatusChange):
            rows = sorted(
                (row.model_dump(mode="json") for row in await session.exec(select(model))),
                key=lambda r: json.dumps(r, sort_keys=True),
            )
            for row in rows:
                found[row["audit_id"]].append(row)
    return {
        audit_id: AuditState(
            auditor_id=audits[audit_id].auditor_id,
            seq=audits[audit_id].card_seq,
            step=audits[audit_id].current_step or "case",
            fingerprint=json.dumps(rows, sort_keys=True, default=str),
        )
        for audit_id, rows in found.items()
    }


# -- what Hypothesis throws -----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=8,
)  # fmt: skip
odd_numbers = st.integers(min_value=-3, max_value=2**63) | st.text(max_size=6) | st.none()


def odd_often(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw from `usual` four times in five, else from `odd`."""
    return chance(20).flatmap(lambda is_odd: odd if is_odd else usual)


def chance(percent: int) -> st.SearchStrategy[bool]:
    """Draw True about `percent` times in a hundred (and, shrunk, False)."""
    # Hypothesis favours the ends of a range, so a wide range gives truer odds than 0..4.
    return st.integers(min_value=0, max_value=999).map(lambda n: n >= 1000 - 10 * percent)


plain_text = st.text(st.characters(codec="utf-8"), max_size=60)
short_text = st.text(max_size=40) | st.sampled_from(["", " ", "x" * 25_000, "<at>bot</at>"])


def card_payload(
    data: st.DataObject, audits: dict[int, AuditState], sender: int | None
) -> dict[str, Any]:
    """Draw a card submit: mostly shaped like the bot's own, often subtly wrong."""
    # A quarter are wrong somewhere (a field of the wrong value or shape, or missing); the
    # rest are what the bot's own cards send, so the audits themselves are reached.
    broken = data.draw(chance(25))

    def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
        return odd_often(usual, odd) if broken else usual

    kind = data.draw(mostly(st.sampled_from(sorted(FIELDS)), st.text(max_size=12)))
    # What is drawn must not depend on the database (Hypothesis replays its draws), so
    # draw positions and choices, then apply them to the audits there are now.
    own = sorted(a for a, state in audits.items() if state.auditor_id == sender)
    from_own, position = data.draw(st.tuples(st.booleans(), st.integers(0, 10_000)))
    pool = own if from_own and own else sorted(audits)
    audit_id = data.draw(mostly(st.just(pool[position % len(pool)]), odd_numbers))
    state = audits.get(audit_id) if isinstance(audit_id, int) else None
    live_seq, live_step = data.draw(st.tuples(st.booleans(), st.booleans()))
    seq = data.draw(mostly(st.integers(min_value=0, max_value=12), odd_numbers))
    step = data.draw(mostly(st.sampled_from(STEPS), st.text(max_size=12)))
    payload: dict[str, Any] = {
        "pqf": kind,
        "audit_id": audit_id,
        "seq": state.seq if state and live_seq and not broken else seq,
        "step": state.step if state and live_step and not broken else step,
        "nav": data.draw(
            mostly(
                st.sampled_from(["next", "back", "save_exit", "submit", "edit", "save"]), short_text
            )
        ),
        "rating": data.draw(
            mostly(st.sampled_from(["below", "meets", "exceeds", "na", ""]), short_text)
        ),
        "evidence": data.draw(mostly(plain_text, short_text)),
        "case_choice": data.draw(mostly(st.sampled_from(["", "4100107", "4100114"]), short_text)),
        "case_reference": data.draw(mostly(plain_text, short_text)),
        "contacted": data.draw(
            mostly(st.sampled_from(["person", "carer,person", "none"]), json_values)
        ),
        "what_they_said": data.draw(mostly(plain_text, short_text)),
        "no_contact_reason": data.draw(mostly(plain_text, short_text)),
        "suitable_for_report": data.draw(mostly(st.sampled_from(["true", "false"]), json_values)),
        "how": data.draw(
            mostly(st.sampled_from(["present", "consulted", "not_involved"]), short_text)
        ),
        "reason": data.draw(mostly(plain_text, short_text)),
        "edit_step": data.draw(mostly(st.sampled_from(STEPS), short_text)),
        "command": data.draw(mostly(st.sampled_from(COMMANDS), short_text)),
        "standard": data.draw(mostly(st.sampled_from(["3", "1", "10", "0", "11"]), short_text)),
        "what": data.draw(mostly(st.sampled_from(["own", "other", ""]), short_text)),
        "comment": data.draw(mostly(plain_text, short_text)),
        "view_3.1": data.draw(mostly(st.sampled_from(["agree", "below", "meets"]), json_values)),
        "reason_3.1": data.draw(mostly(plain_text, short_text)),
    }
    # The fields the bot's own card of this kind sends, a few more, and now and then one
    # missing or of the wrong shape.
    keep = set(FIELDS.get(kind, ())) | data.draw(st.sets(st.sampled_from(sorted(payload))))
    shaped = {key: value for key, value in payload.items() if key in keep or key == "pqf"}
    if broken and data.draw(st.booleans()):
        shaped.pop(data.draw(st.sampled_from(sorted(shaped))))
    if broken and data.draw(st.booleans()):
        shaped[data.draw(st.sampled_from(sorted(payload)))] = data.draw(json_values)
    return shaped


def activity(data: st.DataObject, target: Target, audits: dict[int, AuditState]) -> Any:
    """Draw an activity from one of several people, or something that is not one."""
    if data.draw(chance(8)):
        return data.draw(json_values)  # not an activity at all
    person = data.draw(st.sampled_from(PEOPLE))
    kind = data.draw(
        odd_often(st.sampled_from(["message"] * 8 + ["installationUpdate", "conversationUpdate",
                                                   "invoke", "messageReaction", "event"]),
               st.text(max_size=10))
    )  # fmt: skip
    body: dict[str, Any] = {
        "type": kind,
        "id": data.draw(st.text(max_size=10)),
        "channelId": data.draw(st.sampled_from(["msteams", "msteams", "emulator", ""])),
        "serviceUrl": data.draw(
            st.sampled_from([target.connector.url] * 6 + ["not a url", "ftp://x"])
        ),
        "from": data.draw(
            odd_often(
                st.just({"id": person.teams_id, "aadObjectId": person.aad_object_id,
                         "name": "Someone"}),
                st.sampled_from([{"id": person.teams_id}, {}, None]) | json_values,
            )
        ),
        "conversation": {
            "id": data.draw(st.sampled_from([person.conversation_id, "a:elsewhere"])),
            "conversationType": data.draw(st.sampled_from(["personal", "personal", "groupChat"])),
            "tenantId": data.draw(st.sampled_from([TENANT, TENANT, None])),
        },
        "recipient": {"id": "28:pqf-bot", "name": "PQF Audit Bot"},
        "channelData": {"tenant": {"id": data.draw(st.sampled_from([TENANT] * 5 + [FOREIGN_TENANT]))}},
    }  # fmt: skip
    if kind == "installationUpdate":
        body["action"] = data.draw(st.sampled_from(["add", "remove", "add-upgrade", "odd"]))
    if data.draw(st.booleans()):
        body["text"] = data.draw(odd_often(st.sampled_from(COMMANDS), short_text))
    shape = data.draw(st.sampled_from(["payload", "payload", "payload", "json", "none"]))
    if shape == "payload":
        body["value"] = card_payload(data, audits, target.staff_by_aad.get(person.aad_object_id))
    elif shape == "json":
        body["value"] = data.draw(json_values)
    if data.draw(chance(12)):  # one field of the wrong shape
        body[data.draw(st.sampled_from(sorted(body)))] = data.draw(json_values)
    return body


def readable_submit(body: Any) -> bool:
    """Return whether the activity is a message whose card payload (if any) the bot can read."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return False
    value = body.get("value")
    if value is None:
        return True
    try:
        parse_submission(value)
    except SubmissionError:
        return False
    return True


# -- the property ---------------------------------------------------------------------------


def test_random_activities_never_fail_or_touch_anothers_audit(target: Target) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def throw(data: st.DataObject) -> None:
        for _ in range(2):
            before = target.run(snapshot(target.database))
            body = activity(data, target, before)
            status = target.run(post(target, body))
            target.posts[status] += 1
            assert status < 500, (status, body)
            after = target.run(snapshot(target.database))
            changed = {a for a in after if a not in before or after[a] != before[a]}
            if not changed:
                continue
            sender = sender_of(body, target)
            note = f"{status} {json.dumps(body, default=str)[:2000]}"
            assert 200 <= status < 300, note
            assert readable_submit(body), f"an unreadable submit changed audits {changed}: {note}"
            for audit_id in changed:
                assert audit_id in after, f"audit {audit_id} disappeared: {note}"
                owner = after[audit_id].auditor_id
                assert owner == sender, f"{sender} wrote to audit {audit_id} of {owner}: {note}"
                target.changes[audit_id] += 1

    throw()
    total = sum(target.posts.values())
    assert total >= 1000, (target.posts, target.refusals)
    # The checks above can see a change: the owner's own valid answer, sent the same way,
    # changes their audit (and the random run changed some, by their owners, as it went).
    before = target.run(snapshot(target.database))
    people = {target.staff_by_aad[p.aad_object_id]: p for p in PEOPLE if p is not STRANGER}
    audit_id, owner = next(
        (a, people[s.auditor_id]) for a, s in sorted(before.items())
        if s.auditor_id in people and '"status": "submitted"' not in s.fingerprint
    )  # fmt: skip
    valid = {
        "type": "message", "channelId": "msteams", "serviceUrl": target.connector.url,
        "from": {"id": owner.teams_id, "aadObjectId": owner.aad_object_id},
        "conversation": {"id": owner.conversation_id, "conversationType": "personal",
                         "tenantId": TENANT},
        "recipient": {"id": "28:pqf-bot"}, "channelData": {"tenant": {"id": TENANT}},
        "value": {"pqf": "audit.open", "audit_id": audit_id},
        # A card of its own: the random run may have made this very press (on no card) moments
        # ago, and a repeat of one press within seconds is answered once.
        "replyToId": "the-final-check",
    }  # fmt: skip
    assert target.run(post(target, valid)) == 201
    after = target.run(snapshot(target.database))
    assert after[audit_id] != before[audit_id]
    assert sum(n for status, n in target.posts.items() if 200 <= status < 300) > total // 3, (
        target.posts,
        target.refusals,
    )


def sender_of(body: Any, target: Target) -> int | None:
    sender = body.get("from") if isinstance(body, dict) else None
    aad = sender.get("aadObjectId") if isinstance(sender, dict) else None
    return target.staff_by_aad.get(aad.lower()) if isinstance(aad, str) else None


async def post(target: Target, body: Any) -> int:
    text = json.dumps(body)
    response = await target.client.post(
        "/api/messages", data=text, headers={"Content-Type": "application/json"}
    )
    answer = await response.text()
    if response.status >= 400:
        target.refusals[f"{response.status} {answer[:60]}"] += 1
    return response.status
