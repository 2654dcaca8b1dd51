"""The botbuilder adapter, configured from our settings, and what it does when a turn fails."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)

from bot.auth import use_async_key_refresh
from bot.settings import Settings
from storage.bot_state import StateConflictError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthConfiguration:
    # The attribute names botbuilder's ConfigurationBotFrameworkAuthentication reads.
    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str


# Connector clients kept for reuse: one per service URL and audience in practice (a few).
CLIENTS_KEPT = 32


def _app_id(claims_identity: ClaimsIdentity) -> str | None:
    # As botbuilder reads it: the audience claim from Teams, the app id claim otherwise.
    value = claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
    if value is None:
        value = claims_identity.get_claim_value(AuthenticationConstants.APP_ID_CLAIM)
    return value if isinstance(value, str) else None


class _ReusedClients:
    """Clients built once per key, the oldest forgotten past `CLIENTS_KEPT`."""

    def __init__(self) -> None:
        self._clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> Any | None:
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
        return client

    def keep(self, key: tuple[Any, ...], client: Any) -> None:
        self._clients[key] = client
        while len(self._clients) > CLIENTS_KEPT:
            self._clients.popitem(last=False)


class _ReusingConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    """A turn's connector factory that hands out the Connector client already built."""

    def __init__(self, inner: ConnectorFactory, app_id: str | None, clients: _ReusedClients):
        self._inner = inner
        self._app_id = app_id
        self._clients = clients

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = ("connector", self._app_id, service_url, audience)
        client = self._clients.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            self._clients.keep(key, client)
        return client


class ReusingAuthentication(ConfigurationBotFrameworkAuthentication):  # type: ignore[misc]
    """botbuilder's authentication, reusing the Connector and token clients between turns.

    CloudAdapter builds a Connector client and a user-token client for every turn, and
    each builds an HTTP session, a retry policy and a pipeline: about a quarter of a
    turn's CPU in benchmark 1. They hold nothing of the turn (credentials fetch and cache
    their own tokens), so one per app, service URL and audience serves every turn, as
    botbuilder's older BotFrameworkAdapter kept them.
    """

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self._clients = _ReusedClients()

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        result = await super().authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _ReusingConnectorFactory(
                result.connector_factory, _app_id(result.claims_identity), self._clients
            )
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _ReusingConnectorFactory(
            super().create_connector_factory(claims_identity),
            _app_id(claims_identity),
            self._clients,
        )

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        key = ("user-token", _app_id(claims_identity))
        client = self._clients.get(key)
        if client is None:
            client = await super().create_user_token_client(claims_identity)
            self._clients.keep(key, client)
        return client


def create_adapter(settings: Settings) -> CloudAdapter:
    """Return a CloudAdapter; with no app id (development only) it skips authentication."""
    configuration = AuthConfiguration(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        # botbuilder only allows "no credentials" (authentication off) for MultiTenant;
        # settings refuse to start production without credentials.
        APP_TYPE=settings.app_type if settings.app_id else "MultiTenant",
        APP_TENANTID=settings.app_tenant_id,
    )
    use_async_key_refresh()
    adapter = CloudAdapter(ReusingAuthentication(configuration))
    adapter.on_turn_error = on_turn_error
    return adapter


async def on_turn_error(context: TurnContext, error: Exception) -> None:
    """Tell the person something went wrong; log the error without personal data."""
    if isinstance(error, StateConflictError):
        log.info("two turns of one conversation overlapped; the later one was refused")
        message = "I was still saving your previous answer. Please try that again."
    else:
        log.error(
            "turn failed: %s (activity type %s)",
            type(error).__name__,
            context.activity.type,
            exc_info=(type(error), error, error.__traceback__),
        )
        message = (
            "Sorry, something went wrong on my side. Your saved answers are safe. Please try "
            "again, or type **help**."
        )
    try:
        await context.send_activity(message)
    except Exception:
        log.warning("could not tell the user about the failed turn", exc_info=True)
