"""Moderate one audit drawn for moderation.

States:

    sampled → claimed (by the first moderator to press Claim) → moderating (its card is live)
    → submitted

Transitions:

    claim    from the sample card: first claim wins (the database keeps one claim per audit);
             the winner gets the moderation card, anyone later is told who has it
    open     from the sample card or `moderation`: show the moderation card again
    save     keep the views given so far; the card stays live
    submit   when every criterion is agreed or rated (with a reason where the moderator
             differs from the auditor): record it, send the auditor the moderation, end

Only moderators may claim or moderate, only audits in the sample, only until the end of the
moderation window, never an audit they did themselves. `cancel` ends the dialog; the claim
and any saved views are kept.

Pressed as `Action.Execute` (an invoke), Claim and Moderate bring the moderation card as a new
message (the bot answers the sample card in place, showing who now holds each audit), and the
moderation card's Save and Submit are answered in place: the card itself, with any problem on
it (and after Save, "Saved at HH:MM", as the Action.Submit way's message said "Saved"), then the
read-only moderation once submitted. A refusal becomes a card that only tells.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext
from botbuilder.dialogs import Dialog, DialogContext, DialogTurnResult
from sqlmodel.ext.asyncio.session import AsyncSession

from cards.audit_cards import notice_card
from cards.common import Element
from cards.cycle_cards import ModerationItem, moderated_card, moderation_card
from cards.submissions import ClaimModeration, ModerationAnswer, OpenModeration
from cards.views import audit_heading
from dialogs.turn import (
    MODERATION_KEY,
    card_message,
    current_staff,
    is_card_action,
    replace_card,
    show_in_place,
)
from messages.notices import queue_moderation_outcome
from practice.calendar import moderation_until
from practice.dates import long_date
from practice.framework import Framework, Standard
from practice.month import Month
from storage import access_log, roster
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage.audits import AuditDetail
from storage.database import Database
from storage.models import Moderation, Staff

log = logging.getLogger(__name__)

ModerationAction = ClaimModeration | OpenModeration | ModerationAnswer


def is_moderator(framework: Framework, staff: Staff) -> bool:
    """Return whether the person's role moderates audits."""
    role = framework.role(staff.role_code)
    return role is not None and role.audit_kind == "moderation"


