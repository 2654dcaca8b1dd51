"""Keep the roster in step with a directory: the roster as rows, and where the last sync got to.

The rows have the roster file's columns (`storage.csv_import.STAFF_COLUMNS`), so a sync is
checked and applied exactly as an imported roster file is (`save_staff_rows`): all or none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import col, select
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
