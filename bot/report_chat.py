"""`report` and an audit's Download in Teams: the report's summary card and download links.

Who may see which report, or which audit, is decided by `reports.service` and
`practice.access`; every report and download asked for here is written to the access log.
"""

from __future__ import annotations

import logging

from botbuilder.core import TurnContext

from bot.commands import ReportMonthsError, ReportRangeError, report_months
from bot.links import LinkMaker
from cards.report_cards import download_card, report_summary_card
from dialogs.turn import card_message
from practice.access import can_view_audit
from practice.framework import Framework
from practice.month import month_label
from reports.service import Asker, ReportService, summarise
from storage import access_log, roster
from storage.database import Database
from storage.models import AuditRequest, AuditStatus, Staff

log = logging.getLogger(__name__)


class ReportChat:
    """Answers the report and download requests of people on the roster."""

    def __init__(
        self,
        *,
        database: Database,
        framework: Framework,
        reports: ReportService,
        links: LinkMaker,
        longest_report: int,
    ) -> None:
        self._database = database
        self._framework = framework
        self._reports = reports
        self._links = links
        self._longest_report = longest_report

    async def send_report_summary(self, context: TurnContext, staff: Staff) -> None:
        """Answer `report [months]`, typed or from a button, with the report's summary card."""
        value = context.activity.value  # a RunCommand: checked, the month "YYYY-MM" or none
        text = context.activity.text if value is None else f"report {value.get('month') or ''}"
        today = self._reports.today()
        try:
            months = report_months(text, today=today, longest=self._longest_report)
        except ReportRangeError as error:
            await context.send_activity(f"I can't make that report: {error}.")
            return
        except ReportMonthsError as error:
            await context.send_activity(f"I couldn't read that: {error}.")
            return
        made = await self._reports.report(
            Asker(staff, action="report_card", via="teams"),
            summarise,
            as_of=today,
            months=(str(months[0]), str(months[1])) if months is not None else None,
        )
        if made is None:
            await context.send_activity("Reports are only for staff on the audit roster.")
            return
        own = None
        if made.scope.person_id is not None or made.scope.people is not None:
            own = await self._reports.own_audits(staff, made)
        assert staff.id is not None
        first, last = made.first_month, made.last_month
        summary = await self._reports.published_summary(staff, made) or made.made
        card = report_summary_card(
            period=summary.period,
            scope=summary.scope,
            completed=summary.completed,
            completion=summary.completion,
            below=summary.below,
            own=own,
            report_url=self._links.report(staff.id, first, last),
            minutes=self._links.minutes,
            caution=summary.caution,
            published=summary.published,
        )
        log.info("staff %s asked for the report of %s to %s", staff.id, first, last)
        await context.send_activity(card_message(card))

    async def send_download_links(self, context: TurnContext, staff: Staff, audit_id: int) -> None:
        """Answer a Download press with links to the audit's HTML and PDF, if they may see it."""
        async with self._database.session() as session:
            viewer = await roster.viewer_of(session=session, staff=staff)
            access = await roster.audit_access(session=session, audit_id=audit_id)
            audit = await session.get(AuditRequest, audit_id)
            allowed = access is not None and can_view_audit(self._framework, viewer, access)
            if audit is None or not allowed:
                log.warning("staff %s asked to download audit %s, refused", staff.id, audit_id)
                await context.send_activity(
                    "I can't give you that audit: it is not one you may see."
                )
                return
            if audit.status != AuditStatus.SUBMITTED:
                await context.send_activity(
                    "That audit is not finished yet, so there is nothing to download."
                )
                return
            standard = self._framework.standard(audit.standard)
            await access_log.record(
                session=session, staff_id=staff.id, action="download_links",
                target=f"audit {audit_id}", via="teams",
            )  # fmt: skip
        assert staff.id is not None
        name = standard.title if standard else ""
        title = f"Standard {audit.standard}: {name} · {month_label(audit.month)}"
        card = download_card(
            title=title,
            html_url=self._links.audit(staff.id, audit_id, pdf=False),
            pdf_url=self._links.audit(staff.id, audit_id, pdf=True),
            minutes=self._links.minutes,
        )
        await context.send_activity(card_message(card))
