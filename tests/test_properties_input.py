"""Properties of everything that comes in: raw bodies, card submits, typed commands, CSV rows.

Hypothesis draws the input (derandomised, so CI sees the same examples on every run):

- raw bodies at `/api/messages` (junk bytes, random JSON, nesting thousands deep, bodies
  near the size limit, activities with junk fields), with authentication off and on: never
  a 5xx, a refusal is a 4xx, and without a token nothing is ever 2xx;
- the depth measure agrees with the real depth of any JSON, and reading a body raises
  nothing but the one refusal;
- card submits (any field of any of the bot's cards, forged ids, control characters):
  parsed or refused with a message, never an exception; text with a control character is
  refused naming its field; what is accepted holds no such character;
- typed commands: any text is a command or unknown, and `report` months are read or
  refused with a message;
- roster CSV rows with control characters, odd emails and supervisor circles, on SQLite
  and PostgreSQL: imported whole, or nothing with every problem on its line; what is
  imported is clean, strict and without circles.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlmodel import func, select

from bot.app import MAX_BODY_BYTES, create_app
from bot.commands import Command, ReportMonthsError, parse_command, report_months
from bot.json_body import MAX_DEPTH, BodyError, nesting_depth, read_json
from bot.settings import Settings, load_settings
from cards.submissions import FIELD_LABELS, SubmissionError, parse_submission
from practice.framework import Framework
from practice.text import is_email, unwanted_character
from storage.csv_import import STAFF_COLUMNS, import_staff
from storage.database import Database
from storage.models import Staff
from tests.conftest import drop_postgres_database, new_postgres_database
from tests.fake_connector import FakeConnector

TENANT = "00000000-0000-0000-0000-0000000000001"
APP_ID = "11111111-1111-1111-1111-111111111111"


def examples(count: int) -> Any:
    """Return Hypothesis settings for `count` examples, the same ones on every run."""
    return settings(
        max_examples=count,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.data_too_large],
    )  # fmt: skip


# Text as people paste it, and worse: controls, surrogates, zero-width and direction marks.
NASTY = st.sampled_from(
    ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ud800", "\udfff", "\u200b", "\u202e", "\ufeff",
     "\u2028", "\t", "\n", "\r\n", '"', "'", "[", "{", "\\", "=", "@", " "]
)  # fmt: skip
TEXT = st.lists(st.one_of(st.text(max_size=8), NASTY), max_size=6).map("".join)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (
                item.values() if isinstance(item, dict) else item))  # fmt: skip
    return deepest


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=30,
)


# -- reading bodies ----------------------------------------------------------------------------


@examples(500)
@given(JSON_VALUES, st.integers(0, 80))
def test_the_depth_measure_is_the_depth_of_any_json(value: Any, wrap: int) -> None:
    text = "[" * wrap + json.dumps(value) + "]" * wrap
    expected = _depth(value) + wrap
    assert nesting_depth(text.encode()) == expected
    if expected > MAX_DEPTH:
        with pytest.raises(BodyError, match="nested more than"):
            read_json(text.encode())
    else:
        assert read_json(text.encode()) == json.loads(text)


@examples(300)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
       st.integers(0, 3000))  # fmt: skip
def test_reading_any_body_refuses_or_returns_shallow_json(junk: bytes, deep: int) -> None:
    for body in (junk, b"[" * deep + junk, b'{"a":' * deep + junk + b"}" * deep):
        try:
            parsed = read_json(body)
        except BodyError as error:
            reason = error.reason
        else:
            reason = "read"
            assert _depth(parsed) <= MAX_DEPTH
        assert reason in ("too_deep", "not_json", "read")


# -- raw bodies at /api/messages ---------------------------------------------------------------


@dataclass
class App:
    loop: asyncio.AbstractEventLoop
    development: TestClient  # type: ignore[type-arg]
    production: TestClient  # type: ignore[type-arg]
    connector: FakeConnector

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


def _settings(url: str, environment: str) -> Settings:
    extra: dict[str, str] = {}
    if environment == "production":
        extra = {
            "MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "secret",
            "MICROSOFT_APP_TENANT_ID": TENANT, "PQF_LINK_SECRET": "x" * 40,
            "PQF_PUBLIC_URL": "https://pqf.example",
        }  # fmt: skip
    return load_settings(
        env_file=None, DATABASE_URL=url, PQF_ENVIRONMENT=environment, PQF_RUN_SCHEDULER="false",
        PQF_RUN_SENDER="false", PQF_ALLOWED_TENANTS=TENANT, PQF_USER_RATE_LIMIT="1000000/1",
        **extra,
    )  # fmt: skip


@pytest.fixture
def app(tmp_path: Path, sqlite_template: Path, framework: Framework) -> Iterator[App]:
    path = tmp_path / "pqf.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    loop = asyncio.new_event_loop()

    async def start() -> App:
        clients = []
        for environment in ("development", "production"):
            client = TestClient(TestServer(create_app(_settings(url, environment),
                                                      framework=framework)))  # fmt: skip
            await client.start_server()
            clients.append(client)
        connector = await FakeConnector().start()
        return App(asyncio.get_running_loop(), clients[0], clients[1], connector)

    started = loop.run_until_complete(start())
    try:
        yield started
    finally:
        for closing in (started.development.close(), started.production.close(),
                        started.connector.close()):  # fmt: skip
            loop.run_until_complete(closing)
        loop.close()


ACTIVITY_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(
            st.sampled_from(
                ["message", "invoke", "typing", "event", "conversationUpdate", "installationUpdate"]
            ),
            JSON_VALUES,
        ),
        "text": st.one_of(TEXT, JSON_VALUES),
        "value": JSON_VALUES,
        "channelId": st.one_of(st.just("msteams"), JSON_VALUES),
        "from": st.one_of(st.fixed_dictionaries({"id": TEXT, "aadObjectId": TEXT}), JSON_VALUES),
        "conversation": st.one_of(
            st.fixed_dictionaries({"id": TEXT, "tenantId": st.just(TENANT)}), JSON_VALUES
        ),
        "recipient": st.one_of(st.fixed_dictionaries({"id": TEXT, "role": TEXT}), JSON_VALUES),
        "channelData": st.one_of(st.just({"tenant": {"id": TENANT}}), JSON_VALUES),
        "id": st.one_of(TEXT, JSON_VALUES),
        "timestamp": st.one_of(TEXT, JSON_VALUES),
        "attachments": JSON_VALUES,
        "entities": JSON_VALUES,
    },
)


def _bodies(connector_url: str) -> st.SearchStrategy[bytes]:
    base = {
        "type": "message", "channelId": "msteams", "text": "help",
        "from": {"id": "29:someone", "aadObjectId": "00000000-0000-0000-0000-00000000abcd"},
        "conversation": {"id": "a:someone", "conversationType": "personal", "tenantId": TENANT},
        "recipient": {"id": f"28:{APP_ID}"}, "channelData": {"tenant": {"id": TENANT}},
    }  # fmt: skip

    def activity(fields: dict[str, Any]) -> bytes:
        # Whatever else is junk, replies may only ever go to the fake Connector.
        return json.dumps({**base, **fields, "serviceUrl": connector_url}).encode()

    nested = st.integers(MAX_DEPTH - 2, 5000).flatmap(
        lambda n: st.sampled_from([b"[" * n, b'{"a":' * n + b"1" + b"}" * n,
                                   b'{"type":"message","value":' + b"[" * n + b"]" * n + b"}"])
    )  # fmt: skip
    return st.one_of(
        st.binary(max_size=500),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        ACTIVITY_FIELDS.map(activity),
        nested,
        st.integers(MAX_BODY_BYTES - 64, MAX_BODY_BYTES + 64).map(lambda n: b'"' + b"x" * n),
    )


def test_no_body_at_api_messages_gets_a_5xx(app: App) -> None:
    statuses: dict[str, set[int]] = {"development": set(), "production": set()}
    calls: list[int] = []

    @examples(400)
    @given(st.data())
    def post(data: st.DataObject) -> None:
        calls.append(1)
        body = data.draw(_bodies(app.connector.url), label="body")
        content_type = data.draw(
            st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"])
        )
        for name, client in (("development", app.development), ("production", app.production)):
            response = app.run(client.post("/api/messages", data=body,
                                           headers={"Content-Type": content_type}))  # fmt: skip
            statuses[name].add(response.status)
            assert response.status < 500, (name, body[:200], response.status)
            if name == "production":  # no token: never served
                assert response.status >= 400, (body[:200], response.status)

    post()
    assert len(calls) >= 400
    assert {400, 413, 415} <= statuses["development"] | statuses["production"]
    assert 401 in statuses["production"]
    assert statuses["development"] & {200, 201, 202}  # some activities did reach the bot


# -- card submits ------------------------------------------------------------------------------

CARD_FIELDS: dict[str, tuple[str, ...]] = {
    "audit.open": ("audit_id",),
    "command": ("command",),
    "audit.case": ("audit_id", "seq", "step", "nav", "case_choice", "case_reference"),
    "audit.criterion": ("audit_id", "seq", "step", "nav", "rating", "evidence"),
    "audit.feedback": ("audit_id", "seq", "step", "nav", "contacted", "what_they_said",
                       "no_contact_reason", "suitable_for_report"),
    "audit.involvement": ("audit_id", "seq", "step", "nav", "how", "feedback_on", "reason"),
    "audit.summary": ("audit_id", "seq", "step", "nav", "edit_step"),
    "audit.download": ("audit_id",),
    "audit.new": ("standard", "what"),
    "moderation.claim": ("audit_id",),
    "moderation.open": ("audit_id",),
    "moderation.answer": ("audit_id", "seq", "nav", "comment", "view_3.1", "reason_3.1"),
}  # fmt: skip
GOOD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "audit_id": st.one_of(st.integers(-5, 2**31 + 5), st.just(2**70), TEXT),  # forged ids
    "seq": st.one_of(st.integers(-5, 2**31 + 5), TEXT),
    "step": st.sampled_from(
        [
            "case",
            "feedback",
            "involvement",
            "summary",
            "criterion:3.1",
            "criterion:99.99",
            "nonsense",
        ]
    ),
    "nav": st.sampled_from(["next", "back", "save_exit", "submit", "edit", "save", "jump"]),
    "command": st.sampled_from(["help", "my audits", "report", "rm -rf"]),
    "contacted": st.one_of(TEXT, st.lists(TEXT, max_size=3)),
    "suitable_for_report": st.one_of(st.booleans(), TEXT),
}


@st.composite
def submissions(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from([*CARD_FIELDS, "unknown.kind"]))
    value: dict[str, Any] = {"pqf": kind}
    for name in CARD_FIELDS.get(kind, ("audit_id",)):
        if draw(st.integers(0, 9)):  # now and then a field is missing
            value[name] = draw(st.one_of(GOOD_VALUES.get(name, TEXT), JSON_VALUES))
    return value


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, BaseModel):
        for item in [*value.__dict__.values(), *(value.model_extra or {}).values()]:
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


@examples(600)
@given(submissions())
def test_card_submits_are_parsed_or_refused_naming_the_field(value: dict[str, Any]) -> None:
    flawed: dict[str, str] = {}  # the first bad character of each field
    for key, item in value.items():
        for text in item if isinstance(item, list) else [item]:
            problem = unwanted_character(text) if isinstance(text, str) else None
            if problem:
                flawed.setdefault(key, problem)
    try:
        parsed = parse_submission(value)
    except SubmissionError as error:
        message = str(error)
        assert message
        assert "Traceback" not in message
        if flawed:
            key = next(iter(flawed))
            label = FIELD_LABELS.get(key, "The reason for criterion 3.1"
                                     if key == "reason_3.1" else "One of the answers")  # fmt: skip
            assert message.startswith(f"{label} contains {flawed[key]}"), message
            assert message.endswith("Nothing was saved.")
        return
    assert not flawed
    assert all(unwanted_character(text) is None for text in _texts(parsed))


# -- typed commands ----------------------------------------------------------------------------


@examples(300)
@given(
    st.one_of(
        TEXT,
        st.text(max_size=250),
        st.from_regex(r"\A ?[Rr]eport( \d{1,5}-\d{1,3})?( to \d{4}-\d{2})? ?\Z"),
    )
)
def test_any_typed_text_is_a_command_or_unknown(text: str) -> None:  # fmt: skip
    command = parse_command(text)
    assert isinstance(command, Command)
    if command is Command.REPORT:
        try:
            months = report_months(text, today=date(2026, 11, 23))
        except ReportMonthsError as error:
            refusal = str(error)
            assert refusal
        else:
            if months is not None:
                first, last = months
                assert 1 <= first.number <= 12
                assert first <= last


# -- roster CSV rows ---------------------------------------------------------------------------

EMAILS = [f"p{n}@somerset.example" for n in range(6)]
ODD_EMAILS = st.sampled_from(['"p9"@somerset.example', "p9\u200b@somerset.example",
                              "p9@somerset..example", "p9@localhost", "p 9@somerset.example",
                              "p9@somerset.example\n", "o'neill@somerset.example",
                              "P9@Somerset.Example"])  # fmt: skip


@st.composite
def staff_files(draw: st.DrawFn) -> tuple[str, int]:
    count = draw(st.integers(1, 6))
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(STAFF_COLUMNS[:5])
    for index in range(count):
        email = draw(st.one_of(st.just(EMAILS[index]), ODD_EMAILS)) if draw(
            st.integers(0, 4)) == 0 else EMAILS[index]  # fmt: skip
        name = draw(st.one_of(st.just(f"Person {index}"), TEXT))
        team = draw(st.one_of(st.just("Mendip"), TEXT))
        supervisor = draw(st.one_of(st.just(""), st.sampled_from(EMAILS[:count])))
        writer.writerow([email, name, "SW", team, supervisor])
    return lines.getvalue(), count


def _circles(supervisor_of: dict[int, int | None]) -> bool:
    for start in supervisor_of:
        seen, current = {start}, supervisor_of[start]
        while current is not None:
            if current in seen:
                return True
            seen.add(current)
            current = supervisor_of.get(current)
    return False


def _import_property(url: str, framework: Framework, count: int) -> None:
    loop = asyncio.new_event_loop()
    database = Database(url)
    outcomes: list[str] = []

    @examples(count)
    @given(staff_files())
    def check(drawn: tuple[str, int]) -> None:
        text, _ = drawn
        outcomes.append(text)

        async def attempt() -> None:
            async with database.session() as session:
                result = await import_staff(session=session, framework=framework, text=text)
                if not result.ok:
                    assert all(e.startswith("line ") for e in result.errors), result.errors
                    added = (await session.exec(select(func.count()).select_from(Staff))).one()
                    assert added == 0  # nothing, not even the good rows
                else:
                    people = list(await session.exec(select(Staff)))
                    for person in people:
                        assert is_email(person.email), person.email
                        for value in (person.email, person.name, person.team):
                            assert unwanted_character(value, one_line=True) is None, value
                    assert not _circles({p.id: p.supervisor_id for p in people if p.id})  # type: ignore[misc]
                await session.rollback()  # each example starts from an empty roster

        loop.run_until_complete(attempt())

    try:
        check()
    finally:
        loop.run_until_complete(database.dispose())
        loop.close()
    assert len(outcomes) >= count


def test_roster_rows_import_clean_or_not_at_all_on_sqlite(
    tmp_path: Path, sqlite_template: Path, framework: Framework
) -> None:
    path = tmp_path / "pqf.db"
    shutil.copyfile(sqlite_template, path)
    _import_property(f"sqlite:///{path}", framework, 200)


@pytest.mark.postgres
def test_roster_rows_import_clean_or_not_at_all_on_postgresql(
    postgres_template: str, framework: Framework
) -> None:
    url = new_postgres_database(postgres_template)
    try:
        _import_property(url, framework, 100)
    finally:
        drop_postgres_database(url)
