"""The web pages behind the bot's signed links: the Board's report, its pack, and audits.

The Board's pack in draft (`/packs/draft`, and `/packs/draft.pdf` as a PDF) is for the
report's owners only: the month's pack as publishing it now would make it, marked as not
published (on every page of the PDF).

Every page checks the link (signature and expiry) and then the access rules again for the
person it was made for, as they are now: a link cannot be edited to show more, goes stale,
and stops working at once for someone taken off the roster.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial

from aiohttp import web

from bot.links import InvalidLinkError, LinkClaims, LinkMaker
from bot.settings import Settings
from practice.access import can_view_audit, prepares_board_pack
from practice.framework import Framework
from practice.report import Report
from reports.audit_export import render_audit_html, render_audit_pdf
from reports.board_pack import draft_pack
from reports.html import render_report_html
from reports.pack_pdf import render_pack_pdf
from reports.service import Asker, ReportService, audit_document
from storage import access_log, roster
from storage.database import Database
from storage.models import Staff

log = logging.getLogger(__name__)

LINKS = web.AppKey("links", LinkMaker)

# The pages are self-contained: inline styles and SVG, nothing fetched from anywhere.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

REFUSAL = """<!doctype html><html lang="en-GB"><head><meta charset="utf-8">
<title>Link not valid</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>This link cannot be opened</h1><p>{reason}</p>
<p>Ask the audit bot in Teams for a new one: type <strong>report</strong>, or press
<strong>Download</strong> on the audit again.</p></body></html>"""


def _refuse(status: int, reason: str) -> web.Response:
    return web.Response(
        status=status,
        text=REFUSAL.format(reason=reason),
        content_type="text/html",
        headers=SECURITY_HEADERS,
    )


PageHandler = Callable[[web.Request, LinkClaims, Staff], Awaitable[web.StreamResponse]]


def _linked(
    kinds: tuple[str, ...], database_key: web.AppKey[Database]
) -> Callable[[PageHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    def wrap(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def page(request: web.Request) -> web.StreamResponse:
            try:
                claims = request.app[LINKS].verify(request.query.get("t", ""))
            except InvalidLinkError as error:
                log.info("refused a link: %s", error)
                return _refuse(403, str(error))
            if claims.kind not in kinds:
                return _refuse(403, "This link is for something else.")
            async with request.app[database_key].session() as session:
                viewer = await roster.staff_by_id(session=session, staff_id=claims.viewer_id)
            if viewer is None or not viewer.active:
                log.info("refused a link for staff %s, no longer active", claims.viewer_id)
                return _refuse(403, "You are no longer on the audit roster.")
            return await handler(request, claims, viewer)

        return page

    return wrap


def report_page_html(generated_on: date, report: Report, names: dict[int, str]) -> str:
    """Return the report as the page a link opens."""
    return render_report_html(
        report,
        title="Practice quality audits: report to the Practice Quality Board",
        generated_on=generated_on,
        names=names,
    )


def add_pages(
    app: web.Application,
    *,
    settings: Settings,
    framework: Framework,
    database_key: web.AppKey[Database],
    reports_key: web.AppKey[ReportService],
) -> None:
    """Add the report and download pages to the app."""

    @_linked(("report",), database_key)
    async def report_page(
        request: web.Request, claims: LinkClaims, staff: Staff
    ) -> web.StreamResponse:
        assert claims.first_month is not None
        assert claims.last_month is not None
        reports = request.app[reports_key]
        today = reports.today()
        # A month whose pack is published shows it as the Board published it.
        pack = await reports.published_pack(staff, claims.first_month, claims.last_month)
        if pack is not None:
            async with request.app[database_key].session() as session:
                await access_log.record(
                    session=session, staff_id=staff.id, action="report_page",
                    target=f"{pack.month} pack version {pack.version}", via="link",
                )  # fmt: skip
            return web.Response(text=pack.html, content_type="text/html", headers=SECURITY_HEADERS)
        # Made and rendered away from the event loop: other people's turns go on meanwhile.
        page = await reports.report(
            Asker(staff, action="report_page", via="link"),
            partial(report_page_html, today),
            as_of=today,
            months=(claims.first_month, claims.last_month),
        )
        if page is None:
            return _refuse(403, "Reports are only for staff on the audit roster.")
        log.info("staff %s opened the report of %s to %s", staff.id, claims.first_month,
                 claims.last_month)  # fmt: skip
        return web.Response(text=page.made, content_type="text/html", headers=SECURITY_HEADERS)

    @_linked(("report_pdf",), database_key)
    async def pack_pdf(
        request: web.Request, claims: LinkClaims, staff: Staff
    ) -> web.StreamResponse:
        assert claims.first_month is not None
        assert claims.last_month is not None
        reports = request.app[reports_key]
        pack = await reports.published_pack(staff, claims.first_month, claims.last_month)
        if pack is None:
            return _refuse(
                404, "The Board has not published a pack for this month that you may see."
            )
        async with request.app[database_key].session() as session:
            await access_log.record(
                session=session, staff_id=staff.id, action="report_pdf",
                target=f"{pack.month} pack version {pack.version}", via="link",
            )  # fmt: skip
        log.info("staff %s downloaded the pack of %s", staff.id, pack.month)
        name = f"board-pack-{pack.month}-v{pack.version}.pdf"
        return web.Response(
            body=render_pack_pdf(json.loads(pack.content)), content_type="application/pdf",
            headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
        )  # fmt: skip

    @_linked(("pack_preview", "pack_preview_pdf"), database_key)
    async def pack_preview(
        request: web.Request, claims: LinkClaims, staff: Staff
    ) -> web.StreamResponse:
        assert claims.first_month is not None
        month = claims.first_month
        pdf = claims.kind == "pack_preview_pdf"
        today = request.app[reports_key].today()
        async with request.app[database_key].session() as session:
            viewer = await roster.viewer_of(session=session, staff=staff)
            # Checked as the person is now: a role changed since the link was made ends it.
            if not prepares_board_pack(framework, viewer):
                log.warning("staff %s refused the draft pack of %s", staff.id, month)
                return _refuse(403, "Only the report's owners may see the Board's pack in draft.")
            draft = await draft_pack(
                session=session, framework=framework, zone=settings.zone, month=month,
                today=today,
            )  # fmt: skip
            await access_log.record(
                session=session, staff_id=staff.id,
                action="pack_preview_pdf" if pdf else "pack_preview",
                target=f"{month} draft", via="link",
            )  # fmt: skip
        log.info("staff %s opened the draft pack of %s (%s)", staff.id, month, claims.kind)
        # Made away from the event loop: other people's turns go on meanwhile.
        if pdf:
            # What publishing now would store, drawn as a published version's PDF is.
            drawn = await asyncio.to_thread(
                lambda: render_pack_pdf(draft.content(today), draft=draft.note)
            )
            attachment = f'attachment; filename="board-pack-{month}-draft.pdf"'
            return web.Response(
                body=drawn, content_type="application/pdf",
                headers={**SECURITY_HEADERS, "Content-Disposition": attachment},
            )  # fmt: skip
        page = await asyncio.to_thread(draft.html, today)
        return web.Response(text=page, content_type="text/html", headers=SECURITY_HEADERS)

    @_linked(("audit", "audit_pdf"), database_key)
    async def audit_page(
        request: web.Request, claims: LinkClaims, staff: Staff
    ) -> web.StreamResponse:
        assert claims.audit_id is not None
        async with request.app[database_key].session() as session:
            viewer = await roster.viewer_of(session=session, staff=staff)
            access = await roster.audit_access(session=session, audit_id=claims.audit_id)
            if access is None or not can_view_audit(framework, viewer, access):
                log.warning("staff %s refused audit %s", staff.id, claims.audit_id)
                return _refuse(403, "You may not see that audit.")
            document = await audit_document(
                session=session, framework=framework, zone=settings.zone, audit_id=claims.audit_id
            )
            if document is None or document.submitted_on is None:
                return _refuse(404, "That audit is not finished, so there is nothing to show.")
            await access_log.record(
                session=session, staff_id=staff.id,
                action="audit_pdf" if claims.kind == "audit_pdf" else "audit_page",
                target=f"audit {claims.audit_id}", via="link",
            )  # fmt: skip
        log.info("staff %s opened audit %s (%s)", staff.id, claims.audit_id, claims.kind)
        if claims.kind == "audit_pdf":
            return web.Response(
                body=render_audit_pdf(document),
                content_type="application/pdf",
                headers={
                    **SECURITY_HEADERS,
                    "Content-Disposition": f'attachment; filename="audit-{claims.audit_id}.pdf"',
                },
            )
        return web.Response(
            text=render_audit_html(document), content_type="text/html", headers=SECURITY_HEADERS
        )

    app.router.add_get("/reports", report_page)
    app.router.add_get("/reports.pdf", pack_pdf)
    app.router.add_get("/packs/draft", pack_preview)
    app.router.add_get("/packs/draft.pdf", pack_preview)
    app.router.add_get("/audits", audit_page)
    app.router.add_get("/audits.pdf", audit_page)
