"""Guide an auditor through one audit, one Adaptive Card per step.

States — the audit's current step, stored with the audit so it survives restarts:

    case → criterion:<id> (one per criterion) → feedback → involvement → summary → submitted
    (a self-audit has no involvement step: the auditor is the allocated worker)

Transitions, on a card submit:

    next       save the answer; if it is complete go to the following step (or straight back
               to the summary when the step was opened from it), otherwise show the same card
               again, in place, with what needs fixing
    back       save what was entered as a draft and go to the previous step
    save_exit  save what was entered as a draft and end the dialog (`resume` carries on)
    edit       from the summary: open the chosen step; after it, return to the summary
    submit     from the summary: if every step is complete, submit and end the dialog

Every answer is saved to the database as it is given. A card carries the audit's step and a
sequence number; a submit from any card but the live one (an old card, a replayed click,
someone else's audit, an audit already submitted) is refused with a message and changes
nothing. The card that was answered is replaced so it cannot be submitted twice.

One living card: the cards' buttons are `Action.Execute`, so each press comes as an invoke and
is answered with the next card in place of the one pressed (`dialogs/turn.py` `show_in_place`),
with no call to Teams: the request card becomes the audit, step by step, and ends as the
read-only record. What would have been a message goes on that card: a problem to fix on the step
itself, an out-of-date card gets the audit's current card back (nothing changed), a card left
with Save and exit offers Carry on, a refusal becomes a card that only tells. A submit from a
card sent before Universal Actions (`Action.Submit`, a message) is still answered with messages.

Each step's answer is read, checked and saved in `dialogs/audit_answers.py` (one method per
step, in this order), and each step's card is built in `dialogs/audit_step_cards.py`; this
module holds the flow: whose card it is, whether it is live, and which card comes next.

Typed commands are handled by the bot before this dialog sees the turn: `cancel` ends the
dialog and retires its live card (`stop`; answers are kept), `resume` shows the first
unanswered step again. A press of a card from before the audit was stopped (or left with Save
and exit) says how to carry on.
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

from cards import audit_cards
from cards.common import Element
from cards.submissions import (
    CaseAnswer,
    CriterionAnswer,
    FeedbackAnswer,
    InvolvementAnswer,
    StepAnswer,
    SummaryAction,
)
from cards.views import audit_heading, summary_items
from dialogs.audit_answers import StepAnswers, StepOutcome
from dialogs.audit_step_cards import step_card
from dialogs.turn import (
    ANSWER_KEY,
    card_message,
    current_staff,
    is_card_action,
    replace_card,
    show_in_place,
)
from practice.audit_steps import (
    CASE,
    FEEDBACK,
    INVOLVEMENT,
    SUMMARY,
    criterion_of,
    criterion_position,
    first_unanswered,
)
from practice.dates import short_date
from practice.framework import Framework, Standard
from storage import audits as audit_store
from storage.audits import AuditDetail
from storage.database import Database
from storage.models import AuditStatus, Staff

log = logging.getLogger(__name__)


class AuditDialog(Dialog):  # type: ignore[misc]
    """One audit, from confirming the case to submitting it."""

    def __init__(
        self,
        *,
        database: Database,
        framework: Framework,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(AuditDialog.__name__)
        self._database = database
        self._framework = framework
        self._zone = zone
        self._clock = clock
        self._steps = StepAnswers(framework=framework, zone=zone, clock=clock)

    # -- botbuilder entry points -------------------------------------------------------

    async def begin_dialog(
        self, dialog_context: DialogContext, options: Any = None
    ) -> DialogTurnResult:
        """Open an audit at its first unanswered step, or handle an answer to one of its cards."""
        options = options or {}
        state = dialog_context.active_dialog.state
        state["audit_id"] = int(options["audit_id"])
        state["return_to_summary"] = False
        answer: StepAnswer | None = options.get("answer")
        if answer is not None:
            return await self._answer(dialog_context, answer)
        return await self._open(dialog_context)

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:
        """Handle an answer to a card; anything else gets a reminder of the live card."""
        answer = dialog_context.context.turn_state.get(ANSWER_KEY)
        if answer is None:
            await dialog_context.context.send_activity(
                "Please answer on the card above. Type **cancel** to stop (your answers are "
                "kept) or **help** for what I can do."
            )
            return Dialog.end_of_turn
        return await self._answer(dialog_context, answer)

    async def stop(self, dialog_context: DialogContext) -> None:
        """Retire the audit's live card (on `cancel`), so its buttons no longer look live.

        The answers stay saved; `resume` shows the card again.
        """
        audit_id = dialog_context.active_dialog.state.get("audit_id")
        if audit_id is None:
            return
        async with self._database.session() as session:
            detail = await audit_store.audit_detail(session=session, audit_id=int(audit_id))
            if detail is None or detail.audit.status == AuditStatus.SUBMITTED:
                return
            standard = self._standard_of(detail)
            live = detail.audit.live_card_activity_id
            await audit_store.take_card(
                session=session, audit_id=int(audit_id), seq=detail.audit.card_seq
            )
            await audit_store.set_live_card(
                session=session, audit_id=int(audit_id), activity_id=None
            )
        log.info("audit %s stopped; its live card is retired", audit_id)
        if live and standard is not None:
            stopped = audit_cards.step_done_card(
                audit_heading(detail, standard),
                label="Stopped",
                outcome="your answers so far are saved. Type resume to carry on",
            )
            await self._replace(dialog_context.context, live, stopped)

    # -- opening --------------------------------------------------------------------------

    async def _open(self, dialog_context: DialogContext) -> DialogTurnResult:
        context = dialog_context.context
        staff = current_staff(context)
        audit_id = dialog_context.active_dialog.state["audit_id"]
        async with self._database.session() as session:
            detail = await self._own_audit(context, session, staff, audit_id)
            if detail is None:
                return await dialog_context.end_dialog()
            standard = self._standard_of(detail)
            if standard is None:
                await self._tell(context, self._unknown_standard(detail))
                return await dialog_context.end_dialog()
            if detail.audit.status == AuditStatus.SUBMITTED:
                if is_card_action(context):
                    show_in_place(context, self._record(detail, standard))
                else:
                    await context.send_activity(self._already_submitted(detail))
                return await dialog_context.end_dialog()
            step = first_unanswered(standard, detail.kind, detail.progress(self._framework))
            seq = await audit_store.next_card(session=session, audit=detail.audit, step=step)
            previous_card = detail.audit.live_card_activity_id
            card = await self._card_for(session, detail, standard, step, seq, [], {})
        dialog_context.active_dialog.state["return_to_summary"] = False
        if is_card_action(context):
            await self._show_in_place(context, detail, standard, card, previous_card)
        else:
            await self._send_new_card(context, detail, standard, card, previous_card)
        return Dialog.end_of_turn

    # -- answering ------------------------------------------------------------------------

    async def _answer(self, dialog_context: DialogContext, answer: StepAnswer) -> DialogTurnResult:
        context = dialog_context.context
        staff = current_staff(context)
        state = dialog_context.active_dialog.state

        async def refuse(message: str | None) -> DialogTurnResult:
            if message:
                await self._tell(context, message)
            # A bad card for another audit leaves the audit in hand as it was.
            if state.get("audit_id") == answer.audit_id:
                return await dialog_context.end_dialog()
            return Dialog.end_of_turn

        async with self._database.session() as session:
            detail = await self._own_audit(context, session, staff, answer.audit_id)
            if detail is None:
                return await refuse(None)
            standard = self._standard_of(detail)
            if standard is None:
                return await refuse(self._unknown_standard(detail))
            if detail.audit.status == AuditStatus.SUBMITTED:
                if is_card_action(context):
                    # The card pressed becomes what the audit now is: its read-only record.
                    show_in_place(context, self._record(detail, standard))
                    return await refuse(None)
                return await refuse(
                    self._already_submitted(detail, submit=isinstance(answer, SummaryAction))
                )
            if state.get("audit_id") != answer.audit_id:
                # An answer on a card of another of the auditor's audits: switch to it.
                state["audit_id"] = answer.audit_id
                state["return_to_summary"] = False
            audit = detail.audit
            if answer.step != audit.current_step or answer.seq != audit.card_seq:
                return await self._refuse_stale(context, session, detail, standard)
            seq = await audit_store.take_card(
                session=session, audit_id=answer.audit_id, seq=answer.seq
            )
            if seq is None:
                fresh = await audit_store.audit_detail(session=session, audit_id=answer.audit_id)
                assert fresh is not None
                return await self._refuse_stale(context, session, fresh, standard)
            outcome = await self._apply(session, detail, standard, answer, state)
            card: Element | None = None
            if outcome.show is not None:
                await audit_store.move_to_step(session=session, audit=audit, step=outcome.show)
                await session.flush()
                if outcome.detail is not None:
                    detail = outcome.detail
                else:
                    fresh = await audit_store.audit_detail(
                        session=session, audit_id=answer.audit_id
                    )
                    assert fresh is not None
                    detail = fresh
                card = await self._card_for(
                    session, detail, standard, outcome.show, seq, outcome.problems, outcome.draft
                )
            heading = audit_heading(detail, standard)
            if outcome.end:
                await audit_store.set_live_card(
                    session=session, audit_id=answer.audit_id, activity_id=None
                )
            previous_card = detail.audit.live_card_activity_id

        if is_card_action(context):
            if outcome.submitted:
                card = self._record(detail, standard)
            elif card is None:
                card = audit_cards.step_done_card(
                    heading, label=outcome.done_label, outcome=outcome.done_outcome, carry_on=True
                )
            if outcome.end:
                show_in_place(context, card)
            else:
                await self._show_in_place(context, detail, standard, card, previous_card)
            return await dialog_context.end_dialog() if outcome.end else Dialog.end_of_turn
        answered_card_id = context.activity.reply_to_id
        if outcome.submitted:
            replacement = audit_cards.submitted_card(
                heading,
                items=summary_items(detail, standard, self._framework),
                submitted_on=self._today(),
            )
            await self._replace(context, answered_card_id, replacement)
        elif card is not None and outcome.in_place:
            if await self._replace(context, answered_card_id, card):
                await self._record_live_card(answer.audit_id, answered_card_id)
            else:
                # The answered card is spent (take_card) and still shows the old answer:
                # the card to fix it must reach the person some other way.
                await self._send_new_card(context, detail, standard, card, None)
        else:
            replacement = audit_cards.step_done_card(
                heading, label=outcome.done_label, outcome=outcome.done_outcome
            )
            await self._replace(context, answered_card_id, replacement)
        if outcome.message:
            await context.send_activity(outcome.message)
        if card is not None and not outcome.in_place:
            stale_card = previous_card if previous_card != answered_card_id else None
            await self._send_new_card(context, detail, standard, card, stale_card)
        if outcome.end:
            return await dialog_context.end_dialog()
        return Dialog.end_of_turn

    async def _apply(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: StepAnswer,
        state: dict[str, Any],
    ) -> StepOutcome:
        # The steps in the order they run.
        if isinstance(answer, CaseAnswer):
            return await self._steps.case(session, detail, standard, answer, state)
        if isinstance(answer, CriterionAnswer):
            return await self._steps.criterion(session, detail, standard, answer, state)
        if isinstance(answer, FeedbackAnswer):
            return await self._steps.feedback(session, detail, standard, answer, state)
        if isinstance(answer, InvolvementAnswer):
            return await self._steps.involvement(session, detail, standard, answer, state)
        return await self._steps.summary(session, detail, standard, answer, state)

    # -- cards ----------------------------------------------------------------------------

    async def _card_for(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        step: str,
        seq: int,
        problems: list[str],
        draft: dict[str, str],
    ) -> Element:
        return await step_card(
            session, detail, standard, step, seq=seq, problems=problems, draft=draft,
            framework=self._framework, today=self._today(),
        )  # fmt: skip

    def _record(self, detail: AuditDetail, standard: Standard) -> Element:
        """Return the read-only record of a submitted audit."""
        when = detail.audit.submitted_at
        return audit_cards.submitted_card(
            audit_heading(detail, standard),
            items=summary_items(detail, standard, self._framework),
            submitted_on=when.astimezone(self._zone).date() if when else self._today(),
        )

    async def _refuse_stale(
        self, context: TurnContext, session: AsyncSession, detail: AuditDetail, standard: Standard
    ) -> DialogTurnResult:
        """Change nothing; in place, show the audit as it now is instead of the card pressed."""
        if not is_card_action(context):
            await context.send_activity(self._stale(detail, standard))
            return Dialog.end_of_turn
        heading = audit_heading(detail, standard)
        if detail.audit.live_card_activity_id is None:
            # Stopped (`cancel`, Save and exit): the answers wait for Carry on or `resume`.
            show_in_place(
                context,
                audit_cards.step_done_card(
                    heading, label="Left for later", outcome="that card changed nothing",
                    carry_on=True,
                ),
            )  # fmt: skip
            return Dialog.end_of_turn
        audit = detail.audit
        card = await self._card_for(
            session, detail, standard, audit.current_step, audit.card_seq,
            ["That card was out of date, so nothing was changed. This is where your audit is now."],
            {},
        )  # fmt: skip
        await self._show_in_place(context, detail, standard, card, audit.live_card_activity_id)
        return Dialog.end_of_turn

    # -- Teams I/O ------------------------------------------------------------------------

    async def _show_in_place(
        self,
        context: TurnContext,
        detail: AuditDetail,
        standard: Standard,
        card: Element,
        previous_card_id: str | None,
    ) -> None:
        """Answer the press with this card in place; it is the audit's live card from now on."""
        show_in_place(context, card)
        pressed = context.activity.reply_to_id
        if not pressed:
            return  # the card pressed is not known by id: the live card stays as recorded
        assert detail.audit.id is not None
        if pressed != previous_card_id:
            await self._record_live_card(detail.audit.id, pressed)
            if previous_card_id:
                # Another card of this audit looked live (say, one `resume` sent): retire it.
                replaced = audit_cards.replaced_card(audit_heading(detail, standard))
                await self._replace(context, previous_card_id, replaced)

    async def _tell(self, context: TurnContext, message: str) -> None:
        """Say this: on the card pressed, in place, or as a message."""
        if is_card_action(context):
            show_in_place(context, audit_cards.notice_card(message))
        else:
            await context.send_activity(message)

    async def _send_new_card(
        self,
        context: TurnContext,
        detail: AuditDetail,
        standard: Standard,
        card: Element,
        stale_card_id: str | None,
    ) -> None:
        response = await context.send_activity(card_message(card))
        new_id = response.id if response else None
        assert detail.audit.id is not None
        await self._record_live_card(detail.audit.id, new_id)
        if stale_card_id and stale_card_id != new_id:
            await self._replace(
                context, stale_card_id, audit_cards.replaced_card(audit_heading(detail, standard))
            )

    async def _record_live_card(self, audit_id: int, activity_id: str | None) -> None:
        async with self._database.session() as session:
            await audit_store.set_live_card(
                session=session, audit_id=audit_id, activity_id=activity_id
            )

    async def _replace(self, context: TurnContext, activity_id: str | None, card: Element) -> bool:
        """Replace a card the person has; say whether it was replaced."""
        if not activity_id:
            return False
        # A card left behind changes nothing if pressed (take_card): not worth a message.
        return await replace_card(context, activity_id, card)

    # -- messages -------------------------------------------------------------------------

    async def _own_audit(
        self, context: TurnContext, session: AsyncSession, staff: Staff, audit_id: int
    ) -> AuditDetail | None:
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
        if detail is None or detail.audit.auditor_id != staff.id:
            log.warning("staff %s used a card for audit %s that is not theirs", staff.id, audit_id)
            await self._tell(
                context,
                "I can't find that audit among yours, so nothing was changed. Type **my audits** "
                "to see the audits you have.",
            )
            return None
        return detail

    def _standard_of(self, detail: AuditDetail) -> Standard | None:
        return self._framework.standard(detail.audit.standard)

    def _already_submitted(self, detail: AuditDetail, *, submit: bool = False) -> str:
        when = detail.audit.submitted_at
        on = f" on {short_date(when.astimezone(self._zone).date())}" if when else ""
        if submit:
            # A second press of Submit: it went in, and that is all there is to say.
            return f"That audit was already submitted{on}: nothing more is needed."
        return (
            f"That audit was already submitted{on}, so it cannot be changed. Nothing was saved "
            "from that card."
        )

    def _unknown_standard(self, detail: AuditDetail) -> str:
        log.error(
            "audit %s refers to standard %s, missing from the framework",
            detail.audit.id,
            detail.audit.standard,
        )
        return (
            "This audit's practice standard is no longer in the framework, so I can't show it. "
            "Please tell the Practice Quality team."
        )

    def _stale(self, detail: AuditDetail, standard: Standard) -> str:
        if detail.audit.live_card_activity_id is None:
            # No card of it is live: the auditor stopped it (`cancel`, Save and exit).
            return (
                "That card is from before you stopped this audit, so nothing was changed. Your "
                "answers so far are saved: type **resume** to carry on where you left off."
            )
        step = detail.audit.current_step
        criterion_id = criterion_of(step)
        if criterion_id is not None and standard.criterion(criterion_id):
            position, total = criterion_position(standard, criterion_id)
            where = f"criterion {position} of {total}"
        else:
            where = {
                CASE: "the case",
                FEEDBACK: "the feedback call",
                INVOLVEMENT: "involving the worker",
                SUMMARY: "checking your answers",
            }.get(step, "a later step")
        return (
            f"That card is out of date, so nothing was changed. Your audit is at {where}: "
            "use the latest card, or type **resume** to see it again."
        )

    def _today(self) -> date:
        return self._clock().astimezone(self._zone).date()
