"""`board pack 2026-11` in Teams: the report's owners prepare, preview and publish the pack.

Only the roles the framework file marks `prepares_board_pack` (the Practice Development
Advanced Practitioners) may; anyone else is told who does. The card's choices are saved as
the month's draft in the database (`storage.board_packs`), so an owner can leave and carry on,
or another owner pick it up. A submit that names a quote, standard or action the card never
offered was altered: it is refused with a message and changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext

from bot.links import LinkMaker
from cards.board_pack_cards import (
    ActionChoice,
    QuoteChoice,
    StandardWords,
    board_pack_card,
    board_pack_preview_card,
)
from cards.submissions import BoardPackAnswer
from dialogs.turn import card_message
from messages.pack_notices import queue_pack_published
from practice.access import prepares_board_pack
from practice.board_pack import (
    FIRST_PUBLICATION,
    PackError,
    PackForm,
    PackWords,
    read_pack_form,
)
from practice.framework import Framework
from practice.month import Month, MonthError
from practice.report import Report
from reports.board_pack import month_draft, offer_of, publish_month_pack
from storage import access_log, roster
from storage.actions import add_action
from storage.board_packs import Draft, save_draft
from storage.database import Database
from storage.models import BoardPack, Staff

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

_COMMAND = re.compile(r"^board ?pack(?: (?P<month>\S+))?$")
REFUSAL = (
    "The Board's pack is prepared by the report's owners (Practice Development Advanced "
    "Practitioners). Type **report** to see the month's report."
)


def pack_month(text: str, *, today: date) -> Month:
    """Return the month named in `board pack 2026-11` (last month without one).

    Raise MonthError, in words to show, if it cannot be read or has not begun.
    """
    match = _COMMAND.match(text)
    if match is None:
        raise MonthError("type board pack, or board pack and a month such as 2026-11")
    if match["month"] is None:
        return Month.of(today).plus(-1)
    month = Month.parse(match["month"])
    if month.first_day > today:
        raise MonthError(f"{month.label} has not begun")
    return month


class BoardPackChat:
    """Answers `board pack` and the pack's cards for the report's owners."""

    def __init__(
        self,
        *,
        database: Database,
        framework: Framework,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        links: LinkMaker,
    ) -> None:
        self._links = links
        self._database = database
        self._framework = framework
        self._zone = zone
        self._clock = clock

    def _today(self) -> date:
        return self._clock().astimezone(self._zone).date()

    async def owns(self, staff: Staff) -> bool:
        """Return whether the person is one of the report's owners, who prepare the pack."""
        async with self._database.session() as session:
            viewer = await roster.viewer_of(session=session, staff=staff)
        return prepares_board_pack(self._framework, viewer)

    async def open(self, context: TurnContext, staff: Staff, cleaned: str) -> None:
        """Answer `board pack [YYYY-MM]` with the month's pack card (owners only)."""
        if not await self.owns(staff):
            log.info("staff %s asked for the Board's pack, refused", staff.id)
            await context.send_activity(REFUSAL)
            return
        try:
            month = pack_month(cleaned, today=self._today())
        except MonthError as error:
            await context.send_activity(f"I couldn't read that: {error}.")
            return
        async with self._database.session() as session:
            report, names, words, latest = await month_draft(
                session=session, framework=self._framework, zone=self._zone, month=str(month),
                today=self._today(),
            )  # fmt: skip
            await access_log.record(
                session=session, staff_id=staff.id, action="board_pack_card",
                target=str(month), via="teams",
            )  # fmt: skip
        await context.send_activity(card_message(self._card(report, names, words, latest)))

    async def answer(self, context: TurnContext, staff: Staff, answer: BoardPackAnswer) -> None:
        """Save, preview or publish the pack from its card (owners only)."""
        if not await self.owns(staff):
            log.warning("staff %s pressed a Board's pack card, refused", staff.id)
            await context.send_activity(REFUSAL)
            return
        today = self._today()
        month = Month.parse(answer.month)
        if month.first_day > today:
            await context.send_activity(
                f"I can't prepare a pack for {month.label}: it has not begun. Nothing was changed."
            )
            return
        async with self._database.session() as session:
            report, names, words, latest = await month_draft(
                session=session, framework=self._framework, zone=self._zone, month=str(month),
                today=today,
            )  # fmt: skip
            if answer.nav == "edit":
                await context.send_activity(card_message(self._card(report, names, words, latest)))
                return
            offer = offer_of(self._framework, report, names, words)
            try:
                form, problems = read_pack_form(answer.fields(), offer)
            except PackError as error:
                log.warning("staff %s sent a Board's pack card it was not given", staff.id)
                await context.send_activity(
                    f"I can't use that card: {error}. Nothing was changed; type **board pack "
                    f"{month}** for a fresh card."
                )
                return
            if answer.nav == "publish" and latest is not None and not form.reason:
                problems.append(
                    f"Version {latest.version} is published already: say why it is published again."
                )
            if problems:
                # Shown again as typed, with what to correct: nothing is saved.
                card = self._card(report, names, form.words, latest, problems=problems)
                await context.send_activity(card_message(card))
                return
            form = await self._with_new_action(session, form, report, today)
            await save_draft(
                session=session, month=str(month), staff_id=staff.id,
                draft=Draft(form.words.quote_ids, form.words.summary, form.words.commentary,
                            form.words.action_ids),
            )  # fmt: skip
            if form.new_action is not None:
                report, names, _, _ = await month_draft(
                    session=session, framework=self._framework, zone=self._zone,
                    month=str(month), today=today,
                )  # fmt: skip
            published: BoardPack | None = None
            if answer.nav == "publish":
                published, frozen = await publish_month_pack(
                    session=session, framework=self._framework, zone=self._zone,
                    month=str(month), words=form.words, reason=form.reason or FIRST_PUBLICATION,
                    published_by=staff.email, now=self._clock(),
                )  # fmt: skip
                await queue_pack_published(
                    session=session, framework=self._framework, month=str(month),
                    version=published.version, reason=published.reason,
                    completed=frozen.total_completed, quotes=len(frozen.feedback),
                    actions=len(frozen.actions), summary=form.words.summary,
                )  # fmt: skip
                await access_log.record(
                    session=session, staff_id=staff.id, action="board_pack_publish",
                    target=f"{month} version {published.version}", via="teams",
                )  # fmt: skip
        log.info("staff %s: Board's pack of %s, %s", staff.id, month, answer.nav)
        if published is not None:
            assert staff.id is not None
            card = self._preview(
                report, names, form.words, title=f"Published version {published.version}",
                report_url=self._links.report(staff.id, str(month), str(month)),
                pdf_url=self._links.report(staff.id, str(month), str(month), pdf=True),
            )  # fmt: skip
        elif answer.nav == "preview":
            assert staff.id is not None
            draft_url = self._links.pack_preview(staff.id, str(month))
            card = self._preview(report, names, form.words, draft_url=draft_url)
        else:
            notice = "Saved. Any owner can carry on from here."
            if form.new_action is not None:
                notice = "Saved, with the new learning action."
            card = self._card(report, names, form.words, latest, notice=notice)
        await context.send_activity(card_message(card))

    async def _with_new_action(
        self, session: AsyncSession, form: PackForm, report: Report, today: date
    ) -> PackForm:
        """Log the new action the card added (themed by its standard) and show it in the pack."""
        if form.new_action is None:
            return form
        new = form.new_action
        action = await add_action(
            session=session, theme=str(new.standard), action=new.action, owner=new.owner,
            due_on=None, logged_on=today,
        )  # fmt: skip
        assert action.id is not None
        shown = form.words.action_ids
        if shown is None:
            shown = tuple(a.id for a in report.actions)
        words = PackWords(
            form.words.quote_ids, form.words.summary, form.words.commentary, (*shown, action.id)
        )
        return PackForm(words, form.new_action, form.reason)

    def _choices(
        self, report: Report, names: dict[int, str], words: PackWords
    ) -> tuple[list[QuoteChoice], list[StandardWords], list[ActionChoice]]:
        offer = offer_of(self._framework, report, names, words)
        chosen = set(words.quote_ids)
        quotes = [
            QuoteChoice(q.audit_id, q.standard, q.team, q.text, q.audit_id in chosen)
            for q in report.feedback
            if q.audit_id in offer.quotes
        ]
        standards = [
            StandardWords(number, s.title, words.commentary.get(number, ""))
            for number in sorted(offer.standards)
            if (s := self._framework.standard(number)) is not None
        ]
        shown = set(words.action_ids) if words.action_ids is not None else None
        actions = [
            ActionChoice(a.id, a.theme, a.action, a.owner, shown is None or a.id in shown)
            for a in report.actions
        ]
        return quotes, standards, actions

    def _card(
        self,
        report: Report,
        names: dict[int, str],
        words: PackWords,
        latest: BoardPack | None,
        *,
        problems: list[str] | None = None,
        notice: str = "",
    ) -> dict[str, object]:
        quotes, standards, actions = self._choices(report, names, words)
        month = Month.parse(report.first_month)
        return board_pack_card(
            month=str(month), month_label=month.label, completed=report.total_completed,
            quotes=quotes, summary=words.summary, standards=standards, actions=actions,
            action_standards=[(s.number, s.title) for s in self._framework.standards],
            published_versions=latest.version if latest else 0, problems=problems,
            notice=notice,
        )  # fmt: skip

    def _preview(
        self,
        report: Report,
        names: dict[int, str],
        words: PackWords,
        *,
        title: str = "Preview",
        report_url: str | None = None,
        pdf_url: str | None = None,
        draft_url: str | None = None,
    ) -> dict[str, object]:
        quotes, standards, actions = self._choices(report, names, words)
        month = Month.parse(report.first_month)
        return board_pack_preview_card(
            month=str(month), month_label=month.label, completed=report.total_completed,
            quotes=quotes, summary=words.summary, standards=standards, actions=actions,
            title=title, report_url=report_url, pdf_url=pdf_url, draft_url=draft_url,
            minutes=self._links.minutes,
        )  # fmt: skip
