"""The Board's learning actions: logged, updated, and reported until closed."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import LearningAction, LearningActionStatus, utc_now

STATUSES = tuple(s.value for s in LearningActionStatus)


class ActionError(ValueError):
    """The action cannot be saved as given; the message says why."""


def _check(theme: str, action: str, owner: str) -> None:
    if not theme.strip() or len(theme) > 120:
        raise ActionError("give a theme (a standard's number or a few words), up to 120 characters")
    if not action.strip() or len(action) > 4000:
        raise ActionError("describe the action (up to 4,000 characters)")
    if not owner.strip() or len(owner) > 200:
        raise ActionError("name the action's owner (up to 200 characters)")


async def add_action(
    *,
    session: AsyncSession,
    theme: str,
    action: str,
    owner: str,
    due_on: date | None,
    logged_on: date,
) -> LearningAction:
    """Log a new open learning action."""
    _check(theme, action, owner)
    row = LearningAction(
        theme=theme.strip(),
        action=action.strip(),
        owner=owner.strip(),
        due_on=due_on,
        status=LearningActionStatus.OPEN,
        logged_on=logged_on,
    )
    session.add(row)
    await session.flush()
    return row


async def list_actions(*, session: AsyncSession, include_closed: bool) -> list[LearningAction]:
    """Return the actions, oldest first (closed ones only when asked for)."""
    statement = select(LearningAction).order_by(col(LearningAction.id))
    if not include_closed:
        statement = statement.where(LearningAction.status != LearningActionStatus.CLOSED)
    return list(await session.exec(statement))


async def update_action(
    *,
    session: AsyncSession,
    action_id: int,
    today: date,
    status: str | None = None,
    theme: str | None = None,
    action: str | None = None,
    owner: str | None = None,
    due_on: date | None = None,
) -> LearningAction:
    """Change an action; closing it records the day, reopening it clears that."""
    row = await session.get(LearningAction, action_id)
    if row is None:
        raise ActionError(f"there is no learning action {action_id}")
    if status is not None and status not in STATUSES:
        raise ActionError(f"status must be one of {', '.join(STATUSES)}")
    _check(theme if theme is not None else row.theme, action or row.action, owner or row.owner)
    if theme is not None:
        row.theme = theme.strip()
    if action is not None:
        row.action = action.strip()
    if owner is not None:
        row.owner = owner.strip()
    if due_on is not None:
        row.due_on = due_on
    if status is not None:
        row.status = status
        row.closed_on = today if status == LearningActionStatus.CLOSED else None
    row.updated_at = utc_now()
    session.add(row)
    return row
