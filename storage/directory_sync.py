"""Keep the roster in step with a directory: the roster as rows, and where the last sync got to.

The rows have the roster file's columns (`storage.csv_import.STAFF_COLUMNS`), so a sync is
checked and applied exactly as an imported roster file is (`save_staff_rows`): all or none.

The people a sync holds (`DirectoryHeld`) are personal data about people who are not on the
roster, kept only while syncs confirm them: every successful sync rewrites the set, dropping
whoever left the groups. The retention purge erases them once no sync has succeeded for
`HeldRetention.days` (the directory may have changed since), and all of them once the roster
is no longer synced; it forgets that source's delta link too, so a sync that runs again reads
the whole directory and holds again whoever still cannot be placed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, or_, true
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DirectoryHeld, DirectorySync, Staff, utc_now


async def roster_rows(*, session: AsyncSession) -> list[dict[str, str]]:
    """Return everyone on the roster as roster-file rows, in email order."""
    people = list(await session.exec(select(Staff).order_by(Staff.email)))
    email_of = {p.id: p.email for p in people}
    return [
        {
            "email": p.email,
            "name": p.name,
            "role": p.role_code,
            "team": p.team,
            "supervisor_email": email_of.get(p.supervisor_id, "") if p.supervisor_id else "",
            "aad_object_id": p.aad_object_id or "",
            "active": "yes" if p.active else "no",
            "on_leave_until": p.on_leave_until.isoformat() if p.on_leave_until else "",
        }
        for p in people
    ]


async def delta_link(*, session: AsyncSession, source: str) -> str | None:
    """Return the link to the changes since the last sync from `source`, if there was one."""
    state = await session.get(DirectorySync, source)
    return state.delta_link if state else None


async def remember_delta_link(*, session: AsyncSession, source: str, link: str) -> None:
    """Keep the link the next sync from `source` starts from."""
    state = await session.get(DirectorySync, source)
    if state is None:
        state = DirectorySync(source=source, delta_link=link)
    else:
        state.delta_link = link
        state.synced_at = utc_now()
    session.add(state)
    await session.flush()


async def forget_delta_link(*, session: AsyncSession, source: str) -> None:
    """Make the next sync from `source` read the whole directory again."""
    state = await session.get(DirectorySync, source)
    if state is not None:
        await session.delete(state)
        await session.flush()


async def held_records(*, session: AsyncSession, source: str) -> dict[str, dict[str, Any]]:
    """Return the records of the people the last sync from `source` could not place, by id."""
    rows = await session.exec(select(DirectoryHeld).where(DirectoryHeld.source == source))
    return {row.aad_object_id: json.loads(row.record) for row in rows}


async def held_about(
    *, session: AsyncSession, email: str, aad_object_id: str | None = None
) -> list[DirectoryHeld]:
    """Return what syncs hold of one person, by object id or by the email Graph gave them."""
    email = email.strip().lower()
    quoted = json.dumps(email, ensure_ascii=False)  # as `keep_held_records` wrote it
    matches = col(DirectoryHeld.record).contains(quoted)
    if aad_object_id:
        matches = or_(matches, col(DirectoryHeld.aad_object_id) == aad_object_id.lower())
    rows = await session.exec(
        select(DirectoryHeld).where(matches).order_by(col(DirectoryHeld.aad_object_id))
    )
    return [
        row
        for row in rows
        if row.aad_object_id == (aad_object_id or "").lower()
        or str(json.loads(row.record).get("email") or "").lower() == email
    ]


async def keep_held_records(
    *, session: AsyncSession, source: str, records: Mapping[str, Mapping[str, Any]]
) -> None:
    """Make `records` the people held for the next sync from `source`: add, change, drop."""
    rows = {
        row.aad_object_id: row
        for row in await session.exec(select(DirectoryHeld).where(DirectoryHeld.source == source))
    }
    now = utc_now()
    for user_id, row in rows.items():
        if user_id not in records:
            await session.delete(row)
    for user_id, record in records.items():
        text = json.dumps(record, sort_keys=True, ensure_ascii=False)
        row = rows.get(user_id) or DirectoryHeld(source=source, aad_object_id=user_id, record="")
        if row.record != text:
            row.record, row.held_at = text, now
            session.add(row)
    await session.flush()


@dataclass(frozen=True)
class HeldRetention:
    """How long held records are kept: `days` without a successful sync; none unsynced."""

    days: int
    synced: bool  # whether the roster is synced from the directory (the settings say so)


async def erase_held_records(
    *, session: AsyncSession, now: datetime, rule: HeldRetention, dry_run: bool
) -> int:
    """Erase the held records the rule no longer allows, and their sources' delta links.

    Return how many records went (on a dry run, would go). The caller commits.
    """
    condition = await _past_keeping(session, now=now, rule=rule)
    found = int(
        (await session.exec(select(func.count()).select_from(DirectoryHeld).where(condition))).one()
    )
    if dry_run or not found:
        return found
    sources = sorted(set(await session.exec(select(DirectoryHeld.source).where(condition))))
    await session.exec(delete(DirectoryHeld).where(condition))
    # What is still held was weighed against that link: without the records, read afresh.
    await session.exec(delete(DirectorySync).where(col(DirectorySync.source).in_(sources)))
    await session.flush()
    return found


async def _past_keeping(
    session: AsyncSession, *, now: datetime, rule: HeldRetention
) -> ColumnElement[bool]:
    """Return which held records to erase: all unsynced, else those no sync confirmed lately."""
    if not rule.synced:
        return true()
    cutoff = now - timedelta(days=rule.days)
    synced = list(await session.exec(select(DirectorySync.source)))
    stale = list(
        await session.exec(
            select(DirectorySync.source).where(col(DirectorySync.synced_at) < cutoff)
        )
    )
    return or_(
        col(DirectoryHeld.source).in_(stale) if stale else false(),
        # A sync that forgot its link (`roster sync --full`) and failed: judged by the record.
        and_(
            col(DirectoryHeld.source).not_in(synced) if synced else true(),
            col(DirectoryHeld.held_at) < cutoff,
        ),
    )


async def change_emails(*, session: AsyncSession, changes: Sequence[tuple[str, str]]) -> list[str]:
    """Give people the new email of each (old, new) pair; return problems and change none if any."""
    # A directory knows people by object id, so an email can change (a new surname) where a
    # roster file, which knows people by email, would see a new person.
    people = {
        p.email: p
        for p in await session.exec(
            select(Staff).where(col(Staff.email).in_([e for pair in changes for e in pair]))
        )
    }
    leaving = {old for old, _new in changes}
    problems = [
        f"{old}: the new email {new} already belongs to someone else on the roster"
        for old, new in changes
        if new in people and new not in leaving
    ]
    if problems:
        return problems
    # Two steps, so that emails passing from one person to another never meet in the index.
    for old, _new in changes:
        if old in people:
            people[old].email = f"{old}.changing"
            session.add(people[old])
    await session.flush()
    now = utc_now()
    for old, new in changes:
        if old in people:
            people[old].email = new
            people[old].updated_at = now
            session.add(people[old])
    await session.flush()
    return []
