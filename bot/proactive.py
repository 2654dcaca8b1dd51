"""Send outbox messages to people's personal chats with the bot.

The sending itself (claims, rate limits, retries) is `bot.outbox_sender`; this module keeps
what it shares with the adapter (the conversation reference, the outcome of a delivery, how
to read Teams' Retry-After) and the one-message sender of the `pqf-bot request` command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference
from botframework.connector.models import ErrorResponseException

from practice.framework import Framework
from storage.database import Database
from storage.models import TeamsConversation

# Teams answers 403 when the person blocked or removed the app, 404 when the chat is gone.
UNDELIVERABLE_STATUSES = frozenset({403, 404})
# Where a proactive turn tells the adapter how long its send may take, in seconds: the
# request is cut off then, so a send given up on cannot still reach Teams afterwards.
SEND_TIMEOUT = "pqf.send_timeout"


class Delivery(StrEnum):
    """The outcome of one attempt to deliver an outbox message."""

    SENT = "sent"
    NOT_INSTALLED = "not_installed"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"  # not sent this time; pending, to be tried again


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one outbox message."""

    message_id: int
    outcome: Delivery
    detail: str = ""
    retry_at: datetime | None = None  # when a failed message will be tried again


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After value (seconds or an HTTP date) asks to wait."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_after_of(error: ErrorResponseException, now: datetime) -> float | None:
    """Return the Retry-After of a Connector error answer, in seconds, if it has one."""
    # msrest keeps the `requests.Response` as `error.response`; its headers ignore case.
    headers = getattr(getattr(error, "response", None), "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    return parse_retry_after(value if isinstance(value, str) else None, now)


def conversation_reference(conversation: TeamsConversation) -> ConversationReference:
    """Return the botbuilder reference for a stored personal chat."""
    return ConversationReference(
        channel_id=conversation.channel_id,
        service_url=conversation.service_url,
        conversation=ConversationAccount(
            id=conversation.conversation_id,
            tenant_id=conversation.tenant_id,
            conversation_type="personal",
        ),
        user=ChannelAccount(
            id=conversation.teams_user_id, aad_object_id=conversation.aad_object_id
        ),
        bot=ChannelAccount(id=conversation.bot_id),
    )


class ProactiveSender:
    """Delivers one outbox message at a time, now (the `pqf-bot request` command)."""

    def __init__(
        self,
        *,
        adapter: CloudAdapter,
        database: Database,
        app_id: str,
        framework: Framework | None = None,
    ) -> None:
        # Imported here: the outbox sender imports this module for the reference and results.
        from bot.outbox_sender import OutboxSender

        self._sender = OutboxSender(
            database=database, adapter=adapter, app_id=app_id, framework=framework
        )

    async def deliver(self, message_id: int) -> DeliveryResult:
        """Send one pending message and record the outcome in the outbox."""
        return await self._sender.deliver(message_id)
