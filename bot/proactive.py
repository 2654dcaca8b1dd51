"""Send outbox messages to people's personal chats with the bot.

The sending itself (claims, rate limits, retries) is `bot.outbox_sender`; this module keeps
what both need (the conversation reference and the outcome of a delivery) and the
one-message sender of the `pqf-bot request` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

from practice.framework import Framework
from storage.database import Database
from storage.models import TeamsConversation

# Teams answers 403 when the person blocked or removed the app, 404 when the chat is gone.
UNDELIVERABLE_STATUSES = frozenset({403, 404})


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
