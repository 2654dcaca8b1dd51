"""Check that an activity really comes from the Bot Connector before the bot sees it.

botbuilder 4.17.1 validates the bearer token, but a malformed or forged token makes it raise
whatever the failing step raised (a `jwt.DecodeError`, an `IndexError` for an unknown key
id, a bare `Exception`), which would reach aiohttp as a 500. Here every failure to
authenticate becomes `NotAuthenticatedError` (answered 401), and only a failure to fetch
Microsoft's signing keys becomes `AuthenticationUnavailableError` (answered 503, so the
Connector retries).

botbuilder also fetches those keys with a blocking `requests.get` without a timeout, inside
the event loop. `use_async_key_refresh()` replaces that fetch with an aiohttp one with a
timeout, and makes an unknown key id a plain authentication failure.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

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


def use_async_key_refresh() -> None:
    """Make botbuilder fetch signing keys without blocking, with a timeout (idempotent)."""
    metadata_class: Any = botbuilder_jwt._OpenIdMetadata
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
