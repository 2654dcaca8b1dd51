"""A person's stored personal chat as botbuilder addresses it, for a proactive send."""

from __future__ import annotations

from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

from storage.models import TeamsConversation

# Where a proactive turn tells the adapter how long its send may take, in seconds: the
# request is cut off then, so a send given up on cannot still reach Teams afterwards.
SEND_TIMEOUT = "pqf.send_timeout"


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