class ModerationDialog(Dialog):  # type: ignore[misc]
    """One moderation, from the claim to the submitted verdict."""

    def __init__(
        self,
        *,
        database: Database,
        framework: Framework,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(ModerationDialog.__name__)
        self._database = database
        self._framework = framework
        self._zone = zone
        self._clock = clock

    async def begin_dialog(
        self, dialog_context: DialogContext, options: Any = None
    ) -> DialogTurnResult:
        """Claim, open or answer a moderation."""
        action: ModerationAction = (options or {})["action"]
        dialog_context.active_dialog.state["audit_id"] = action.audit_id
        # The sample card it was claimed or opened from, to show the moderation on it later.
        dialog_context.active_dialog.state["sample_card"] = (options or {}).get("sample_card")
        return await self._act(dialog_context, action)

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:
        """Handle the next moderation card action; anything else gets a reminder."""
        action = dialog_context.context.turn_state.get(MODERATION_KEY)
        if action is None:
            await dialog_context.context.send_activity(
                "Please use the moderation card above, or type **cancel** (your claim and "
                "saved answers are kept)."
            )
            return Dialog.end_of_turn
        dialog_context.active_dialog.state["audit_id"] = action.audit_id
        return await self._act(dialog_context, action)

    async def _act(
        self, dialog_context: DialogContext, action: ModerationAction
    ) -> DialogTurnResult:
        context = dialog_context.context
        staff = current_staff(context)
        if not is_moderator(self._framework, staff):
            await self._tell(
                context,
                "Only moderators (Learning and Development Advanced Practitioners) can claim "
                "and moderate audits.",
            )
            return await dialog_context.end_dialog()
        if isinstance(action, ClaimModeration):
            return await self._claim(dialog_context, staff, action.audit_id)
        if isinstance(action, OpenModeration):
            return await self._open(dialog_context, staff, action.audit_id)
        return await self._answer(dialog_context, staff, action)

    # -- claiming and opening ------------------------------------------------------------

    async def _claim(
        self, dialog_context: DialogContext, staff: Staff, audit_id: int
    ) -> DialogTurnResult:
        context = dialog_context.context
        async with self._database.session() as session:
            sample = await moderation_store.sample_of(session=session, audit_id=audit_id)
            detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
            if sample is None or detail is None:
                await self._tell(context, "That audit is not in a moderation sample.")
                return await dialog_context.end_dialog()
            sample_month = Month.parse(sample.month)
            until = moderation_until(sample_month.year, sample_month.number)
            if self._today() > until:
                await self._tell(
                    context,
                    f"Moderation of these audits closed on {long_date(until)}, so it can no "
                    "longer be claimed.",
                )
                return await dialog_context.end_dialog()
            if detail.auditor.id == staff.id:
                await self._tell(context, "You did this audit, so someone else must moderate it.")
                return await dialog_context.end_dialog()
            assert staff.id is not None
            won = await moderation_store.claim(
                session=session, audit_id=audit_id, moderator_id=staff.id
            )
            if not won:
                existing = await moderation_store.moderation_of(session=session, audit_id=audit_id)
                holder = (
                    await roster.staff_by_id(session=session, staff_id=existing.moderator_id)
                    if existing
                    else None
                )
                mine = holder is not None and holder.id == staff.id
                if existing is not None and existing.submitted_at is not None:
                    # A Claim left on an older card: one plain answer, nothing else.
                    who = "You" if mine else (holder.name if holder else "Another moderator")
                    when = long_date(existing.submitted_at.astimezone(self._zone).date())
                    await self._tell(
                        context,
                        f"{who} moderated that audit on {when}: there is nothing more to do with "
                        "it. Type **moderation** to see the rest of the sample.",
                    )
                    return await dialog_context.end_dialog()
                if not mine:
                    name = holder.name if holder else "another moderator"
                    await self._tell(
                        context,
                        f"{name} has already claimed that audit. Type **moderation** to see the "
                        "rest of the sample.",
                    )
                    return await dialog_context.end_dialog()
                # They pressed Claim again: carry on with their moderation.
                return await self._open(dialog_context, staff, audit_id)
            log.info("audit %s claimed for moderation by staff %s", audit_id, staff.id)
        if not is_card_action(context):  # in place, the sample card says so
            await context.send_activity("You have claimed this audit for moderation.")
        return await self._open(dialog_context, staff, audit_id)

    async def _open(
        self, dialog_context: DialogContext, staff: Staff, audit_id: int
    ) -> DialogTurnResult:
        context = dialog_context.context
        async with self._database.session() as session:
            found = await self._own_moderation(context, session, staff, audit_id)
            if found is None:
                return await dialog_context.end_dialog()
            moderation, detail, standard = found
            await access_log.record(
                session=session, staff_id=staff.id, action="moderation_card",
                target=f"audit {audit_id}", via="teams",
            )  # fmt: skip
            seq = await moderation_store.next_card(session=session, moderation=moderation)
            card = await self._card(session, detail, standard, moderation, seq, [], None)
        await context.send_activity(card_message(card))
        return Dialog.end_of_turn

    # -- answering ---------------------------------------------------------------------------

    async def _answer(
        self, dialog_context: DialogContext, staff: Staff, answer: ModerationAnswer
    ) -> DialogTurnResult:
        context = dialog_context.context
        async with self._database.session() as session:
            found = await self._own_moderation(context, session, staff, answer.audit_id)
            if found is None:
                return await dialog_context.end_dialog()
            moderation, detail, standard = found
            stale = answer.seq != moderation.card_seq
            seq = None
            if not stale:
                seq = await moderation_store.take_card(
                    session=session, audit_id=answer.audit_id, seq=answer.seq
                )
            if seq is None and is_card_action(context):
                # Nothing changes; the card pressed shows the moderation as it now is.
                current = await self._card(
                    session, detail, standard, moderation, moderation.card_seq,
                    ["That card was out of date, so nothing was changed. This is the moderation "
                     "as it now is."], None,
                )  # fmt: skip
                show_in_place(context, current)
                return Dialog.end_of_turn
            if seq is None:
                await context.send_activity(
                    "That moderation card is out of date, so nothing was changed. Use the latest "
                    "one, or type **moderation**."
                    if stale
                    else "That moderation card was already used."
                )
                return Dialog.end_of_turn
            views, problems = self._read_views(detail, standard, answer)
            submit = answer.nav == "submit" and not problems
            await moderation_store.save(
                session=session, moderation=moderation, views=views, comment=answer.comment,
                submit=submit, now=self._clock(),
            )  # fmt: skip
            await session.flush()
            if submit:
                lines = self._verdict_lines(detail, standard, views)
                await queue_moderation_outcome(
                    session=session, detail=detail, standard=standard, moderator=staff,
                    lines=lines, overall_comment=answer.comment,
                )  # fmt: skip
                replacement = moderated_card(
                    audit_heading(detail, standard), moderator_name=staff.name, lines=lines,
                    overall_comment=answer.comment, for_auditor=False,
                )  # fmt: skip
            else:
                shown = problems if answer.nav == "submit" else []
                replacement = await self._card(
                    session, detail, standard, moderation, seq, shown, views,
                    notice=self._saved_notice(context) if answer.nav == "save" else "",
                )  # fmt: skip
        if is_card_action(context):
            show_in_place(context, replacement)
            if submit:
                log.info("moderation of audit %s submitted", answer.audit_id)
                return await dialog_context.end_dialog()
            return Dialog.end_of_turn
        replaced = await self._replace(context, context.activity.reply_to_id, replacement)
        if not replaced and not submit:
            # The answered card is spent (take_card): the moderator needs the new one.
            await context.send_activity(card_message(replacement))
        if submit:
            log.info("moderation of audit %s submitted", answer.audit_id)
            await context.send_activity(
                "Thank you. The moderation is recorded and has been sent to the auditor."
            )
            return await dialog_context.end_dialog()
        if answer.nav == "save":
            await context.send_activity(
                "Saved. You can finish it later: the card above stays open, or type **moderation**."
            )
        return Dialog.end_of_turn

    def _read_views(
        self, detail: AuditDetail, standard: Standard, answer: ModerationAnswer
    ) -> tuple[dict[str, tuple[bool | None, str | None, str]], list[str]]:
        given = answer.views()
        views: dict[str, tuple[bool | None, str | None, str]] = {}
        problems: list[str] = []
        limit = self._framework.max_text_length
        if len(answer.comment) > limit:
            problems.append(f"The overall comment is longer than {limit:,} characters.")
        for criterion in standard.criteria:
            view, reason = given.get(criterion.id, ("", ""))
            auditor_rating = detail.ratings.get(criterion.id)
            auditors = auditor_rating.rating if auditor_rating else None
            if len(reason) > limit:
                problems.append(
                    f"The reason for {criterion.id} is longer than {limit:,} characters."
                )
            if view == "agree" or (view and view == auditors):
                views[criterion.id] = (True, None, reason)
            elif view and self._framework.rating(view) is not None:
                views[criterion.id] = (False, view, reason)
                if not reason.strip():
                    problems.append(
                        f"Say why you rate {criterion.id} differently from the auditor."
                    )
            else:
                views[criterion.id] = (None, None, reason)
                problems.append(f"Agree with the auditor's rating of {criterion.id} or give yours.")
        return views, problems

    def _verdict_lines(
        self,
        detail: AuditDetail,
        standard: Standard,
        views: dict[str, tuple[bool | None, str | None, str]],
    ) -> list[tuple[str, str, str]]:
        lines = []
        for criterion in standard.criteria:
            agrees, rating, reason = views[criterion.id]
            if agrees:
                lines.append((criterion.id, "Agreed", reason))
            else:
                theirs = self._label(rating)
                auditor_row = detail.ratings.get(criterion.id)
                yours = self._label(auditor_row.rating if auditor_row else None)
                lines.append((criterion.id, f"Moderator: {theirs} (auditor: {yours})", reason))
        return lines

    def _label(self, code: str | None) -> str:
        option = self._framework.rating(code) if code else None
        return option.label if option else "—"

    async def _card(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        moderation: Moderation,
        seq: int,
        problems: list[str],
        views: dict[str, tuple[bool | None, str | None, str]] | None,
        *,
        notice: str = "",
    ) -> Element:
        saved = await moderation_store.ratings_of(session=session, audit_id=moderation.audit_id)
        items = []
        for criterion in standard.criteria:
            auditor_row = detail.ratings.get(criterion.id)
            if views is not None and criterion.id in views:
                agrees, rating, reason = views[criterion.id]
            elif criterion.id in saved:
                row = saved[criterion.id]
                agrees, rating, reason = row.agrees, row.rating, row.reason
            else:
                agrees, rating, reason = None, None, ""
            view = "agree" if agrees else (rating or "")
            items.append(
                ModerationItem(
                    criterion_id=criterion.id,
                    text=criterion.text,
                    auditor_rating=self._label(auditor_row.rating if auditor_row else None),
                    evidence=auditor_row.evidence if auditor_row else "",
                    view=view,
                    reason=reason,
                )
            )
        return moderation_card(
            audit_heading(detail, standard),
            seq=seq,
            auditor_name=detail.auditor.name,
            ratings=[(r.code, r.label) for r in self._framework.rating_scale],
            items=items,
            overall_comment=moderation.overall_comment,
            max_length=self._framework.max_text_length,
            problems=problems,
            notice=notice,
        )

    async def _own_moderation(
        self, context: TurnContext, session: AsyncSession, staff: Staff, audit_id: int
    ) -> tuple[Moderation, AuditDetail, Standard] | None:
        moderation = await moderation_store.moderation_of(session=session, audit_id=audit_id)
        if moderation is None or moderation.moderator_id != staff.id:
            await self._tell(
                context,
                "You have not claimed that audit for moderation. Type **moderation** to see the "
                "sample and claim it.",
            )
            return None
        if moderation.submitted_at is not None:
            await self._tell(context, "You have already submitted that moderation.")
            return None
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
        standard = self._framework.standard(detail.audit.standard) if detail else None
        if detail is None or standard is None:
            await self._tell(context, "That audit can no longer be shown.")
            return None
        return moderation, detail, standard

    async def _replace(self, context: TurnContext, activity_id: str | None, card: Element) -> bool:
        """Show the card in place of the one answered (or anew); False if that failed."""
        if not activity_id:
            await context.send_activity(card_message(card))
            return True
        return await replace_card(context, activity_id, card)

    async def _tell(self, context: TurnContext, message: str) -> None:
        """Say this: on the card pressed, in place, or as a message."""
        if is_card_action(context):
            show_in_place(context, notice_card(message))
        else:
            await context.send_activity(message)

    def _saved_notice(self, context: TurnContext) -> str:
        """Say on the card that the views are saved, and when; a message says so otherwise."""
        if not is_card_action(context):
            return ""
        at = self._clock().astimezone(self._zone).strftime("%H:%M")
        return f"Saved at {at}. You can finish it later here, or type **moderation**."

    def _today(self) -> date:
        return self._clock().astimezone(self._zone).date()
