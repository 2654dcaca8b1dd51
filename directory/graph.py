"""A small typed client for the few Microsoft Graph calls the bot makes, on aiohttp.

It follows `@odata.nextLink` paging, waits as Graph asks on 429 and 503 (`Retry-After`, with
jitter, up to a bound) and retries other passing failures with exponential back-off; anything
else is a `GraphError` saying what was asked and what Graph answered. Its clock (`sleep`) and
randomness are passed in, so tests never wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)

# Statuses worth asking again: throttled, unavailable, or a gateway that gave up.
RETRIED = frozenset({429, 502, 503, 504})
MAX_TRIES = 8
# Never wait longer than this for one try, whatever Retry-After says.
LONGEST_WAIT = 120.0
# Where apps sign in for each Microsoft Graph cloud (learn.microsoft.com/graph/deployments).
AUTHORITY_HOSTS = {
    "graph.microsoft.com": "https://login.microsoftonline.com",
    "graph.microsoft.us": "https://login.microsoftonline.us",  # US Government L4 (GCC High)
    "dod-graph.microsoft.us": "https://login.microsoftonline.us",  # US Government L5 (DoD)
    "microsoftgraph.chinacloudapi.cn": "https://login.chinacloudapi.cn",  # operated by 21Vianet
}


def authority_host_for(graph_url: str) -> str | None:
    """Return the sign-in host of the Microsoft cloud `graph_url` belongs to, None if unknown."""
    return AUTHORITY_HOSTS.get((urlsplit(graph_url).hostname or "").lower())


class GraphError(Exception):
    """Graph refused a request, or could not be reached; the message says which and why."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", said: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.said = said  # Graph's own message, if it gave one


class TokenSource(Protocol):
    """Where access tokens for Graph come from."""

    async def token(self) -> str:
        """Return a bearer token valid for at least a few minutes."""
        ...

    def forget(self) -> None:
        """Drop a token Graph refused, so the next one is fresh."""
        ...


@dataclass
class StaticToken:
    """A bearer token given in the settings: development against a Graph-compatible server."""

    value: str

    async def token(self) -> str:
        """Return the token as given."""
        return self.value

    def forget(self) -> None:
        """Keep the token: there is no other."""


@dataclass
class ClientCredentials:
    """App-only sign-in with the app registration's client secret, through msal.

    msal keeps the token in its in-memory cache and returns it until shortly before it
    expires; it is blocking, so it runs in a thread.
    """

    tenant_id: str
    client_id: str
    client_secret: str
    graph_url: str
    authority_host: str = "https://login.microsoftonline.com"
    _app: Any = field(default=None, init=False, repr=False)

    async def token(self) -> str:
        """Return a cached or newly acquired app-only token for Graph."""
        return await asyncio.to_thread(self._acquire)

    def forget(self) -> None:
        """Start again with an empty token cache."""
        self._app = None

    def _acquire(self) -> str:
        import msal

        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                authority=f"{self.authority_host.rstrip('/')}/{self.tenant_id}",
                client_credential=self.client_secret,
            )
        parts = urlsplit(self.graph_url)
        scope = f"{parts.scheme}://{parts.netloc}/.default"
        answer: dict[str, Any] = self._app.acquire_token_for_client(scopes=[scope])
        if "access_token" not in answer:
            raise GraphError(
                f"cannot sign in to Microsoft Graph as app {self.client_id}: "
                f"{answer.get('error', 'no token')}: {answer.get('error_description', '')}".strip()
            )
        return str(answer["access_token"])


def token_source(
    *,
    static_token: str,
    tenant_id: str,
    client_id: str,
    client_secret: str,
    graph_url: str,
    authority_host: str,
) -> TokenSource:
    """Return the static token if one is given (development), else app-only sign-in."""
    if static_token:
        return StaticToken(static_token)
    return ClientCredentials(tenant_id, client_id, client_secret, graph_url, authority_host)


@dataclass
class GraphCounts:
    """What a client has done: requests made, and how many Graph throttled or failed."""

    requests: int = 0
    throttled: int = 0
    retried: int = 0
    waited: float = 0.0


