"""The web app: /api/messages with authentication off (playground) and on (Azure), and health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from aiohttp import ClientConnectionError, ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.schema import Activity, ChannelAccount
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor, _OpenIdMetadata
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from msrest.serialization import Serializer
from sqlmodel import col, select

from admin.demo_data import cases_csv, staff_csv
from bot.adapter import (
    CLIENTS_KEPT,
    AuthConfiguration,
    JsonContentSerializer,
    ReusingAuthentication,
)
from bot.app import MAX_BODY_BYTES, create_app
from bot.auth import KEY_FETCH_TIMEOUT
from bot.settings import Settings, load_settings
from cards.audit_cards import criterion_card
from dialogs.turn import card_message
from messages.notices import queue_outcome, queue_reminder
from messages.requests import request_audit
from practice.framework import Framework
from storage import outbox, roster
from storage.audits import audit_detail
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.conftest import TODAY
from tests.delivery_helpers import wait_until
from tests.fake_connector import FakeConnector
from tests.test_cards import HEADING, SCALE

APP_ID = "11111111-1111-1111-1111-111111111111"
TENANT_ID = "22222222-2222-2222-2222-222222222222"
ALEX_AAD = "00000000-0000-0000-0000-0000000000020"


def activity(service_url: str, text: str = "help", aad: str = ALEX_AAD) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "incoming-1",
        "text": text,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "29:alex", "aadObjectId": aad, "name": "Alex Wilber"},
        "conversation": {
            "id": "a:personal-alex",
            "conversationType": "personal",
            "tenantId": TENANT_ID,
        },
        "recipient": {"id": f"28:{APP_ID}", "name": "PQF Audit Bot"},
        "channelData": {"tenant": {"id": TENANT_ID}},
    }


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


async def seeded(url: str, framework: Framework) -> None:
    database = Database(url)
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
    await database.dispose()


def dev_settings(url: str) -> Settings:
    return load_settings(
        env_file=None, DATABASE_URL=url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false",
    )  # fmt: skip


def auth_settings(url: str) -> Settings:
    return load_settings(
        env_file=None, DATABASE_URL=url, PQF_ENVIRONMENT="production", MICROSOFT_APP_ID=APP_ID,
        MICROSOFT_APP_PASSWORD="secret", MICROSOFT_APP_TENANT_ID=TENANT_ID,
        PQF_LINK_SECRET="x" * 40, PQF_PUBLIC_URL="https://pqf.example",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false", PQF_METRICS_TOKEN=METRICS_TOKEN,
    )  # fmt: skip


METRICS_TOKEN = "m" * 40
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


async def client_for(settings: Settings, framework: Framework) -> TestClient:  # type: ignore[type-arg]
    client = TestClient(TestServer(create_app(settings, framework=framework)))
    await client.start_server()
    return client


# -- authentication off (development, the Agents Playground) -------------------------------


async def test_a_message_is_answered_through_the_connector(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    client = await client_for(dev_settings(sqlite_url), framework)
    try:
        response = await client.post("/api/messages", json=activity(connector.url))
        assert response.status == 201
    finally:
        await client.close()
    assert len(connector.cards()) == 1
    assert "How to use the audit bot" in json.dumps(connector.cards()[0])
    assert connector.calls[0].conversation_id == "a:personal-alex"
    assert connector.calls[0].authorization is None  # no credentials in development


async def test_requests_that_are_not_activities_are_refused(
    sqlite_url: str, framework: Framework
) -> None:
    client = await client_for(dev_settings(sqlite_url), framework)
    try:
        cases = [
            (
                client.post("/api/messages", data="hello", headers={"Content-Type": "text/plain"}),
                415,
            ),
            (
                client.post(
                    "/api/messages", data="{not json", headers={"Content-Type": "application/json"}
                ),
                400,
            ),
            (client.post("/api/messages", json=[1, 2, 3]), 400),
            (client.post("/api/messages", json={"text": "no type"}), 400),
            (
                client.post(
                    "/api/messages", data=b"\xff\xfe", headers={"Content-Type": "application/json"}
                ),
                400,
            ),
            (client.get("/api/messages"), 405),
            (
                client.post(
                    "/api/messages",
                    data="x" * (MAX_BODY_BYTES + 1),
                    headers={"Content-Type": "application/json"},
                ),
                413,
            ),
        ]
        for request, status in cases:
            response = await request
            assert response.status == status, (status, await response.text())
    finally:
        await client.close()


async def test_deeply_nested_bodies_are_refused_with_400_before_any_parsing(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    # About 12 KB of nested objects: Python's parser ran out of stack on this (500).
    text = json.dumps(activity(connector.url))[:-1] + ', "value": ' + '{"a":' * 1000 + "{}"
    text += "}" * 1000 + "}"
    assert len(text) < 16_000
    bodies = [
        text,
        "[" * 100_000,
        '{"type": "message", "value": ' + "[" * 70 + "]" * 70 + "}",
        '{"type": "message", "text": "[\\"", "value": ' + '{"a":' * 65 + "1" + "}" * 66,
    ]
    for settings in (dev_settings(sqlite_url), auth_settings(sqlite_url)):
        client = await client_for(settings, framework)
        try:
            for body in bodies:
                response = await client.post(
                    "/api/messages", data=body, headers={"Content-Type": "application/json"}
                )
                assert response.status == 400, (body[:80], response.status)
            # Just within the limit (brackets inside strings do not count): served.
            shallow = activity(connector.url, text="[" * 500)
            shallow["value"] = None
            shallow["channelData"]["deep"] = json.loads("[" * 62 + "]" * 62)
            if settings.is_development:
                response = await client.post("/api/messages", json=shallow)
                assert response.status == 201, await response.text()
            metrics = await (await client.get("/metrics", headers=SCRAPER)).text()
        finally:
            await client.close()
        assert 'pqf_requests_refused_total{reason="too_deep"} 4.0' in metrics


async def test_unauthenticated_requests_are_refused_before_the_activity_is_read(
    sqlite_url: str,
    framework: Framework,
    connector: FakeConnector,
    signing_key: Any,
    openid_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seeded(sqlite_url, framework)
    read: list[object] = []
    deserialize = Activity.deserialize

    def spy(self: Activity, data: Any) -> Any:
        read.append(data)
        return deserialize(self, data)

    monkeypatch.setattr(Activity, "deserialize", spy)
    not_an_activity = {"type": ["message"], "from": 3, "channelId": 5, "serviceUrl": {}}
    client = await client_for(auth_settings(sqlite_url), framework)
    try:
        for body in (activity(connector.url), not_an_activity, {"text": "no type"}):
            for header in ({}, {"Authorization": "Bearer garbage"}):
                response = await client.post("/api/messages", json=body, headers=header)
                assert response.status == 401, (body, header, response.status)
        assert read == []
        # With a genuine token, the same malformed bodies are 400, never 500.
        token = {"Authorization": "Bearer " + channel_token(signing_key, connector.url)}
        for body in (not_an_activity, {"text": "no type", "serviceUrl": connector.url}):
            response = await client.post(
                "/api/messages", json={**body, "serviceUrl": connector.url}, headers=token
            )
            assert response.status == 400, (body, response.status, await response.text())
    finally:
        await client.close()
    assert connector.calls == []


async def test_health_and_readiness(sqlite_url: str, framework: Framework, tmp_path: Any) -> None:
    client = await client_for(dev_settings(sqlite_url), framework)
    try:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["status"] == "ready"
    finally:
        await client.close()
    empty = await client_for(dev_settings(f"sqlite:///{tmp_path}/empty.db"), framework)
    try:
        pending = await empty.get("/readyz")
        assert pending.status == 503
        assert "migrate" in (await pending.json())["status"]
    finally:
        await empty.close()
    unreachable = await client_for(dev_settings("postgresql://nobody@127.0.0.1:1/none"), framework)
    try:
        down = await unreachable.get("/readyz")
        assert down.status == 503
        assert (await down.json())["status"] == "database unreachable"
        assert (await unreachable.get("/healthz")).status == 200
    finally:
        await unreachable.close()


# -- authentication on (Azure Bot registration) ---------------------------------------------


@pytest.fixture
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def openid_server(
    signing_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """Serve Bot Framework-style signing keys locally, in place of login.botframework.com."""
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="test-key", endorsements=["msteams"])

    async def config(request: web.Request) -> web.Response:
        return web.json_response({"jwks_uri": str(request.url.with_path("/keys"))})

    async def keys(_request: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/openid", config)
    app.router.add_get("/keys", keys)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    metadata_url = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    monkeypatch.setitem(
        JwtTokenExtractor.metadataCache,
        metadata_url,
        _OpenIdMetadata(str(server.make_url("/openid"))),
    )
    yield metadata_url
    await server.close()


def channel_token(key: Any, service_url: str, **overrides: Any) -> str:
    claims = {
        "iss": "https://api.botframework.com",
        "aud": APP_ID,
        "exp": int(time.time()) + 600,
        "nbf": int(time.time()) - 10,
        "serviceurl": service_url,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "test-key"})


async def test_without_a_valid_token_the_answer_is_401_never_500(
    sqlite_url: str,
    framework: Framework,
    connector: FakeConnector,
    signing_key: Any,
    openid_server: str,
) -> None:
    await seeded(sqlite_url, framework)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = activity(connector.url)
    headers = [
        None,
        "Bearer",
        "Bearer garbage",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        "Bearer "
        + jwt.encode(
            {"iss": "https://api.botframework.com", "aud": APP_ID}, "k" * 32, algorithm="HS256"
        ),
        "Bearer " + channel_token(other_key, connector.url),  # signed by someone else
        "Bearer " + channel_token(signing_key, connector.url, aud="someone-else"),
        "Bearer " + channel_token(signing_key, connector.url, exp=int(time.time()) - 3600),
        "Bearer " + channel_token(signing_key, connector.url, iss="https://evil.example"),
        "Bearer " + channel_token(signing_key, "https://other.example/"),  # service URL mismatch
        "Bearer "
        + jwt.encode(
            {"iss": "https://api.botframework.com"},
            signing_key,
            algorithm="RS256",
            headers={"kid": "unknown"},
        ),
    ]
    client = await client_for(auth_settings(sqlite_url), framework)
    try:
        for header in headers:
            response = await client.post(
                "/api/messages", json=body, headers={"Authorization": header} if header else {}
            )
            assert response.status == 401, (header, response.status, await response.text())
    finally:
        await client.close()
    assert connector.calls == []  # the bot never ran


async def test_a_valid_connector_token_reaches_the_bot(
    sqlite_url: str,
    framework: Framework,
    connector: FakeConnector,
    signing_key: Any,
    openid_server: str,
) -> None:
    await seeded(sqlite_url, framework)
    client = await client_for(auth_settings(sqlite_url), framework)
    try:
        response = await client.post(
            "/api/messages", json=activity(connector.url),
            headers={"Authorization": "Bearer " + channel_token(signing_key, connector.url)},
        )  # fmt: skip
    finally:
        await client.close()
    # Authenticated: the bot ran (it stored Alex's conversation). Its reply needs a token from
    # Microsoft Entra ID, which this machine cannot reach, so the reply fails inside the turn
    # and is logged, not answered with a 5xx.
    assert response.status == 201
    database = Database(sqlite_url)
    async with database.session() as session:
        stored = await roster.conversation_of(session=session, aad_object_id=ALEX_AAD)
    await database.dispose()
    assert stored is not None
    assert stored.conversation_id == "a:personal-alex"


async def test_unreachable_signing_keys_give_503(
    sqlite_url: str,
    framework: Framework,
    connector: FakeConnector,
    signing_key: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metadata_url = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    monkeypatch.setitem(
        JwtTokenExtractor.metadataCache, metadata_url, _OpenIdMetadata("http://127.0.0.1:1/openid")
    )
    client = await client_for(auth_settings(sqlite_url), framework)
    try:
        response = await client.post(
            "/api/messages", json=activity(connector.url),
            headers={"Authorization": "Bearer " + channel_token(signing_key, connector.url)},
        )  # fmt: skip
    finally:
        await client.close()
    assert response.status == 503


async def test_cached_keys_serve_genuine_tokens_while_the_key_endpoint_is_silent(
    sqlite_url: str,
    framework: Framework,
    connector: FakeConnector,
    signing_key: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A silent key endpoint delays nobody whose token a cached key checks; one fetch at a time."""
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="test-key", endorsements=["msteams"])
    silent = asyncio.Event()
    release = asyncio.Event()
    failing = asyncio.Event()
    fetches: list[str] = []

    async def config(request: web.Request) -> web.Response:
        fetches.append("config")
        if silent.is_set():
            await release.wait()  # answers nothing until released
        if failing.is_set():
            return web.json_response({"error": "unavailable"}, status=500)
        return web.json_response({"jwks_uri": str(request.url.with_path("/keys"))})

    async def keys(_request: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    keys_app = web.Application()
    keys_app.router.add_get("/openid", config)
    keys_app.router.add_get("/keys", keys)
    server = TestServer(keys_app, host="127.0.0.1")
    await server.start_server()
    metadata = _OpenIdMetadata(str(server.make_url("/openid")))
    metadata_url = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    monkeypatch.setitem(JwtTokenExtractor.metadataCache, metadata_url, metadata)
    await seeded(sqlite_url, framework)
    client = await client_for(auth_settings(sqlite_url), framework)
    token = {"Authorization": "Bearer " + channel_token(signing_key, connector.url)}

    # Typing indicators: authenticated like any activity, and answered with nothing (a reply
    # would need a token from Microsoft Entra ID, which this machine cannot reach).
    typing = {**activity(connector.url), "type": "typing"}

    async def post(headers: dict[str, str]) -> int:
        return (await client.post("/api/messages", json=typing, headers=headers)).status

    try:
        assert await post(token) == 201
        assert fetches == ["config"]
        # A day later the keys are due for a refresh, and the endpoint has gone silent.
        silent.set()
        metadata.last_updated -= timedelta(days=2)
        started = time.perf_counter()
        answers = await asyncio.gather(*(post(token) for _ in range(8)))
        waited = time.perf_counter() - started
        assert answers == [201] * 8
        assert waited < KEY_FETCH_TIMEOUT.total / 2, waited  # nobody waited for the fetch
        assert fetches == ["config", "config"]  # one refresh in flight, not eight
        # A token with a key id we do not know waits for that same fetch (no new one), and
        # is refused once it brings no such key.
        claims = jwt.decode(
            channel_token(signing_key, connector.url), options={"verify_signature": False}
        )
        rotated = jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": "rotated"})
        waiting = asyncio.ensure_future(post({"Authorization": "Bearer " + rotated}))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        assert await post(token) == 201
        release.set()
        assert await waiting == 401
        assert fetches == ["config", "config"]

        # The endpoint now fails at once: the cached keys still serve, and after a failure
        # nothing is fetched again for a while, however many requests come.
        silent.clear()
        failing.set()
        metadata.last_updated -= timedelta(days=2)
        assert await post(token) == 201
        with contextlib.suppress(Exception):
            await metadata._pqf_fetch
        assert [await post(token) for _ in range(5)] == [201] * 5
        assert fetches == ["config", "config", "config"]
        # Keys too old to trust are not used: with no fresh ones, Teams is told to retry.
        metadata.last_updated -= timedelta(days=10)
        assert await post(token) == 503
        assert fetches == ["config", "config", "config"]
    finally:
        release.set()
        await client.close()
        await server.close()


# -- one tenant only, the message limit, metrics --------------------------------------------

FOREIGN_TENANT = "99999999-9999-9999-9999-999999999999"


def foreign(body: dict[str, Any]) -> dict[str, Any]:
    """Return the activity as if it came from another organisation's tenant."""
    return {
        **body,
        "conversation": {**body["conversation"], "tenantId": FOREIGN_TENANT},
        "channelData": {"tenant": {"id": FOREIGN_TENANT}},
    }


async def test_activities_from_another_tenant_are_refused_and_logged(
    sqlite_url: str,
    framework: Framework,
    connector: FakeConnector,
    signing_key: Any,
    openid_server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await seeded(sqlite_url, framework)
    # Authenticated: the app's own tenant (MICROSOFT_APP_TENANT_ID) is the only one served.
    client = await client_for(auth_settings(sqlite_url), framework)
    try:
        token = {"Authorization": "Bearer " + channel_token(signing_key, connector.url)}
        refused = await client.post("/api/messages", json=foreign(activity(connector.url)),
                                    headers=token)  # fmt: skip
        assert refused.status == 403
        metrics = await (await client.get("/metrics", headers=SCRAPER)).text()
    finally:
        await client.close()
    assert connector.calls == []
    assert f"refused an activity from tenant {FOREIGN_TENANT}" in caplog.text
    assert 'pqf_requests_refused_total{reason="foreign_tenant"} 1.0' in metrics

    # Development with PQF_ALLOWED_TENANTS: the same rule, and our own tenant still served.
    settings = load_settings(
        env_file=None, DATABASE_URL=sqlite_url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false", PQF_ALLOWED_TENANTS=TENANT_ID.upper(),
    )  # fmt: skip
    client = await client_for(settings, framework)
    try:
        assert (
            await client.post("/api/messages", json=foreign(activity(connector.url)))
        ).status == 403
        missing = activity(connector.url)
        missing.pop("channelData")
        missing["conversation"] = {
            k: v for k, v in missing["conversation"].items() if k != "tenantId"
        }
        assert (await client.post("/api/messages", json=missing)).status == 403
        assert (await client.post("/api/messages", json=activity(connector.url))).status == 201
    finally:
        await client.close()
    assert len(connector.cards()) == 1


async def test_a_person_sending_too_fast_is_asked_to_wait(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    settings = load_settings(
        env_file=None, DATABASE_URL=sqlite_url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false", PQF_USER_RATE_LIMIT="2/60",
    )  # fmt: skip
    client = await client_for(settings, framework)
    try:
        for _ in range(4):
            assert (await client.post("/api/messages", json=activity(connector.url))).status == 201
        metrics = await (await client.get("/metrics")).text()
    finally:
        await client.close()
    assert len(connector.cards()) == 2  # two help cards, then one polite request to wait
    assert [t for t in connector.texts() if "faster than I can keep up" in t] != []
    assert len(connector.calls) == 3
    assert "pqf_messages_rate_limited_total 2.0" in metrics


async def test_metrics_are_in_prometheus_text_format(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    client = await client_for(dev_settings(sqlite_url), framework)
    try:
        assert (await client.post("/api/messages", json=activity(connector.url))).status == 201
        assert (
            await client.post("/api/messages", data="x", headers={"Content-Type": "text/plain"})
        ).status == 415
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    finally:
        await client.close()
    lines = set(text.splitlines())
    assert 'pqf_turns_total{activity_type="message",outcome="ok"} 1.0' in lines
    assert 'pqf_turn_seconds_count{activity_type="message"} 1.0' in lines
    assert 'pqf_requests_refused_total{reason="content_type"} 1.0' in lines
    for state in ("pending", "retrying", "sent", "undeliverable"):
        assert f'pqf_outbox_messages{{state="{state}"}} 0.0' in lines
    assert 'pqf_outbox_send_attempts_total{outcome="undeliverable"} 0.0' in lines
    assert "pqf_teams_throttled_total 0.0" in lines
    # One instance on SQLite: the whole budget, not slowed down.
    assert "pqf_send_rate 48.0" in lines
    assert "pqf_send_rate_now 48.0" in lines
    assert 'pqf_scheduler_runs_total{job="retention",outcome="failed"} 0.0' in lines


async def test_metrics_stay_off_the_public_listener_in_production(
    sqlite_url: str, framework: Framework, unused_tcp_port: int
) -> None:
    production = auth_settings(sqlite_url).model_copy(update={"metrics_token": ""})
    client = await client_for(production, framework)
    try:  # neither a token nor a port of their own: not served at all
        assert (await client.get("/metrics")).status == 404
    finally:
        await client.close()

    client = await client_for(auth_settings(sqlite_url), framework)
    try:  # behind a bearer token
        for header in ({}, {"Authorization": "Bearer " + "n" * 40}, {"Authorization": "m" * 40}):
            refused = await client.get("/metrics", headers=header)
            assert refused.status == 401, header
            assert "pqf_" not in await refused.text()
        served = await client.get("/metrics", headers=SCRAPER)
        assert served.status == 200
        assert 'pqf_requests_refused_total{reason="metrics_token"} 3.0' in await served.text()
    finally:
        await client.close()

    separate = production.model_copy(update={"metrics_port": unused_tcp_port})
    client = await client_for(separate, framework)
    try:  # on a port of their own, for the monitoring network only
        assert (await client.get("/metrics")).status == 404
        async with ClientSession() as session:
            own = f"http://{separate.host}:{unused_tcp_port}"
            async with session.get(f"{own}/metrics") as response:
                assert response.status == 200
                assert "pqf_turns_total" in await response.text()
            async with session.get(f"{own}/healthz") as response:
                assert response.status == 200
            async with session.post(f"{own}/api/messages", json={}) as response:
                assert response.status in (404, 405)
    finally:
        await client.close()
    async with ClientSession() as session:  # closed with the app
        with pytest.raises(ClientConnectionError):
            await session.get(f"http://{separate.host}:{unused_tcp_port}/metrics")


async def test_turns_reuse_the_connector_and_token_clients_per_app_and_service_url() -> None:
    authentication = ReusingAuthentication(
        AuthConfiguration(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
    )
    anonymous = ClaimsIdentity({}, True)
    other_app = ClaimsIdentity({AuthenticationConstants.AUDIENCE_CLAIM: "another-app"}, True)
    europe = "https://smba.trafficmanager.net/emea/"

    first = await authentication.create_connector_factory(anonymous).create(europe, None)
    assert await authentication.create_connector_factory(anonymous).create(europe, None) is first
    assert first.config.base_url == europe
    elsewhere = await authentication.create_connector_factory(anonymous).create(
        "https://smba.trafficmanager.net/uk/", None
    )
    assert elsewhere is not first
    assert elsewhere.config.base_url == "https://smba.trafficmanager.net/uk/"
    assert (
        await authentication.create_connector_factory(other_app).create(europe, None) is not first
    )
    token_client = await authentication.create_user_token_client(anonymous)
    assert await authentication.create_user_token_client(anonymous) is token_client

    # A bounded number are kept: the least recently used is built again when next needed.
    for number in range(CLIENTS_KEPT):
        await authentication.create_connector_factory(anonymous).create(
            f"https://smba.example/{number}/", None
        )
    assert (
        await authentication.create_connector_factory(anonymous).create(europe, None) is not first
    )


async def test_activities_are_serialised_as_msrest_would() -> None:
    authentication = ReusingAuthentication(
        AuthConfiguration(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
    )
    client = await authentication.create_connector_factory(ClaimsIdentity({}, True)).create(
        "https://smba.trafficmanager.net/emea/", None
    )
    ours = client.conversations._serialize
    assert isinstance(ours, JsonContentSerializer)
    assert client.attachments._serialize is ours
    msrest = Serializer(ours.dependencies)

    card = criterion_card(
        HEADING, seq=3, step="criterion:3.2", criterion_id="3.2", criterion_text="What matters",
        position=2, total=8, scale=SCALE, rating="meets", evidence="Seen “here”",
        max_length=4000, problems=["Add the evidence"],
    )  # fmt: skip
    plain = card_message(card)
    plain.value = {"pqf": "audit.criterion", "seq": 3, "ok": True, "n": 1.5, "none": None}
    # Not plain JSON: msrest's own rules apply (a model inside, a date, a tuple, a number key).
    mixed = card_message({**card, "by": ChannelAccount(id="29:x", name="Alex")})
    mixed.value = {"when": datetime(2026, 11, 23, 9, 30, tzinfo=UTC), "pair": (1, 2), 3: "x"}
    for activity in (plain, mixed):
        assert ours.body(activity, "Activity") == msrest.body(activity, "Activity")


# -- messages that waited for someone to open the bot ----------------------------------------

MEGAN_AAD = "00000000-0000-0000-0000-0000000000021"


def sender_settings(url: str) -> Settings:
    return load_settings(
        env_file=None, DATABASE_URL=url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="true",
    )  # fmt: skip


async def _megans_waiting_notices(url: str, framework: Framework) -> list[int]:
    """Queue what the demo trial found waiting for Megan: 4 requests, a reminder, 2 outcomes."""
    database = Database(url)
    queued: list[int] = []
    try:
        async with database.session() as session:
            assert (await import_cases(session=session, text=cases_csv(TODAY))).ok
            for standard in (3, 3, 4, 4):
                requested = await request_audit(
                    session=session, framework=framework, auditor_email="meganb@example.com",
                    standard_number=standard, month="2026-11", today=TODAY,
                )  # fmt: skip
                assert requested.message.id is not None
                queued.append(requested.message.id)
            megan = await roster.staff_by_email(session=session, email="meganb@example.com")
            assert megan is not None
            reminder = await queue_reminder(
                session=session, auditor=megan, entries=[], due_on=TODAY, today=TODAY
            )
            assert reminder.id is not None
            queued.append(reminder.id)
            for email in ("alexw@example.com", "adelev@example.com"):
                done = await request_audit(
                    session=session, framework=framework, auditor_email=email,
                    standard_number=3, month="2026-11", today=TODAY,
                )  # fmt: skip
                assert done.audit.id is not None
                detail = await audit_detail(session=session, audit_id=done.audit.id)
                assert detail is not None
                for message in await queue_outcome(
                    session=session, framework=framework, detail=detail, submitted_on=TODAY
                ):
                    assert message.id is not None
                    if message.recipient_id == megan.id:
                        queued.append(message.id)
    finally:
        await database.dispose()
    assert len(queued) == 7
    return queued


async def test_every_notice_waiting_reaches_someone_once_when_they_open_the_bot(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    waiting = await _megans_waiting_notices(sqlite_url, framework)
    database = Database(sqlite_url)
    client = await client_for(sender_settings(sqlite_url), framework)
    try:

        async def put_off() -> bool:
            async with database.session() as session:
                rows = await session.exec(
                    select(OutboxMessage).where(col(OutboxMessage.id).in_(waiting))
                )
                return all(m.last_error == outbox.NOT_INSTALLED for m in rows)

        # The sender has tried them and put them off: Megan has not opened the bot.
        await wait_until(put_off, within=10, what="the messages to be put off")
        install = {
            **activity(connector.url, aad=MEGAN_AAD),
            "type": "installationUpdate",
            "action": "add",
            "from": {"id": "29:megan", "aadObjectId": MEGAN_AAD, "name": "Megan Bowen"},
            "conversation": {
                "id": "a:personal-megan", "conversationType": "personal", "tenantId": TENANT_ID,
            },
        }  # fmt: skip
        install.pop("text")
        assert (await client.post("/api/messages", json=install)).status in (200, 201)

        async def all_sent() -> bool:
            async with database.session() as session:
                rows = await session.exec(
                    select(OutboxMessage).where(col(OutboxMessage.id).in_(waiting))
                )
                return all(m.status == OutboxStatus.SENT for m in rows)

        await wait_until(all_sent, within=15, what="the waiting messages to be sent")
    finally:
        await client.close()
        await database.dispose()
    to_megan = [c.body for c in connector.calls if c.delivered]
    assert all(c.conversation_id == "a:personal-megan" for c in connector.calls)
    # The welcome, then each waiting notice once, in the order they were queued.
    assert "Hello Megan" in json.dumps(to_megan[0])
    assert [body.get("summary", "") for body in to_megan[1:]] == [
        "New audit: Standard 3: Strengths-based assessments",
        "New audit: Standard 3: Strengths-based assessments",
        "New audit: Standard 4: Working with risk",
        "New audit: Standard 4: Working with risk",
        "Audits due soon",
        "Completed audit: Standard 3: Strengths-based assessments",
        "Completed audit: Standard 3: Strengths-based assessments",
    ]


async def test_a_card_action_is_answered_in_the_http_response_not_through_the_connector(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    database = Database(sqlite_url)
    async with database.session() as session:
        requested = await request_audit(
            session=session, framework=framework, auditor_email="alexw@example.com",
            standard_number=3, month="2026-11", today=TODAY,
        )  # fmt: skip
    await database.dispose()
    press = {
        **activity(connector.url),
        "type": "invoke",
        "name": "adaptiveCard/action",
        "replyToId": "request-card-1",
        "value": {
            "action": {
                "type": "Action.Execute",
                "verb": "audit.open",
                "data": {"pqf": "audit.open", "audit_id": requested.audit.id},
            },
            "trigger": "manual",
        },
    }
    client = await client_for(dev_settings(sqlite_url), framework)
    try:
        response = await client.post("/api/messages", json=press)
        assert response.status == 200
        body = await response.json()
        unreadable = await client.post(
            "/api/messages", json={**press, "value": {"action": {"data": "x"}}}
        )
        assert unreadable.status == 200
        refused = await unreadable.json()
    finally:
        await client.close()
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Step 1: the case" in json.dumps(body["value"])
    assert refused["type"] == "application/vnd.microsoft.error"
    assert refused["value"]["message"] == "That card sent something I can't read."
    assert connector.calls == []  # nothing sent or updated through Teams
