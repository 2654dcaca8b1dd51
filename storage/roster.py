"""Read the staff roster, the case list and people's Teams conversations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import and_, col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.access import AuditAccess, Viewer
from storage.app_installs import installs_of
from storage.models import (
    AuditRequest,
    CaseRecord,
    CaseStatus,
    InstallState,
    ModerationSample,
    OutboxMessage,
    OutboxStatus,
    Staff,
    TeamsConversation,
    utc_now,
)


async def staff_by_aad_id(*, session: AsyncSession, aad_object_id: str) -> Staff | None:
    """Return the member of staff with this Entra ID (Azure AD) object id, or None."""
    return (
        await session.exec(select(Staff).where(Staff.aad_object_id == aad_object_id.lower()))
    ).first()


# Built once (every message runs it): building it anew cost more than running it.
_STAFF_AND_CHAT = (
    select(Staff, TeamsConversation)
    .outerjoin(
        TeamsConversation,
        and_(
            col(TeamsConversation.aad_object_id) == bindparam("aad"),
            col(TeamsConversation.installed).is_(True),
        ),
    )
    .where(col(Staff.aad_object_id) == bindparam("aad"))
)


async def staff_and_conversation_by_aad_id(
    *, session: AsyncSession, aad_object_id: str
) -> tuple[Staff | None, TeamsConversation | None]:
    """Return the member of staff with this object id and their stored chat, in one query.

    The same as `staff_by_aad_id` and `conversation_of` together; every message needs both.
    """
    row = (await session.exec(_STAFF_AND_CHAT, params={"aad": aad_object_id.lower()})).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def staff_by_email(*, session: AsyncSession, email: str) -> Staff | None:
    """Return the member of staff with this email address (any case), or None."""
    return (await session.exec(select(Staff).where(Staff.email == email.strip().lower()))).first()


async def staff_by_id(*, session: AsyncSession, staff_id: int) -> Staff | None:
    """Return the member of staff with this id, or None."""
    return await session.get(Staff, staff_id)


async def staff_by_ids(*, session: AsyncSession, ids: Sequence[int]) -> dict[int, Staff]:
    """Return the members of staff with these ids, by id."""
    if not ids:
        return {}
    rows = await session.exec(select(Staff).where(col(Staff.id).in_(set(ids))))
    return {s.id: s for s in rows if s.id is not None}


async def all_staff(*, session: AsyncSession) -> list[Staff]:
    """Return everyone on the roster, active or not, by id."""
    return list(await session.exec(select(Staff).order_by(col(Staff.id))))


async def case_by_reference(*, session: AsyncSession, reference: str) -> CaseRecord | None:
    """Return the case with this reference (any case of letters), or None."""
    return (
        await session.exec(
            select(CaseRecord).where(CaseRecord.reference == reference.strip().upper())
        )
    ).first()


async def add_case_from_auditor(
    *, session: AsyncSession, reference: str, team: str, worker_id: int | None
) -> CaseRecord:
    """Record an open case an auditor named that is not on the imported case list yet."""
    case = CaseRecord(
        reference=reference,
        team=team,
        allocated_worker_id=worker_id,
        status=CaseStatus.OPEN,
        added_by_auditor=True,
    )
    session.add(case)
    await session.flush()
    return case


async def case_references(*, session: AsyncSession) -> dict[int, str]:
    """Return every case's reference, by the case's id."""
    rows = await session.exec(select(CaseRecord.id, CaseRecord.reference))
    return {case_id: reference for case_id, reference in rows if case_id is not None}


async def all_cases(*, session: AsyncSession) -> list[CaseRecord]:
    """Return every case on the case list, open or closed."""
    return list(await session.exec(select(CaseRecord)))


async def auditable_cases_of(
    *, session: AsyncSession, worker_id: int, today: date, recently_closed_days: int, limit: int
) -> list[CaseRecord]:
    """Return a worker's open and recently closed cases, most recently closed last."""
    closed_since = today - timedelta(days=recently_closed_days)
    rows = await session.exec(
        select(CaseRecord)
        .where(
            CaseRecord.allocated_worker_id == worker_id,
            or_(
                CaseRecord.status == CaseStatus.OPEN,
                col(CaseRecord.closed_on) >= closed_since,
            ),
        )
        .order_by(col(CaseRecord.status).desc(), col(CaseRecord.reference))
        .limit(limit)
    )
    return list(rows)


