"""The botbuilder adapter, configured from our settings, and what it does when a turn fails."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ActivityEventNames, ActivityTypes, ResourceResponse
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
            client = _with_json_content_serializer(await self._inner.create(service_url, audience))
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


class RequestCounter(Protocol):
    """Counts the requests this process makes to Teams against the tenant's limit."""

    def replies_started(self, count: int) -> None: ...

    def replies_finished(self, count: int) -> None: ...


class TeamsAdapter(CloudAdapter):  # type: ignore[misc]
    """The CloudAdapter, counting the requests its answers to people make.

    Teams allows an app 50 requests a second per tenant, answers and proactive messages
    together. Told of the answers (`replies`), the outbox sender leaves them room rather
    than keeping a fixed share of the limit idle for them; its own messages, sent in
    proactive turns, it counts itself.
    """

    replies: RequestCounter | None = None

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        requests = self._requests(context, activities)
        sending = super().send_activities(context, activities)
        responses: list[ResourceResponse] = (
            await self._counted(requests, sending)
            if requests and self.replies is not None
            else await sending
        )
        return responses

    async def update_activity(self, context: TurnContext, activity: Activity) -> Any:
        if self.replies is None or _proactive(context):
            return await super().update_activity(context, activity)
        return await self._counted(1, super().update_activity(context, activity))

    async def delete_activity(self, context: TurnContext, reference: Any) -> Any:
        if self.replies is None or _proactive(context):
            return await super().delete_activity(context, reference)
        return await self._counted(1, super().delete_activity(context, reference))

    async def _counted(self, requests: int, sending: Awaitable[Any]) -> Any:
        assert self.replies is not None
        self.replies.replies_started(requests)
        try:
            return await sending
        finally:
            self.replies.replies_finished(requests)

    @staticmethod
    def _requests(context: TurnContext, activities: list[Activity]) -> int:
        """Return how many of the activities the adapter posts to Teams (an answer's)."""
        if _proactive(context):
            return 0
        # A delay is a pause, an invoke response the HTTP answer itself, a trace shown only
        # in the Bot Framework Emulator: none is a request to Teams.
        return sum(
            1
            for activity in activities
            if activity.type not in ("delay", ActivityTypes.invoke_response, ActivityTypes.trace)
        )


def _proactive(context: TurnContext) -> bool:
    activity = context.activity
    return (
        activity is not None
        and activity.type == ActivityTypes.event
        and activity.name == ActivityEventNames.continue_conversation
    )


def create_adapter(settings: Settings) -> TeamsAdapter:
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
    adapter = TeamsAdapter(ReusingAuthentication(configuration))
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
