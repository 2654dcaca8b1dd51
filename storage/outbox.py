"""The outbox: proactive messages written down before they are sent, each once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, case, exists, func, text, update
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OutboxMessage, OutboxStatus, Staff, TeamsConversation


async def enqueue(
    *,
    session: AsyncSession,
    key: str,
    recipient_id: int,
    purpose: str,
    period: str,
    activity: dict[str, Any],
    audit_id: int | None = None,
    not_before: datetime | None = None,
) -> tuple[OutboxMessage, bool]:
    """Add a message unless one with this key exists; return it and whether it is new."""
    existing = (
        await session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    ).first()
    if existing is not None:
        return existing, False
    message = OutboxMessage(
        idempotency_key=key,
        recipient_id=recipient_id,
        purpose=purpose,
        period=period,
        audit_id=audit_id,
        activity=json.dumps(activity, separators=(",", ":")),
        status=OutboxStatus.PENDING,
        next_attempt_at=not_before,
    )
    try:
        async with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Written by someone else since we looked: theirs is the one.
        existing = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
        ).one()
        return existing, False
    return message, True


async def pending_for(*, session: AsyncSession, recipient_id: int) -> list[OutboxMessage]:
    """Return a recipient's messages not yet sent, oldest first."""
    rows = await session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.recipient_id == recipient_id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .order_by(col(OutboxMessage.id))
    )
    return list(rows)


# -- claiming and recording sends ---------------------------------------------------------
#
# A sender claims due messages before sending them: it writes its id and a lease into the
# row, so no other sender takes them while the lease runs. A sender that dies leaves its
# claims to lapse, and then they are claimable again: nothing is lost.
#
# A message is only claimable when no earlier message to the same person is waiting (a
# retry not yet due, or a claim still held), so each person gets their messages in order.

# The class id of our advisory locks (two-key form), so they cannot meet other locks.
_CLAIM_LOCK_CLASS = 0x0B0C5
# How often to look past people another sender is claiming for, before giving up for now.
_CLAIM_ROUNDS = 4
NOT_INSTALLED = "not installed"
# The purpose of an answer to a person that could not be sent during its turn.
REPLY = "reply"


@dataclass(frozen=True)
class OutboxSummary:
    """How many messages are sent, waiting, being retried and undeliverable."""

    sent: int = 0
    pending: int = 0
    retrying: int = 0
    undeliverable: int = 0


@dataclass(frozen=True)
class UndeliverableRecipient:
    """Someone a message could not reach, and why (their latest undeliverable message)."""

    recipient_id: int
    last_error: str


def _claimable(message: type[OutboxMessage], now: datetime) -> ColumnElement[bool]:
    """Return the condition for a message that is due and not claimed by a live sender."""
    return and_(
        col(message.status) == OutboxStatus.PENDING,
        or_(col(message.next_attempt_at).is_(None), col(message.next_attempt_at) <= now),
        or_(col(message.claimed_until).is_(None), col(message.claimed_until) < now),
    )


def _first_in_line(message: type[OutboxMessage], now: datetime) -> ColumnElement[bool]:
    """Return the condition that no earlier message to the same person is still waiting.

    An answer that could not be sent in its turn (purpose "reply") waits only behind the
    person's earlier answers: they are talking with the bot now, and a notice waiting out
    a back-off (or an hour, queued before their chat was known) must not hold up the card
    they are to answer next.
    """
    earlier = aliased(OutboxMessage)
    return ~exists().where(
        col(earlier.recipient_id) == col(message.recipient_id),
        col(earlier.status) == OutboxStatus.PENDING,
        col(earlier.id) < col(message.id),
        or_(col(earlier.next_attempt_at) > now, col(earlier.claimed_until) >= now),
        or_(col(message.purpose) != REPLY, col(earlier.purpose) == REPLY),
    )