@dataclass(frozen=True)
class ChatReference:
    """A person's personal chat as a Teams activity gives it: what messaging them later needs."""

    teams_user_id: str | None
    conversation_id: str | None
    service_url: str | None
    channel_id: str | None
    bot_id: str | None
    tenant_id: str | None = None


# The longest value each part of a stored reference may have (the table's column sizes).
_REFERENCE_LIMITS = {
    "aad_object_id": 64, "teams_user_id": 256, "conversation_id": 512, "service_url": 512,
    "channel_id": 32, "bot_id": 256,
}  # fmt: skip


async def remember_conversation(
    *, session: AsyncSession, aad_object_id: str, reference: ChatReference
) -> bool:
    """Store (or refresh) the personal-chat reference used to message this person later.

    Return False, storing nothing, if the reference is incomplete or malformed: no real Teams
    activity is, and a forged one must not make a turn fail.
    """
    values = {
        "aad_object_id": aad_object_id.lower(),
        "teams_user_id": reference.teams_user_id,
        "conversation_id": reference.conversation_id,
        "service_url": reference.service_url,
        "tenant_id": reference.tenant_id,
        "channel_id": reference.channel_id,
        "bot_id": reference.bot_id,
        "installed": True,
        "updated_at": utc_now(),
    }
    for key, limit in _REFERENCE_LIMITS.items():
        value = values[key]
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            return False
    tenant = values["tenant_id"]
    if tenant is not None and (not isinstance(tenant, str) or len(tenant) > 64):
        values["tenant_id"] = None
    # Teams sends installationUpdate and conversationUpdate together: an upsert lets both
    # turns store the reference without one failing on the unique key.
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(TeamsConversation).values(**values)
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=[TeamsConversation.__table__.c.aad_object_id],  # type: ignore[attr-defined]
            set_={k: v for k, v in values.items() if k != "aad_object_id"},
        )
    )
    return True


async def forget_installation(*, session: AsyncSession, aad_object_id: str) -> None:
    """Mark that this person removed the app, so proactive messages stop."""
    row = (
        await session.exec(
            select(TeamsConversation).where(
                TeamsConversation.aad_object_id == aad_object_id.lower()
            )
        )
    ).first()
    if row is not None:
        row.installed = False
        row.updated_at = utc_now()
        session.add(row)


async def conversation_of(*, session: AsyncSession, aad_object_id: str) -> TeamsConversation | None:
    """Return the stored personal-chat reference of a person who has the app, or None."""
    return (
        await session.exec(
            select(TeamsConversation).where(
                TeamsConversation.aad_object_id == aad_object_id.lower(),
                col(TeamsConversation.installed).is_(True),
            )
        )
    ).first()


class Reach(StrEnum):
    """Whether the bot can message a person in Teams, as far as what it has stored tells."""

    REACHABLE = "reachable"
    NO_TEAMS_ID = "no_teams_id"  # the roster has no Entra object id: the bot cannot know them
    NEVER_OPENED = "never_opened"  # no chat stored, and the app was never installed for them
    INSTALL_PENDING = "install_pending"  # installing it through Graph failed; will try again
    INSTALL_REFUSED = "install_refused"  # Graph refused to install it (policy, permission)
    REMOVED = "removed"  # Teams told the bot they removed the app
    BLOCKED = "blocked"  # Teams refused the latest message with 403: they blocked the bot
    UNDELIVERED = "undelivered"  # the latest message failed otherwise (chat gone, gave up)


_INSTALL_REACH = {
    InstallState.PENDING: Reach.INSTALL_PENDING,
    InstallState.REFUSED: Reach.INSTALL_REFUSED,
}

# How the outbox sender records Teams' 403 ("HTTP 403"), the answer when someone blocked the bot.
_REFUSED = "HTTP 403"


