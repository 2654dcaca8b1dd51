"""The access log: who opened which audit or report, when, and how."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AccessLogEntry

ACTIONS = (
    "report_card",  # the `report` summary in Teams
    "report_page",  # the full report through a signed link
    "audit_page",  # one audit as a web page through a signed link
    "audit_pdf",  # one audit as a PDF through a signed link
    "download_links",  # asked for an audit's download links in Teams
    "moderation_card",  # a moderator opened an audit to moderate it in Teams
    "cli_report",  # an administrator wrote a report at the command line
    "cli_audit_export",  # an administrator exported an audit at the command line
    "cli_export_person",  # an administrator answered a subject access request
    "report_pdf",  # the Board's published pack of a month as a PDF through a signed link
    "board_pack_card",  # a report owner opened the Board's pack of a month in Teams
    "board_pack_publish",  # a report owner published a version of the Board's pack in Teams
    "pack_preview",  # a report owner opened the month's draft pack through a signed link
    "pack_preview_pdf",  # a report owner downloaded the month's draft pack as a PDF
)


async def record(
    *, session: AsyncSession, staff_id: int | None, action: str, target: str, via: str
) -> None:
    """Add an entry: `target` names what was opened (an audit id, months, a person's id)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown access action {action!r}")
    session.add(AccessLogEntry(staff_id=staff_id, action=action, target=target[:120], via=via))


async def entries(
    *, session: AsyncSession, since: datetime | None = None, staff_id: int | None = None,
    limit: int = 1000,
) -> list[AccessLogEntry]:  # fmt: skip
    """Return the newest entries first, optionally since a time or for one person."""
    statement = (
        select(AccessLogEntry)
        .order_by(col(AccessLogEntry.at).desc(), col(AccessLogEntry.id).desc())
        .limit(limit)
    )
    if since is not None:
        statement = statement.where(col(AccessLogEntry.at) >= since)
    if staff_id is not None:
        statement = statement.where(AccessLogEntry.staff_id == staff_id)
    return list(await session.exec(statement))
