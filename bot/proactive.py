"""Send outbox messages to people's personal chats with the bot."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
)
from botframework.connector.models import ErrorResponseException

from storage import outbox, roster
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus, Staff, TeamsConversation

log = logging.getLogger(__name__)

# Teams answers 403 when the person blocked or removed the app, 404 when the chat is gone.
UNDELIVERABLE_STATUSES = frozenset({403, 404})


class Delivery(StrEnum):
    SENT = "sent"
    NOT_INSTALLED = "not_installed"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one outbox message."""

    message_id: int
    outcome: Delivery
    detail: str = ""


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
    """Delivers outbox messages one at a time through the adapter."""

    def __init__(self, *, adapter: CloudAdapter, database: Database, app_id: str) -> None:
        self._adapter = adapter
        self._database = database
        self._app_id = app_id

    async def deliver(self, message_id: int) -> DeliveryResult:
        """Send one pending message and record the outcome in the outbox."""
        async with self._database.session() as session:
            message = await session.get(OutboxMessage, message_id)
            if message is None or message.status != OutboxStatus.PENDING:
                return DeliveryResult(message_id, Delivery.FAILED, "not pending")
            staff = await session.get(Staff, message.recipient_id)
            conversation = None
            if staff is not None and staff.aad_object_id:
                conversation = await roster.conversation_of(
                    session=session, aad_object_id=staff.aad_object_id
                )
            activity = Activity().deserialize(json.loads(message.activity))
        if conversation is None:
            return DeliveryResult(message_id, Delivery.NOT_INSTALLED)

        sent_ids: list[str | None] = []

        async def send(context: TurnContext) -> None:
            response = await context.send_activity(activity)
            sent_ids.append(response.id if response else None)

        outcome, detail = Delivery.SENT, ""
        try:
            await self._adapter.continue_conversation(
                conversation_reference(conversation), send, self._app_id
            )
        except ErrorResponseException as error:
            status = getattr(error.response, "status_code", 0)
            outcome = (
                Delivery.UNDELIVERABLE if status in UNDELIVERABLE_STATUSES else Delivery.FAILED
            )
            detail = f"HTTP {status}"
        except (OSError, TimeoutError) as error:
            outcome, detail = Delivery.FAILED, type(error).__name__
        async with self._database.session() as session:
            message = await session.get(OutboxMessage, message_id)
            assert message is not None
            if outcome is Delivery.SENT:
                await outbox.mark_sent(
                    session=session, message=message, activity_id=sent_ids[0] if sent_ids else None
                )
            else:
                await outbox.mark_failed(
                    session=session,
                    message=message,
                    error=detail,
                    undeliverable=outcome is Delivery.UNDELIVERABLE,
                )
        log.info("outbox message %s: %s %s", message_id, outcome, detail)
        return DeliveryResult(message_id, outcome, detail)