async def reach_of(*, session: AsyncSession, people: Sequence[Staff]) -> dict[int, Reach]:
    """Return, by staff id, whether the bot can message each of these people in Teams.

    Without a chat, how installing the app through Graph went says why (never tried,
    pending, refused). A person's latest message that reached an end (sent, or
    undeliverable) tells whether their chat works; a chat stored again after that message was
    made (they opened or added the bot again) means it may work again.
    """
    ids = [p.id for p in people if p.id is not None]
    aad_ids = {p.aad_object_id.lower() for p in people if p.aad_object_id}
    chats = (
        {
            c.aad_object_id: c
            for c in await session.exec(
                select(TeamsConversation).where(col(TeamsConversation.aad_object_id).in_(aad_ids))
            )
        }
        if aad_ids
        else {}
    )
    ended = (OutboxStatus.SENT, OutboxStatus.UNDELIVERABLE)
    latest_ids = (
        select(func.max(OutboxMessage.id))
        .where(col(OutboxMessage.recipient_id).in_(ids), col(OutboxMessage.status).in_(ended))
        .group_by(col(OutboxMessage.recipient_id))
    )
    rows = await session.exec(
        select(
            OutboxMessage.recipient_id,
            OutboxMessage.status,
            OutboxMessage.last_error,
            OutboxMessage.created_at,
        ).where(col(OutboxMessage.id).in_(latest_ids))
    )
    latest = {recipient_id: (status, error, made) for recipient_id, status, error, made in rows}
    installs = await installs_of(session=session, aad_object_ids=aad_ids - set(chats))
    found: dict[int, Reach] = {}
    for person in people:
        if person.id is None:
            continue
        chat = chats.get((person.aad_object_id or "").lower())
        last = latest.get(person.id)
        if not person.aad_object_id:
            found[person.id] = Reach.NO_TEAMS_ID
        elif chat is None:
            install = installs.get(person.aad_object_id.lower())
            found[person.id] = (
                _INSTALL_REACH.get(InstallState(install.state), Reach.NEVER_OPENED)
                if install is not None
                else Reach.NEVER_OPENED
            )
        elif not chat.installed:
            found[person.id] = Reach.REMOVED
        elif last is None or last[0] == OutboxStatus.SENT or chat.updated_at > last[2]:
            found[person.id] = Reach.REACHABLE
        elif last[1].startswith(_REFUSED):
            found[person.id] = Reach.BLOCKED
        else:
            found[person.id] = Reach.UNDELIVERED
    return found


async def install_refusals(*, session: AsyncSession, people: Sequence[Staff]) -> dict[int, str]:
    """Return, by staff id, Graph's reason for refusing to install the app for each refused."""
    installs = await installs_of(
        session=session, aad_object_ids=[p.aad_object_id for p in people if p.aad_object_id]
    )
    found: dict[int, str] = {}
    for person in people:
        install = installs.get((person.aad_object_id or "").lower())
        if person.id is not None and install is not None and install.state == InstallState.REFUSED:
            found[person.id] = f"Teams said: {install.reason}" if install.reason else "refused"
    return found


async def viewer_of(*, session: AsyncSession, staff: Staff) -> Viewer:
    """Return the person as access rules see them, with the people they supervise."""
    assert staff.id is not None
    team = list(
        await session.exec(
            select(Staff).where(Staff.supervisor_id == staff.id, col(Staff.active).is_(True))
        )
    )
    return Viewer(
        id=staff.id,
        role_code=staff.role_code,
        team=staff.team,
        active=staff.active,
        supervisees=frozenset(s.id for s in team if s.id is not None),
        supervisee_teams=frozenset(s.team for s in team),
    )


async def audit_access(*, session: AsyncSession, audit_id: int) -> AuditAccess | None:
    """Return what access rules need to know of an audit, or None if there is no such audit."""
    audit = await session.get(AuditRequest, audit_id)
    if audit is None:
        return None
    sampled = await session.get(ModerationSample, audit_id)
    return AuditAccess(
        auditor_id=audit.auditor_id,
        subject_id=audit.subject_worker_id,
        team=audit.team,
        sampled_for_moderation=sampled is not None,
    )