async def refresh_statistics(*, session: AsyncSession) -> None:
    """Have PostgreSQL count the outbox afresh, after a month's messages were queued in bulk.

    With statistics from before (few pending rows), its plan for `claim_due` looks for each
    candidate's earlier messages among every pending row: 1-4 s a claim of 50 with 2,000 to
    10,000 pending, instead of a tenth of a second (bench/cluster.py). Autovacuum catches
    up in time, but a month's dispatch starts sending at once.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(text("ANALYZE outbox_message"))


async def claim_due(
    *, session: AsyncSession, instance_id: str, now: datetime, lease: timedelta, limit: int
) -> list[OutboxMessage]:
    """Claim up to `limit` due messages for this sender, oldest first, and return them."""
    candidate = aliased(OutboxMessage)
    due = and_(_claimable(candidate, now), _first_in_line(candidate, now))
    claim = {"claimed_until": now + lease, "claimed_by": instance_id}
    if session.get_bind().dialect.name != "postgresql":
        # SQLite runs one writer at a time, so one UPDATE sees every earlier claim.
        picked = select(candidate.id).where(due).order_by(col(candidate.id)).limit(limit)
        claimed = list(
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(picked), _claimable(OutboxMessage, now))
                .values(**claim)
                .returning(col(OutboxMessage.id))
            )
        )
        return await _by_ids(session=session, ids=[row[0] for row in claimed])

    # On PostgreSQL two senders claim at once. Row locks (SKIP LOCKED) keep them from
    # claiming the same message; a lock per recipient, held until commit, keeps them from
    # each claiming a different message of one person, which would break the order. The
    # statements after the lock see every claim committed before it.
    skip: list[int] = []  # people another sender is claiming for, or just claimed for
    for _ in range(_CLAIM_ROUNDS):
        seen = await session.exec(
            select(candidate.recipient_id)
            .where(due, col(candidate.recipient_id).not_in(skip))
            .order_by(col(candidate.id))
            .limit(limit)
        )
        recipients = list(dict.fromkeys(seen))
        if not recipients:
            return []
        # One try-lock per recipient, in one round trip; a try never waits, so two
        # senders cannot deadlock.
        got = (
            await session.exec(
                select(
                    array(
                        [func.pg_try_advisory_xact_lock(_CLAIM_LOCK_CLASS, r) for r in recipients]
                    )
                )
            )
        ).one()
        mine = [r for r, locked in zip(recipients, got, strict=True) if locked]
        skip += [r for r, locked in zip(recipients, got, strict=True) if not locked]
        if not mine:
            continue
        rows = await session.exec(
            select(candidate.id)
            .where(due, col(candidate.recipient_id).in_(mine))
            .order_by(col(candidate.id))
            .limit(limit)
            .with_for_update(skip_locked=True, of=candidate)
        )
        ids = [message_id for message_id in rows if message_id is not None]
        if not ids:
            # Another sender claimed theirs and committed after we looked.
            skip += mine
            continue
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids), _claimable(OutboxMessage, now))
            .values(**claim)
        )
        return await _by_ids(session=session, ids=ids)
    return []


async def claim_one(
    *, session: AsyncSession, message_id: int, instance_id: str, now: datetime, lease: timedelta
) -> OutboxMessage | None:
    """Claim one pending message now, whatever its retry time; None if not pending or held."""
    result = await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            or_(col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) < now),
        )
        .values(claimed_until=now + lease, claimed_by=instance_id)
    )
    if result.rowcount != 1:
        return None
    found = await _by_ids(session=session, ids=[message_id])
    return found[0]


async def renew_claims(
    *,
    session: AsyncSession,
    message_ids: Sequence[int],
    instance_id: str,
    now: datetime,
    until: datetime,
) -> set[int]:
    """Extend this sender's live claims on these messages; return the ids still held."""
    if not message_ids:
        return set()
    rows = await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(message_ids),
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            col(OutboxMessage.claimed_by) == instance_id,
            col(OutboxMessage.claimed_until) > now,
        )
        .values(claimed_until=until)
        .returning(col(OutboxMessage.id))
    )
    return {row[0] for row in rows}


async def record_sent(
    *, session: AsyncSession, message_id: int, activity_id: str | None, now: datetime
) -> bool:
    """Record that Teams accepted the message; False if it was already recorded as sent."""
    # Not conditional on the claim: the message did go out, whoever holds it now.
    result = await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
        )
        .values(
            status=OutboxStatus.SENT,
            sent_activity_id=activity_id,
            sent_at=now,
            attempts=OutboxMessage.attempts + 1,
            last_error="",
            next_attempt_at=None,
            claimed_until=None,
            claimed_by=None,
        )
    )
    return result.rowcount == 1


async def record_retry(
    *,
    session: AsyncSession,
    message_id: int,
    instance_id: str,
    error: str,
    next_attempt_at: datetime,
) -> bool:
    """Count a failed attempt and schedule the next; False if this sender lost the claim."""
    result = await session.exec(
        _held(message_id, instance_id).values(
            attempts=OutboxMessage.attempts + 1,
            last_error=error[:300],
            next_attempt_at=next_attempt_at,
            claimed_until=None,
            claimed_by=None,
        )
    )
    return result.rowcount == 1


async def record_undeliverable(
    *, session: AsyncSession, message_id: int, instance_id: str, error: str
) -> bool:
    """Count a last failed attempt and stop trying; False if this sender lost the claim."""
    result = await session.exec(
        _held(message_id, instance_id).values(
            status=OutboxStatus.UNDELIVERABLE,
            attempts=OutboxMessage.attempts + 1,
            last_error=error[:300],
            next_attempt_at=None,
            claimed_until=None,
            claimed_by=None,
        )
    )
    return result.rowcount == 1