class GraphClient:
    """Make Graph requests with paging, throttling and retries; one per command or job."""

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        base_url: str,
        tokens: TokenSource,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        max_tries: int = MAX_TRIES,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._origin = _origin(self._base)
        self._tokens = tokens
        self._sleep = sleep
        self._jitter = jitter
        self._max_tries = max_tries
        self.counts = GraphCounts()

    @property
    def base_url(self) -> str:
        """Return the Graph address requests are made against, like https://…/v1.0."""
        return self._base

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Return the JSON body of a GET of `path` (relative to the base, or a link Graph gave)."""
        _status, body = await self.request("GET", path, params=params)
        return body

    async def pages(
        self, path: str, params: Mapping[str, str] | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each page of a collection, following `@odata.nextLink` to the last one."""
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else None
        _status, page = await self.request("GET", path, params=params, headers=headers)
        while True:
            yield page
            link = page.get("@odata.nextLink")
            if not link:
                return
            _status, page = await self.request("GET", str(link), headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> tuple[int, dict[str, Any]]:
        """Return (status, JSON body) of a 2xx answer or one in `accept`; raise GraphError else."""
        url = self._url(path)
        signed_in_again = False
        for attempt in range(1, self._max_tries + 1):
            token = await self._tokens.token()
            self.counts.requests += 1
            try:
                async with self._http.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                ) as response:
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
                    body = await _json_of(response)
            except (aiohttp.ClientError, TimeoutError) as error:
                if attempt == self._max_tries:
                    raise GraphError(
                        f"{method} {_shown(url)}: Graph cannot be reached ({error!r})"
                    ) from error
                await self._wait(None, attempt)
                continue
            if 200 <= status < 300 or status in accept:
                return status, body
            if status == 401 and not signed_in_again:
                self._tokens.forget()
                signed_in_again = True
                continue
            if status in RETRIED and attempt < self._max_tries:
                if status == 429:
                    self.counts.throttled += 1
                await self._wait(retry_after, attempt)
                continue
            raise _error(method, url, status, body)
        raise GraphError(f"{method} {_shown(url)}: no answer after {self._max_tries} tries")

    async def _wait(self, retry_after: str | None, attempt: int) -> None:
        """Wait as Graph asked, or back off exponentially; add jitter so callers spread out."""
        try:
            asked = float(retry_after) if retry_after is not None else None
        except ValueError:
            asked = None
        base = asked if asked is not None and asked >= 0 else min(2.0 ** (attempt - 1), 32.0)
        delay = min(base + base * 0.2 * self._jitter(), LONGEST_WAIT)
        self.counts.retried += 1
        self.counts.waited += delay
        await self._sleep(delay)

    def _url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            # Only follow links back to the Graph we were given: the token goes with them.
            if _origin(path) != self._origin:
                raise GraphError(f"Graph gave a link to another server: {_shown(path)}")
            return path
        return f"{self._base}/{path.lstrip('/')}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _shown(url: str) -> str:
    """Return a URL fit for a message: without its query (which may hold a skip token)."""
    return url.split("?", 1)[0]


async def _json_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    text = await response.text()
    if not text:
        return {}
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {"error": {"code": "", "message": text[:200]}}
    return body if isinstance(body, dict) else {"value": body}


def _error(method: str, url: str, status: int, body: dict[str, Any]) -> GraphError:
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = str(error.get("code", "")) if error else ""
    message = str(error.get("message", "")) if error else ""
    hint = {
        401: "the token was refused (check MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD, "
        "MICROSOFT_APP_TENANT_ID)",
        403: "the app lacks a permission or its admin consent (docs/deploy.md)",
        404: "not found",
    }.get(status, "")
    said = f"{code}: {message}".strip(": ")
    details = "; ".join(part for part in (hint, said) if part)
    return GraphError(
        f"{method} {_shown(url)}: Graph answered {status}" + (f" ({details})" if details else ""),
        status=status,
        code=code,
        said=message,
    )
