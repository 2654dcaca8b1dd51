"""Answers Teams would not take during their turn, put in the outbox to follow a moment later.

The adapter tries an answer again while the turn's time allows
(`delivery.answers.ReplyLimits`); what still cannot go comes here, as JSON, and the outbox
sender delivers it within seconds, in order with the turn's other late answers. Each is
queued once: its key names the person, the activity Teams sent (so a turn Teams posts twice
queues nothing twice) and its place among the turn's late answers.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from delivery.answers import AnsweredTurn
from storage import outbox, roster
from storage.database import Database

# Where an activity is going: the outbox sender fills these in from the person's stored chat.
_ADDRESSING = frozenset(
    {
        "id", "replyToId", "conversation", "from", "recipient", "serviceUrl", "channelId",
        "timestamp", "localTimestamp", "locale",
    }
)  # fmt: skip


class OutboxReplies:
    """Queues a turn's undelivered answers in the outbox, for the outbox sender to deliver."""

    def __init__(
        self, *, database: Database, clock: Callable[[], datetime], zone: ZoneInfo
    ) -> None:
        self._database = database
        self._clock = clock
        self._zone = zone

    async def queue(
        self, turn: AnsweredTurn, answer: dict[str, Any], *, number: int, not_before: float
    ) -> bool:
        """Queue the turn's `number`th late answer (its JSON); False if it has nowhere to go."""
        if not turn.aad_object_id or not turn.personal_chat:
            return False
        now = self._clock()
        async with self._database.session() as session:
            staff = await roster.staff_by_aad_id(session=session, aad_object_id=turn.aad_object_id)
            if staff is None or staff.id is None:
                return False
            await outbox.enqueue(
                session=session,
                key=f"reply:{staff.id}:{_turn_key(turn)}:{number}",
                recipient_id=staff.id,
                purpose=outbox.REPLY,
                period=f"{now.astimezone(self._zone):%Y-%m}",
                activity=_content(answer),
                not_before=now + timedelta(seconds=not_before),
            )
        return True


def _turn_key(turn: AnsweredTurn) -> str:
    """Return a short key for the turn: the activity Teams sent, which it may send again."""
    if not turn.activity_id:
        return secrets.token_hex(10)
    seen = f"{turn.conversation_id}|{turn.activity_id}"
    return hashlib.sha256(seen.encode()).hexdigest()[:20]


def _content(answer: dict[str, Any]) -> dict[str, Any]:
    """Return what the answer says, without where it was going (the sender addresses it)."""
    return {key: value for key, value in answer.items() if key not in _ADDRESSING}