async def defer_until_installed(
    *, session: AsyncSession, message_ids: Sequence[int], instance_id: str, until: datetime
) -> int:
    """Put claimed messages back until `until`, as their recipient has no installed chat.

    Those whose recipient installed the app since the sender looked are given back due now
    instead, so an installation at that moment does not leave them waiting. Return how many
    were put off.
    """
    if not message_ids:
        return 0
    installed = exists().where(
        col(Staff.id) == col(OutboxMessage.recipient_id),
        func.lower(col(Staff.aad_object_id)) == col(TeamsConversation.aad_object_id),
        col(TeamsConversation.installed).is_(True),
    )
    result = await session.exec(
        _held_many(message_ids, instance_id)
        .where(~installed)
        .values(
            last_error=NOT_INSTALLED, next_attempt_at=until, claimed_until=None, claimed_by=None
        )
    )
    await release(session=session, message_ids=message_ids, instance_id=instance_id)
    return result.rowcount


async def release(*, session: AsyncSession, message_ids: Sequence[int], instance_id: str) -> int:
    """Give back claimed messages unsent and unchanged, to be claimed again."""
    if not message_ids:
        return 0
    result = await session.exec(
        _held_many(message_ids, instance_id).values(claimed_until=None, claimed_by=None)
    )
    return result.rowcount


async def wake(*, session: AsyncSession, recipient_id: int) -> int:
    """Make a person's messages put off until they had the app due now; return how many wait.

    Called when they install the app (or first write to it): the sender then delivers
    everything queued for them, in order, within Teams' limits.
    """
    await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.recipient_id) == recipient_id,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            col(OutboxMessage.last_error) == NOT_INSTALLED,
        )
        .values(next_attempt_at=None, last_error="")
    )
    waiting = await session.exec(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            col(OutboxMessage.recipient_id) == recipient_id,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
        )
    )
    return int(waiting.one())


async def summary(*, session: AsyncSession, period: str | None = None) -> OutboxSummary:
    """Count messages by outcome, for one period ("YYYY-MM") or all."""
    retried = case((col(OutboxMessage.attempts) > 0, True), else_=False)
    statement = select(col(OutboxMessage.status), retried, func.count()).group_by(
        col(OutboxMessage.status), retried
    )
    if period is not None:
        statement = statement.where(col(OutboxMessage.period) == period)
    counts = {"sent": 0, "pending": 0, "retrying": 0, "undeliverable": 0}
    for status, was_retried, count in await session.exec(statement):
        if status == OutboxStatus.PENDING:
            counts["retrying" if was_retried else "pending"] += count
        elif status in counts:
            counts[status] += count
    return OutboxSummary(**counts)


async def purposes(*, session: AsyncSession, period: str | None = None) -> list[str]:
    """Return what the messages of one period ("YYYY-MM"), or of all, were for, sorted."""
    statement = select(OutboxMessage.purpose)
    if period is not None:
        statement = statement.where(col(OutboxMessage.period) == period)
    return sorted(set(await session.exec(statement)))


async def undeliverable_recipients(
    *, session: AsyncSession, period: str
) -> list[UndeliverableRecipient]:
    """Return the people a period's messages could not reach, each with the latest reason."""
    rows = await session.exec(
        select(OutboxMessage.recipient_id, OutboxMessage.last_error)
        .where(
            col(OutboxMessage.period) == period,
            col(OutboxMessage.status) == OutboxStatus.UNDELIVERABLE,
        )
        .order_by(col(OutboxMessage.id))
    )
    latest = {recipient_id: error for recipient_id, error in rows}
    return [UndeliverableRecipient(r, latest[r]) for r in sorted(latest)]


def _held(message_id: int, instance_id: str) -> Update:
    return _held_many([message_id], instance_id)


def _held_many(message_ids: Sequence[int], instance_id: str) -> Update:
    return update(OutboxMessage).where(
        col(OutboxMessage.id).in_(message_ids),
        col(OutboxMessage.status) == OutboxStatus.PENDING,
        col(OutboxMessage.claimed_by) == instance_id,
    )


async def _by_ids(*, session: AsyncSession, ids: Sequence[int]) -> list[OutboxMessage]:
    if not ids:
        return []
    # populate_existing: the UPDATE bypassed the session, so cached rows would be stale.
    rows = await session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .order_by(col(OutboxMessage.id))
        .execution_options(populate_existing=True)
    )
    return list(rows)
