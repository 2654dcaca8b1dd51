"""The Graph client against the fake Graph: paging, throttling, sign-in and clear errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from directory.graph import ClientCredentials, GraphClient, GraphError, StaticToken
from tests.fake_graph import FakeGraph, Fault

GROUP = "11111111-1111-1111-1111-111111111111"


class Waits:
    """A sleep that only records how long it was asked to wait."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = await FakeGraph().start()
    for n in range(5):
        fake.add_user(f"u{n}", f"Person {n}", f"p{n}@example.gov.uk", "ASC Mendip", "Social Worker")
    fake.groups[GROUP] = [f"u{n}" for n in range(5)]
    yield fake
    await fake.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _client(
    graph: FakeGraph, http: aiohttp.ClientSession, waits: Waits, **options: Any
) -> GraphClient:
    return GraphClient(
        http=http,
        base_url=graph.url,
        tokens=StaticToken(graph.token),
        sleep=waits,
        jitter=lambda: 0.5,
        **options,
    )


async def test_pages_follow_next_links_to_the_end(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    client = _client(graph, http, Waits())
    path = f"groups/{GROUP}/transitiveMembers/microsoft.graph.user"
    pages = [page async for page in client.pages(path, {"$select": "id", "$top": "2"})]
    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert [m["id"] for p in pages for m in p["value"]] == [f"u{n}" for n in range(5)]
    assert set(pages[0]["value"][0]) == {"@odata.type", "id"}  # $select honoured


async def test_429_waits_as_long_as_retry_after_says_with_jitter(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    waits = Waits()
    graph.script.append(Fault("/users/u1", 429, retry_after="7"))
    client = _client(graph, http, waits)
    user = await client.get("users/u1")
    assert user["displayName"] == "Person 1"
    assert waits.asked == [pytest.approx(7 * 1.1)]  # 7 s and a fifth of it times the jitter
    assert (client.counts.requests, client.counts.throttled) == (2, 1)


async def test_503_without_retry_after_backs_off_exponentially(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    waits = Waits()
    graph.script.extend([Fault("/users/u1", 503), Fault("/users/u1", 503), Fault("/users/u1", 502)])
    user = await _client(graph, http, waits).get("users/u1")
    assert user["id"] == "u1"
    assert waits.asked == [pytest.approx(1.1), pytest.approx(2.2), pytest.approx(4.4)]


async def test_throttling_gives_up_after_a_bound(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    waits = Waits()
    graph.script.extend(Fault("/users/u1", 429, retry_after="1000") for _ in range(10))
    with pytest.raises(GraphError) as caught:
        await _client(graph, http, waits, max_tries=4).get("users/u1")
    assert caught.value.status == 429
    assert waits.asked == [120.0, 120.0, 120.0]  # never more than the longest wait


async def test_403_names_the_missing_permission(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    graph.forbidden.add(f"/groups/{GROUP}")
    client = _client(graph, http, Waits())
    with pytest.raises(GraphError) as caught:
        await client.get(f"groups/{GROUP}/transitiveMembers/microsoft.graph.user")
    assert caught.value.status == 403
    assert "permission" in str(caught.value)
    assert "Authorization_RequestDenied" in str(caught.value)


async def test_404_says_not_found(graph: FakeGraph, http: aiohttp.ClientSession) -> None:
    with pytest.raises(GraphError) as caught:
        await _client(graph, http, Waits()).get("users/nobody")
    assert caught.value.status == 404
    assert "GET " in str(caught.value)
    assert "404" in str(caught.value)


async def test_a_refused_token_is_fetched_again_once(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    class Tokens:
        def __init__(self) -> None:
            self.handed = ["stale", graph.token]
            self.forgotten = 0

        async def token(self) -> str:
            return self.handed[0]

        def forget(self) -> None:
            self.forgotten += 1
            self.handed.pop(0)

    tokens = Tokens()
    client = GraphClient(http=http, base_url=graph.url, tokens=tokens, sleep=Waits())
    assert (await client.get("users/u2"))["id"] == "u2"
    assert tokens.forgotten == 1
    with pytest.raises(GraphError) as caught:
        await GraphClient(http=http, base_url=graph.url, tokens=StaticToken("wrong")).get(
            "users/u2"
        )
    assert caught.value.status == 401
    assert "MICROSOFT_APP_PASSWORD" in str(caught.value)


async def test_links_to_another_server_are_not_followed(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(GraphError, match="another server"):
        await _client(graph, http, Waits()).get("https://elsewhere.example/v1.0/users")


async def test_client_credentials_sign_in_once_and_reuse_the_cached_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import msal

    made: list[dict[str, Any]] = []

    class App:
        def __init__(self, client_id: str, *, authority: str, client_credential: str) -> None:
            made.append({"client": client_id, "authority": authority})
            self.calls = 0

        def acquire_token_for_client(self, *, scopes: list[str]) -> dict[str, Any]:
            # msal answers from its cache until the token nears expiry
            self.calls += 1
            assert scopes == [scope]
            return {"access_token": "token-1"}

    monkeypatch.setattr(msal, "ConfidentialClientApplication", App)
    scope = "https://graph.microsoft.com/.default"
    tokens = ClientCredentials("tenant", "client", "secret", "https://graph.microsoft.com/v1.0")
    assert [await tokens.token(), await tokens.token()] == ["token-1", "token-1"]
    assert made == [{"client": "client", "authority": "https://login.microsoftonline.com/tenant"}]

    # A national cloud: its own sign-in host, and its own Graph in the scope.
    made.clear()
    scope = "https://microsoftgraph.chinacloudapi.cn/.default"
    china = ClientCredentials("tenant", "client", "secret",
                              "https://microsoftgraph.chinacloudapi.cn/v1.0",
                              "https://login.chinacloudapi.cn")  # fmt: skip
    assert await china.token() == "token-1"
    assert made == [{"client": "client", "authority": "https://login.chinacloudapi.cn/tenant"}]

    class Refusing(App):
        def acquire_token_for_client(self, *, scopes: list[str]) -> dict[str, Any]:
            return {"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}

    monkeypatch.setattr(msal, "ConfidentialClientApplication", Refusing)
    tokens.forget()
    with pytest.raises(GraphError, match="invalid_client: AADSTS7000215"):
        await tokens.token()
