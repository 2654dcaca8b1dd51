"""The botbuilder adapter, configured from our settings, and what it does when a turn fails.

The set-up only: authentication, Connector clients reused between turns, plain-JSON cards
passed through msrest unwalked. What the adapter does with a turn's answers (tries again
within the turn's time, the outbox for what still cannot go) is `delivery.answers`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from msrest.serialization import Serializer

from bot.auth import use_async_key_refresh
from bot.settings import Settings
from delivery.answers import ReplyLimits, TeamsAdapter
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


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_json(value: Any) -> bool:
    """Say whether the value is made only of dicts (string keys), lists and JSON scalars."""
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and _plain_json(item) for key, item in value.items())
    if kind is list:
        return all(_plain_json(item) for item in value)
    return kind in _JSON_SCALARS


class JsonContentSerializer(Serializer):
    """msrest's serializer, passing plain JSON (an Adaptive Card, a card's value) as it is.

    msrest serialises an `object` field (an attachment's content, an activity's value) node
    by node, looking each one up among the Connector's 159 model classes: for a criterion
    card, most of the cost of sending it. For plain JSON that walk gives back an equal copy,
    so it is skipped; anything else (a model, a date) goes the long way, as before.
    """

    def serialize_object(self, attr: Any, **kwargs: Any) -> Any:
        if _plain_json(attr):
            return attr
        return super().serialize_object(attr, **kwargs)  # type: ignore[no-untyped-call]


def _with_json_content_serializer(client: ConnectorClient) -> ConnectorClient:
    """Have the client's operations serialise with `JsonContentSerializer`."""
    serializer = JsonContentSerializer(client._serialize.dependencies)  # type: ignore[no-untyped-call]
    client._serialize = serializer
    for operations in (client.conversations, client.attachments):
        operations._serialize = serializer
    return client


def _tried_once(client: ConnectorClient) -> ConnectorClient:
    """Have the client make each request once, with timeouts: we decide what is tried again.

    msrest's own policy has urllib3 repeat a PUT (a card update; never a POST) that Teams
    refused with a 5xx three times, sleeping up to 4.8 s in an executor thread, unseen by
    the turn's time budget and the rate window, and then raise without the status; and
    its timeout is 100 s, far past the 15 s Teams waits for a turn.
    """
    # Changed in place: the client's HTTP session already holds this policy object.
    policy = client.config.retry_policy.policy
    policy.total = policy.connect = policy.read = policy.status = 0
    policy.status_forcelist = frozenset()
    policy.raise_on_status = False
    client.config.connection.timeout = (ReplyLimits.connect_timeout, ReplyLimits.read_timeout)
    return client


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
            client = _tried_once(
                _with_json_content_serializer(await self._inner.create(service_url, audience))
            )
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


def create_adapter(
    settings: Settings, *, clock: Callable[[], datetime] | None = None
) -> TeamsAdapter:
    """Return the adapter; with no app id (development only) it skips authentication."""
    configuration = AuthConfiguration(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        # botbuilder only allows "no credentials" (authentication off) for MultiTenant;
        # settings refuse to start production without credentials.
        APP_TYPE=settings.app_type if settings.app_id else "MultiTenant",
        APP_TENANTID=settings.app_tenant_id,
    )
    use_async_key_refresh()
    adapter = TeamsAdapter(ReusingAuthentication(configuration), clock=clock)
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
