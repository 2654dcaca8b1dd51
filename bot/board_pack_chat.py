"""`board pack 2026-11` in Teams: the report's owners prepare, preview and publish the pack.

Only the roles the framework file marks `prepares_board_pack` (the Practice Development
Advanced Practitioners) may; anyone else is told who does. The card's choices are saved as
the month's draft in the database (`storage.board_packs`), so an owner can leave and carry on,
or another owner pick it up.

One card, updated in place. Its buttons are `Action.Execute`: each press comes as an
`adaptiveCard/action` invoke and is answered with the card that takes the pressed one's place
(`dialogs/turn.py` `show_in_place`), with no message sent:

    Save      save the draft; the pack card again, "Saved at 14:05"
    Preview   save it too; the pack card again with **Open the draft** and **Draft as a
              PDF**, signed links to the whole pack as publishing it now would make it (the
              pack card stays the place to edit: nothing typed is lost, and there is nothing
              to go back from)
    Publish   publish the next version, queue the notice to the Board (the outbox); the card
              becomes the version published, with its links and what happens next
    edit      (Prepare version N, and Back to the pack on older preview cards) the pack card

Words too long, a half-filled new action, or publishing again without a reason: the pack card
comes back as typed with what to correct, and nothing is saved. What changes nothing and says
why: a press by someone not an owner, or for a month not begun (a card that only tells); a
card naming a quote, standard or action the month does not offer, altered or out of date (the
pack as it now stands, keeping the words typed that still have a place); a Publish on a card
made before another version was published (the card carries the count it knew). A press that
cannot be read is refused by the bot before this (`card_actions.error_response`), leaving the
card as typed. A press on a card sent before Universal Actions (`Action.Submit`, a message) is
answered with messages, as it always was; the cards it brings are living ones.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext

from bot.links import LinkMaker
from cards.audit_cards import notice_card
from cards.board_pack_cards import (
    ActionChoice,
    QuoteChoice,
    StandardWords,
    UnsavedEntries,
    board_pack_card,
    pack_version_card,
)
from cards.common import Element
from cards.submissions import BoardPackAnswer
from dialogs.turn import card_message, is_card_action, show_in_place
from messages.pack_notices import queue_pack_published
from practice.access import prepares_board_pack
from practice.board_pack import (
    FIRST_PUBLICATION,
    PackError,
    PackForm,
    PackOffer,
    PackWords,
    offered_fields,
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


@dataclass(frozen=True)
class PackState:
    """The month as the pack's card shows it: the live report, the words so far, the latest."""

    report: Report
    names: dict[int, str]
    words: PackWords
    latest: BoardPack | None


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

    def _now(self) -> datetime:
        return self._clock().astimezone(self._zone)

    def _today(self) -> date:
        return self._now().date()

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
            state = await self._state(session, month, self._today())
            await access_log.record(
                session=session, staff_id=staff.id, action="board_pack_card",
                target=str(month), via="teams",
            )  # fmt: skip
        await context.send_activity(card_message(self._card(state, state.words)))

    async def answer(self, context: TurnContext, staff: Staff, answer: BoardPackAnswer) -> None:
        """Save, preview or publish the pack from its card (owners only).

        A press of the card's `Action.Execute` buttons is answered in place of the card
        pressed: the pack card again (saved, the draft's link, or what to correct), the
        published version, or a card that only tells why nothing was done. A press on a card
        sent before (`Action.Submit`, a message) is answered with messages, as it always was.
        """
        in_place = is_card_action(context)
        reply = await self._reply(staff, answer, in_place=in_place)
        if in_place:
            show_in_place(context, reply if isinstance(reply, dict) else notice_card(reply))
        elif isinstance(reply, dict):
            await context.send_activity(card_message(reply))
        else:
            await context.send_activity(reply)

    async def _reply(
        self, staff: Staff, answer: BoardPackAnswer, *, in_place: bool
    ) -> Element | str:
        """Do what the press asks; return the card to show, or the words that say why not."""
        if not await self.owns(staff):
            log.warning("staff %s pressed a Board's pack card, refused", staff.id)
            return REFUSAL
        today = self._today()
        month = Month.parse(answer.month)
        if month.first_day > today:
            return (
                f"I can't prepare a pack for {month.label}: it has not begun. Nothing was changed."
            )
        async with self._database.session() as session:
            state = await self._state(session, month, today)
            if answer.nav == "edit":
                return self._card(state, state.words)
            offer = offer_of(self._framework, state.report, state.names, state.words)
            fields = answer.fields()
            try:
                form, problems = read_pack_form(fields, offer)
            except PackError as error:
                log.warning("staff %s sent a Board's pack card it was not given", staff.id)
                if not in_place:
                    return (
                        f"I can't use that card: {error}. Nothing was changed; type **board "
                        f"pack {month}** for a fresh card."
                    )
                return self._as_it_stands(state, fields, offer, error)
            stale = self._out_of_date(answer, state.latest)
            if stale:
                log.info("staff %s pressed Publish on an out-of-date pack card", staff.id)
                return self._card(state, form.words, problems=[stale], unsaved=_unsaved(fields))
            if answer.nav == "publish" and state.latest is not None and not form.reason:
                problems.append(
                    f"Version {state.latest.version} is published already: say why it is "
                    "published again."
                )
            if problems:
                # Shown again as typed, with what to correct: nothing is saved.
                return self._card(state, form.words, problems=problems, unsaved=_unsaved(fields))
            form = await self._with_new_action(session, form, state.report, today)
            await save_draft(
                session=session, month=str(month), staff_id=staff.id,
                draft=Draft(form.words.quote_ids, form.words.summary, form.words.commentary,
                            form.words.action_ids),
            )  # fmt: skip
            if form.new_action is not None:
                state = await self._state(session, month, today)
            published: Element | None = None
            if answer.nav == "publish":
                published = await self._publish(session, staff, month, form)
        log.info("staff %s: Board's pack of %s, %s", staff.id, month, answer.nav)
        if published is not None:
            return published
        return self._saved(staff, month, state, form, preview=answer.nav == "preview")

    def _as_it_stands(
        self, state: PackState, fields: Mapping[str, str], offer: PackOffer, error: PackError
    ) -> Element:
        """Return the pack card as it now stands, for a card naming what it was not offered.

        In place, the card pressed is replaced: the words typed on it that still have a place
        are kept, so a card out of date after an import loses nothing typed.
        """
        kept = offered_fields(fields, offer)
        form, _ = read_pack_form(kept, offer)
        problem = (
            f"I can't use that card as it was: {error}. Nothing was changed. This is the pack "
            "as it stands now, with what you typed that still has a place on it; check it and "
            "press again."
        )
        return self._card(state, form.words, problems=[problem], unsaved=_unsaved(kept))

    async def _state(self, session: AsyncSession, month: Month, today: date) -> PackState:
        report, names, words, latest = await month_draft(
            session=session, framework=self._framework, zone=self._zone, month=str(month),
            today=today,
        )  # fmt: skip
        return PackState(report, names, words, latest)

    def _out_of_date(self, answer: BoardPackAnswer, latest: BoardPack | None) -> str:
        """Return why a Publish is refused if the card did not know the versions published."""
        versions = latest.version if latest is not None else 0
        if answer.nav != "publish" or answer.published is None or answer.published == versions:
            return ""
        if latest is None or answer.published > versions:
            return (
                f"That card counted {answer.published} published versions of this month's "
                f"pack, and there are {versions}, so nothing was published or saved. This is "
                "the pack as it stands, with what you typed."
            )
        when = latest.published_at.astimezone(self._zone)
        return (
            f"Version {versions} was published at {when:%H:%M} on {when:%-d %B} since that card "
            "was made, so nothing was published or saved. This is the pack as it stands, with "
            "what you typed; to publish it again, say why below."
        )

    async def _publish(
        self, session: AsyncSession, staff: Staff, month: Month, form: PackForm
    ) -> Element:
        """Publish the next version, queue its notice to the Board; return the card saying so."""
        published, frozen = await publish_month_pack(
            session=session, framework=self._framework, zone=self._zone,
            month=str(month), words=form.words, reason=form.reason or FIRST_PUBLICATION,
            published_by=staff.email, now=self._clock(),
        )  # fmt: skip
        told = await queue_pack_published(
            session=session, framework=self._framework, month=str(month),
            version=published.version, reason=published.reason,
            completed=frozen.total_completed, quotes=len(frozen.feedback),
            actions=len(frozen.actions), summary=form.words.summary, publisher_id=staff.id,
        )  # fmt: skip
        await access_log.record(
            session=session, staff_id=staff.id, action="board_pack_publish",
            target=f"{month} version {published.version}", via="teams",
        )  # fmt: skip
        assert staff.id is not None
        return pack_version_card(
            month=str(month), month_label=month.label, version=published.version,
            reason=published.reason, published_at=f"{self._now():%H:%M}",
            completed=frozen.total_completed, quotes=len(frozen.feedback),
            actions=len(frozen.actions), told=len(told),
            report_url=self._links.report(staff.id, str(month), str(month)),
            pdf_url=self._links.report(staff.id, str(month), str(month), pdf=True),
            minutes=self._links.minutes,
        )  # fmt: skip

    def _saved(
        self, staff: Staff, month: Month, state: PackState, form: PackForm, *, preview: bool
    ) -> Element:
        """Return the pack card after a Save or Preview: saved when, and the draft's link."""
        at = f"{self._now():%H:%M}"
        notice = f"Saved at {at}. Any owner can carry on from here."
        if form.new_action is not None:
            notice = f"Saved at {at}, with the new learning action."
        draft_url = draft_pdf_url = None
        if preview:
            assert staff.id is not None
            draft_url = self._links.pack_preview(staff.id, str(month))
            draft_pdf_url = self._links.pack_preview(staff.id, str(month), pdf=True)
        # The reason is not kept by Save (only Publish uses it): it stays on the card as typed.
        return self._card(
            state, form.words, notice=notice, unsaved=UnsavedEntries(reason=form.reason),
            draft_url=draft_url, draft_pdf_url=draft_pdf_url,
        )  # fmt: skip

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
        state: PackState,
        words: PackWords,
        *,
        problems: list[str] | None = None,
        notice: str = "",
        unsaved: UnsavedEntries | None = None,
        draft_url: str | None = None,
        draft_pdf_url: str | None = None,
    ) -> Element:
        quotes, standards, actions = self._choices(state.report, state.names, words)
        month = Month.parse(state.report.first_month)
        return board_pack_card(
            month=str(month), month_label=month.label, completed=state.report.total_completed,
            quotes=quotes, summary=words.summary, standards=standards, actions=actions,
            action_standards=[(s.number, s.title) for s in self._framework.standards],
            published_versions=state.latest.version if state.latest else 0, problems=problems,
            notice=notice, unsaved=unsaved, draft_url=draft_url, draft_pdf_url=draft_pdf_url,
            minutes=self._links.minutes,
        )  # fmt: skip


def _unsaved(fields: Mapping[str, str]) -> UnsavedEntries:
    """Return the new action and reason as typed on the card, to show again."""
    return UnsavedEntries(
        new_action_standard=fields.get("new_action_standard", "").strip(),
        new_action_text=fields.get("new_action_text", ""),
        new_action_owner=fields.get("new_action_owner", ""),
        reason=fields.get("reason", ""),
    )
