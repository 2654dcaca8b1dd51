"""Check that an activity really comes from the Bot Connector before the bot sees it.

botbuilder 4.17.1 validates the bearer token, but a malformed or forged token makes it raise
whatever the failing step raised (a `jwt.DecodeError`, an `IndexError` for an unknown key
id, a bare `Exception`), which would reach aiohttp as a 500. Here every failure to
authenticate becomes `NotAuthenticatedError` (answered 401), and only a failure to fetch
Microsoft's signing keys becomes `AuthenticationUnavailableError` (answered 503, so the
Connector retries).

botbuilder also fetches those keys with a blocking `requests.get` without a timeout, inside
the event loop, and every request that finds the keys a day old fetches them again, each on
its own. `use_async_key_refresh()` replaces that with:

- an aiohttp fetch with a timeout, one at a time: requests needing it wait for the same one;
- keys a day old refreshed in the background while the cached ones go on checking tokens,
  so a silent key endpoint delays nobody (up to `MAX_KEY_AGE`, past which they are not used);
- after a failed fetch, none for `RETRY_AFTER`; an unknown key id is a plain authentication
  failure, or 503 when the keys cannot be fetched to look for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any, cast

import aiohttp
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticateRequestResult
from botframework.connector.auth import jwt_token_extractor as botbuilder_jwt
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

KEY_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)


class NotAuthenticatedError(Exception):
    """The request does not carry a valid token for this bot."""


class AuthenticationUnavailableError(Exception):
    """Microsoft's signing keys could not be fetched, so no token can be checked now."""


class _KeyFetchError(Exception):
    pass


async def _refresh(self: Any) -> None:
    try:
        async with aiohttp.ClientSession(timeout=KEY_FETCH_TIMEOUT) as session:
            async with session.get(self.url) as response:
                response.raise_for_status()
                keys_url = (await response.json(content_type=None))["jwks_uri"]
            async with session.get(keys_url) as response:
                response.raise_for_status()
                keys = (await response.json(content_type=None))["keys"]
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as error:
        raise _KeyFetchError(f"{type(error).__name__} fetching {self.url}") from error
    self.keys = keys
    self.last_updated = datetime.now()


def _find(self: Any, key_id: str | None) -> Any:
    matching = [key for key in self.keys or [] if key.get("kid") == key_id]
    if not matching:
        return None
    public_key = RSAAlgorithm.from_jwk(json.dumps(matching[0]))
    return botbuilder_jwt._OpenIdConfig(public_key, matching[0].get("endorsements", []))


# Microsoft publishes its keys well ahead of use and keeps retired ones for weeks: cached
# keys may go on checking tokens for some days while the key endpoint does not answer.
REFRESH_AGE = timedelta(days=1)
MAX_KEY_AGE = timedelta(days=5)
UNKNOWN_KEY_REFRESH_AGE = timedelta(hours=1)
RETRY_AFTER = 30.0  # seconds after a failed fetch before another is tried


def _fetch_once(self: Any) -> asyncio.Future[None]:
    """Return the fetch of the keys in flight, starting one unless one failed just now."""
    loop = asyncio.get_running_loop()
    fetch = getattr(self, "_pqf_fetch", None)
    if fetch is not None and not fetch.done() and fetch.get_loop() is loop:
        return cast("asyncio.Future[None]", fetch)
    failed_at = getattr(self, "_pqf_failed_at", None)
    if failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER:
        raise _KeyFetchError(f"fetching {self.url} failed less than {RETRY_AFTER:.0f} s ago")
    fetch = loop.create_task(self._refresh(), name="signing-keys")
    self._pqf_fetch = fetch
    self._pqf_fetches = getattr(self, "_pqf_fetches", 0) + 1

    def settled(done: asyncio.Task[None]) -> None:
        error = None if done.cancelled() else done.exception()
        if error is not None or done.cancelled():
            self._pqf_failed_at = time.monotonic()
            log.warning("cannot refresh the signing keys: %s", error or "cancelled")
        else:
            self._pqf_failed_at = None

    fetch.add_done_callback(settled)
    return fetch


async def _await_fetch(self: Any) -> None:
    # Shielded: one request giving up (its client went away) does not stop the others' fetch.
    await asyncio.shield(_fetch_once(self))


async def _get(self: Any, key_id: str | None) -> Any:
    age = datetime.now() - self.last_updated
    if not self.keys or age > MAX_KEY_AGE:
        await _await_fetch(self)
    elif age > REFRESH_AGE:
        with contextlib.suppress(_KeyFetchError):
            _fetch_once(self)  # in the background; the cached keys answer meanwhile
    key = self._find(key_id)
    if key is None and datetime.now() - self.last_updated > UNKNOWN_KEY_REFRESH_AGE:
        # Perhaps a key newer than ours: look once (together with anyone else asking).
        await _await_fetch(self)
        key = self._find(key_id)
    return key


def use_async_key_refresh() -> None:
    """Make botbuilder fetch signing keys without blocking, once at a time (idempotent)."""
    metadata_class: Any = botbuilder_jwt._OpenIdMetadata
    metadata_class.get = _get
    metadata_class._refresh = _refresh
    metadata_class._find = _find


async def authenticate(
    adapter: CloudAdapter, activity: Activity, auth_header: str
) -> AuthenticateRequestResult:
    """Return botbuilder's authentication result, or raise one of this module's errors."""
    try:
        return await adapter.bot_framework_authentication.authenticate_request(
            activity, auth_header
        )
    except _KeyFetchError as error:
        log.warning("cannot check tokens: %s", error)
        raise AuthenticationUnavailableError(str(error)) from error
    except Exception as error:
        # botbuilder signals a bad token with PermissionError, jwt errors, IndexError and
        # bare Exceptions alike; none of them may become a 500.
        log.info("refused a request: %s", type(error).__name__)
        raise NotAuthenticatedError(type(error).__name__) from error
