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

Typed commands are handled by the bot before this dialog sees the turn: `cancel` ends the
dialog and retires its live card (`stop`; answers are kept), `resume` shows the first
unanswered step again. A press of a card from before the audit was stopped (or left with Save
and exit) says how to carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext
from botbuilder.dialogs import Dialog, DialogContext, DialogTurnResult
from sqlmodel.ext.asyncio.session import AsyncSession

from cards import audit_cards
from cards.common import Element, short_date
from cards.submissions import (
    CaseAnswer,
    CriterionAnswer,
    FeedbackAnswer,
    InvolvementAnswer,
    StepAnswer,
    SummaryAction,
)
from cards.views import (
    audit_heading,
    involved_worker_label,
    rating_choices,
    summary_items,
)
from dialogs.turn import ANSWER_KEY, card_message, card_update, current_staff
from messages.notices import queue_outcome
from practice.answers import (
    INVOLVEMENT_OPTIONS,
    check_criterion_answer,
    check_feedback_call,
    check_involvement,
    check_ratings_together,
    contact_options,
    is_case_reference,
)
from practice.audit_steps import (
    CASE,
    FEEDBACK,
    INVOLVEMENT,
    SUMMARY,
    AuditKind,
    criterion_of,
    criterion_position,
    first_unanswered,
    is_complete,
    is_step,
    step_after,
    step_before,
)
from practice.framework import Framework, Standard
from storage import audits as audit_store
from storage import roster
from storage.audits import AuditDetail
from storage.database import Database
from storage.models import AuditStatus, CaseRecord, CaseStatus, Staff

log = logging.getLogger(__name__)

CASE_CHOICES_SHOWN = 40


@dataclass
class _Outcome:
    """What answering a step leads to."""

    show: str | None = None  # the step whose card comes next
    in_place: bool = False  # show it by replacing the answered card (the same step, to fix)
    problems: list[str] = field(default_factory=list)
    draft: dict[str, str] = field(default_factory=dict)  # values to show again, unsaved
    done_label: str = ""  # how the answered card is replaced when we move on
    done_outcome: str = ""
    end: bool = False
    submitted: bool = False
    message: str | None = None
    # The audit as the answer left it, when that is known without reading it again (the
    # case step changes the case and people it joins, so it is read again).
    detail: AuditDetail | None = None


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
            if detail.audit.status == AuditStatus.SUBMITTED:
                await context.send_activity(self._already_submitted(detail))
                return await dialog_context.end_dialog()
            if standard is None:
                await context.send_activity(self._unknown_standard(detail))
                return await dialog_context.end_dialog()
            step = first_unanswered(standard, detail.kind, detail.progress(self._framework))
            seq = await audit_store.next_card(session=session, audit=detail.audit, step=step)
            previous_card = detail.audit.live_card_activity_id
            card = await self._card_for(session, detail, standard, step, seq, [], {})
        dialog_context.active_dialog.state["return_to_summary"] = False
        await self._send_new_card(context, detail, standard, card, previous_card)
        return Dialog.end_of_turn

    # -- answering ------------------------------------------------------------------------

    async def _answer(self, dialog_context: DialogContext, answer: StepAnswer) -> DialogTurnResult:
        context = dialog_context.context
        staff = current_staff(context)
        state = dialog_context.active_dialog.state

        async def refuse(message: str | None) -> DialogTurnResult:
            if message:
                await context.send_activity(message)
            # A bad card for another audit leaves the audit in hand as it was.
            if state.get("audit_id") == answer.audit_id:
                return await dialog_context.end_dialog()
            return Dialog.end_of_turn

        async with self._database.session() as session:
            detail = await self._own_audit(context, session, staff, answer.audit_id)
            if detail is None:
                return await refuse(None)
            if detail.audit.status == AuditStatus.SUBMITTED:
                return await refuse(
                    self._already_submitted(detail, submit=isinstance(answer, SummaryAction))
                )
            standard = self._standard_of(detail)
            if standard is None:
                return await refuse(self._unknown_standard(detail))
            if state.get("audit_id") != answer.audit_id:
                # An answer on a card of another of the auditor's audits: switch to it.
                state["audit_id"] = answer.audit_id
                state["return_to_summary"] = False
            audit = detail.audit
            if answer.step != audit.current_step or answer.seq != audit.card_seq:
                await context.send_activity(self._stale(detail, standard))
                return Dialog.end_of_turn
            seq = await audit_store.take_card(
                session=session, audit_id=answer.audit_id, seq=answer.seq
            )
            if seq is None:
                await context.send_activity(self._stale(detail, standard))
                return Dialog.end_of_turn
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
    ) -> _Outcome:
        if isinstance(answer, CaseAnswer):
            return await self._apply_case(session, detail, standard, answer, state)
        if isinstance(answer, CriterionAnswer):
            return await self._apply_criterion(session, detail, standard, answer, state)
        if isinstance(answer, FeedbackAnswer):
            return await self._apply_feedback(session, detail, standard, answer, state)
        if isinstance(answer, InvolvementAnswer):
            return await self._apply_involvement(session, detail, standard, answer, state)
        return await self._apply_summary(session, detail, standard, answer, state)

    def _after(self, standard: Standard, kind: AuditKind, step: str, state: dict[str, Any]) -> str:
        if state.get("return_to_summary"):
            state["return_to_summary"] = False
            return SUMMARY
        return step_after(standard, kind, step)

    def _leave(self, outcome: _Outcome) -> _Outcome:
        outcome.end = True
        outcome.show = None
        outcome.message = "Saved. Type **resume** (or use **my audits**) when you want to carry on."
        return outcome

    async def _apply_case(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: CaseAnswer,
        state: dict[str, Any],
    ) -> _Outcome:
        staff = detail.auditor
        if answer.nav == "save_exit":
            return self._leave(_Outcome(done_label="The case", done_outcome="not confirmed yet"))
        case: CaseRecord | None = detail.case
        subject: Staff | None = detail.subject
        problems: list[str] = []
        mode = self._case_mode(detail, standard)
        if mode in ("choose_own", "choose_peer"):
            worker = staff if mode == "choose_own" else detail.subject
            case, problems = await self._chosen_case(session, answer, worker, detail)
            if case is not None and mode == "choose_own":
                subject = staff
        elif mode == "choose_any":
            case, problems = await self._any_case(session, answer, detail)
            if case is not None and case.allocated_worker_id is not None:
                subject = await session.get(Staff, case.allocated_worker_id)
        elif mode == "confirm_case" and case is None:
            problems = ["No case is set for this audit. Ask your administrator to check it."]
        if problems:
            return _Outcome(
                show=CASE,
                in_place=True,
                problems=problems,
                draft={"case_choice": answer.case_choice, "case_reference": answer.case_reference},
            )
        await audit_store.confirm_case(
            session=session, audit=detail.audit, case=case, subject=subject
        )
        await audit_store.start(
            session=session, audit=detail.audit, actor_id=staff.id or 0, now=self._clock()
        )
        about = case.reference if case else (subject.name if subject else "")
        return _Outcome(
            show=self._after(standard, detail.kind, CASE, state),
            done_label="The case",
            done_outcome=f"{about} confirmed",
        )

    async def _chosen_case(
        self, session: AsyncSession, answer: CaseAnswer, worker: Staff | None, detail: AuditDetail
    ) -> tuple[CaseRecord | None, list[str]]:
        typed = answer.case_reference.strip().upper()
        chosen = answer.case_choice.strip().upper()
        if typed and chosen and typed != chosen:
            return None, ["Choose a case from the list or type a reference, not both."]
        reference = typed or chosen
        if not reference:
            return None, ["Choose a case from the list, or type its case reference."]
        if not is_case_reference(reference):
            return None, [
                "A case reference is 1 to 40 letters, digits, '-', '/' or '_' (never a name)."
            ]
        if worker is None:
            return None, ["No worker is set for this peer audit. Ask your administrator."]
        case = await roster.case_by_reference(session=session, reference=reference)
        if case is None:
            # Not on the imported case list yet (opened since the last import): record it
            # as the worker's case so the audit can go ahead.
            case = CaseRecord(
                reference=reference,
                team=worker.team,
                allocated_worker_id=worker.id,
                status=CaseStatus.OPEN,
                added_by_auditor=True,
            )
            session.add(case)
            await session.flush()
            return case, []
        if case.allocated_worker_id != worker.id:
            if worker.id == detail.auditor.id:
                return None, [f"Case {reference} is not allocated to you; choose one of your own."]
            return None, [
                f"Case {reference} is not allocated to {worker.name}; choose one of their cases."
            ]
        return case, []

    async def _any_case(
        self, session: AsyncSession, answer: CaseAnswer, detail: AuditDetail
    ) -> tuple[CaseRecord | None, list[str]]:
        reference = (answer.case_reference or answer.case_choice).strip().upper()
        if not reference:
            return None, ["Give the reference of the case you will audit."]
        if not is_case_reference(reference):
            return None, [
                "A case reference is 1 to 40 letters, digits, '-', '/' or '_' (never a name)."
            ]
        case = await roster.case_by_reference(session=session, reference=reference)
        if case is None:
            case = CaseRecord(
                reference=reference,
                team=detail.auditor.team,
                status=CaseStatus.OPEN,
                added_by_auditor=True,
            )
            session.add(case)
            await session.flush()
        return case, []

    async def _apply_criterion(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: CriterionAnswer,
        state: dict[str, Any],
    ) -> _Outcome:
        criterion_id = criterion_of(answer.step)
        assert criterion_id is not None
        rating = answer.rating.strip() or None
        if rating is not None and self._framework.rating(rating) is None:
            rating = None
        row = await audit_store.save_rating(
            session=session,
            audit_id=answer.audit_id,
            criterion_id=criterion_id,
            rating=rating,
            evidence=answer.evidence,
            saved=detail.ratings,
        )
        after = replace(detail, ratings={**detail.ratings, criterion_id: row})
        await audit_store.start(
            session=session, audit=detail.audit, actor_id=detail.auditor.id or 0, now=self._clock()
        )
        position, total = criterion_position(standard, criterion_id)
        label = f"Criterion {position} of {total} ({criterion_id})"
        problems = check_criterion_answer(self._framework, rating, answer.evidence)
        option = self._framework.rating(rating) if rating else None
        if problems:
            saved = "saved as a draft, still to finish"
        else:
            saved = f"{option.label} — saved" if option else "saved"
        if answer.nav == "save_exit":
            return self._leave(_Outcome(detail=after, done_label=label, done_outcome=saved))
        if answer.nav == "back":
            return _Outcome(
                detail=after,
                show=step_before(standard, detail.kind, answer.step),
                done_label=label,
                done_outcome=saved,
            )
        if problems:
            return _Outcome(detail=after, show=answer.step, in_place=True, problems=problems)
        return _Outcome(
            detail=after,
            show=self._after(standard, detail.kind, answer.step, state),
            done_label=label,
            done_outcome=saved,
        )

    async def _apply_feedback(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: FeedbackAnswer,
        state: dict[str, Any],
    ) -> _Outcome:
        allowed = contact_options(standard)
        contacted = tuple(c for c in answer.contacted if c in allowed)
        problems = check_feedback_call(
            self._framework,
            standard,
            answer.contacted,
            answer.what_they_said,
            answer.no_contact_reason,
            suitable_for_report=answer.suitable_for_report,
        )
        row = await audit_store.save_feedback_call(
            session=session,
            audit_id=answer.audit_id,
            contacted=contacted,
            what_they_said=answer.what_they_said,
            no_contact_reason=answer.no_contact_reason,
            suitable_for_report=answer.suitable_for_report and bool(contacted),
            complete=not problems,
        )
        await audit_store.start(
            session=session, audit=detail.audit, actor_id=detail.auditor.id or 0, now=self._clock()
        )
        after = replace(detail, feedback=row)
        saved = "saved" if not problems else "draft saved"
        if answer.nav == "save_exit":
            return self._leave(
                _Outcome(detail=after, done_label="Feedback call", done_outcome=saved)
            )
        if answer.nav == "back":
            return _Outcome(
                detail=after,
                show=step_before(standard, detail.kind, FEEDBACK),
                done_label="Feedback call",
                done_outcome=saved,
            )
        if problems:
            return _Outcome(detail=after, show=FEEDBACK, in_place=True, problems=problems)
        return _Outcome(
            detail=after,
            show=self._after(standard, detail.kind, FEEDBACK, state),
            done_label="Feedback call",
            done_outcome="saved",
        )

    async def _apply_involvement(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: InvolvementAnswer,
        state: dict[str, Any],
    ) -> _Outcome:
        feedback_on: date | None = None
        problems: list[str] = []
        if answer.feedback_on.strip():
            try:
                feedback_on = date.fromisoformat(answer.feedback_on.strip())
            except ValueError:
                problems.append("The feedback date is not a date. Use the date picker.")
        how = answer.how if answer.how in INVOLVEMENT_OPTIONS else ""
        problems += check_involvement(
            self._framework, answer.how, feedback_on, answer.reason, self._today()
        )
        row = await audit_store.save_involvement(
            session=session,
            audit_id=answer.audit_id,
            how=how,
            feedback_on=feedback_on if how == "feedback_arranged" else None,
            reason=answer.reason,
            complete=not problems,
        )
        await audit_store.start(
            session=session, audit=detail.audit, actor_id=detail.auditor.id or 0, now=self._clock()
        )
        after = replace(detail, involvement=row)
        saved = "saved" if not problems else "draft saved"
        if answer.nav == "save_exit":
            return self._leave(
                _Outcome(detail=after, done_label="Involving the worker", done_outcome=saved)
            )
        if answer.nav == "back":
            return _Outcome(
                detail=after,
                show=step_before(standard, detail.kind, INVOLVEMENT),
                done_label="Involving the worker",
                done_outcome=saved,
            )
        if problems:
            return _Outcome(
                detail=after,
                show=INVOLVEMENT,
                in_place=True,
                problems=problems,
                draft={"feedback_on": answer.feedback_on} if feedback_on is None else {},
            )
        return _Outcome(
            detail=after,
            show=self._after(standard, detail.kind, INVOLVEMENT, state),
            done_label="Involving the worker",
            done_outcome="saved",
        )

    async def _apply_summary(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: SummaryAction,
        state: dict[str, Any],
    ) -> _Outcome:
        if answer.nav == "save_exit":
            return self._leave(
                _Outcome(
                    detail=detail, done_label="Check your answers", done_outcome="not submitted yet"
                )
            )
        if answer.nav == "edit":
            target = answer.edit_step
            if (
                not is_step(standard, detail.kind, target)
                or target == SUMMARY
                or (
                    target == CASE
                    and detail.kind is AuditKind.SAMPLED
                    and not detail.audit.voluntary
                )
            ):
                return _Outcome(
                    detail=detail,
                    show=SUMMARY,
                    in_place=True,
                    problems=["That answer cannot be changed here."],
                )
            state["return_to_summary"] = True
            return _Outcome(
                detail=detail,
                show=target,
                done_label="Check your answers",
                done_outcome="changing an answer",
            )
        if not is_complete(standard, detail.kind, detail.progress(self._framework)):
            return _Outcome(
                detail=detail,
                show=SUMMARY,
                in_place=True,
                problems=["Some answers are missing. Use Change beside each one marked below."],
            )
        together = check_ratings_together(
            self._framework,
            {
                c.id: (r.rating, r.evidence)
                for c in standard.criteria
                if (r := detail.ratings.get(c.id))
            },
        )
        if together:
            return _Outcome(detail=detail, show=SUMMARY, in_place=True, problems=together)
        await audit_store.submit(
            session=session, audit=detail.audit, actor_id=detail.auditor.id or 0, now=self._clock()
        )
        await queue_outcome(
            session=session, framework=self._framework, detail=detail, submitted_on=self._today()
        )
        log.info("audit %s submitted", detail.audit.id)
        heading = audit_heading(detail, standard)
        return _Outcome(
            detail=detail,
            end=True,
            submitted=True,
            message=(
                f"Thank you. Your {detail.kind.description} of {heading.about} against "
                f"{heading.title} is submitted. It can no longer be changed; type **my audits** "
                "to see what else you have to do."
            ),
        )

    # -- cards ----------------------------------------------------------------------------

    def _case_mode(self, detail: AuditDetail, standard: Standard) -> audit_cards.CaseMode:
        if standard.subject == "supervision":
            return "confirm_supervision"
        if detail.kind is AuditKind.SELF:
            return "choose_own"
        if detail.kind is AuditKind.PEER:
            return "choose_peer"
        if detail.audit.voluntary:
            return "choose_any"
        return "confirm_case"

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
        heading = audit_heading(detail, standard)
        limit = self._framework.max_text_length
        if step == CASE:
            mode = self._case_mode(detail, standard)
            worker = detail.auditor if mode == "choose_own" else detail.subject
            choices: list[audit_cards.CaseChoice] = []
            if mode in ("choose_own", "choose_peer") and worker is not None and worker.id:
                cases = await roster.auditable_cases_of(
                    session=session,
                    worker_id=worker.id,
                    today=self._today(),
                    recently_closed_days=self._framework.recently_closed_days,
                    limit=CASE_CHOICES_SHOWN,
                )
                choices = [
                    audit_cards.CaseChoice(
                        c.reference,
                        "open"
                        if c.status == CaseStatus.OPEN or c.closed_on is None
                        else f"closed {short_date(c.closed_on)}",
                    )
                    for c in cases
                ]
            chosen = draft.get("case_choice", "")
            if not chosen and detail.case and mode in ("choose_own", "choose_peer"):
                chosen = detail.case.reference
            return audit_cards.case_card(
                heading,
                seq=seq,
                mode=mode,
                allocated_worker=detail.allocated_worker.name if detail.allocated_worker else None,
                team=detail.case.team if detail.case else None,
                choices=choices,
                chosen=chosen,
                typed_reference=draft.get("case_reference", ""),
                problems=problems,
            )
        criterion_id = criterion_of(step)
        if criterion_id is not None:
            criterion = standard.criterion(criterion_id)
            assert criterion is not None
            row = detail.ratings.get(criterion_id)
            position, total = criterion_position(standard, criterion_id)
            return audit_cards.criterion_card(
                heading,
                seq=seq,
                step=step,
                criterion_id=criterion_id,
                criterion_text=criterion.text,
                position=position,
                total=total,
                scale=rating_choices(self._framework),
                rating=(row.rating or "") if row else "",
                evidence=row.evidence if row else "",
                max_length=limit,
                problems=problems,
            )
        if step == FEEDBACK:
            feedback = detail.feedback
            return audit_cards.feedback_card(
                heading,
                seq=seq,
                options=contact_options(standard),
                contacted=tuple(c for c in feedback.contacted.split(",") if c) if feedback else (),
                what_they_said=feedback.what_they_said if feedback else "",
                no_contact_reason=feedback.no_contact_reason if feedback else "",
                suitable_for_report=feedback.suitable_for_report if feedback else False,
                max_length=limit,
                problems=problems,
            )
        if step == INVOLVEMENT:
            involvement = detail.involvement
            feedback_on = draft.get("feedback_on", "")
            if not feedback_on and involvement and involvement.feedback_on:
                feedback_on = involvement.feedback_on.isoformat()
            return audit_cards.involvement_card(
                heading,
                seq=seq,
                worker_label=involved_worker_label(detail, standard),
                options=INVOLVEMENT_OPTIONS,
                how=involvement.how if involvement else "",
                feedback_on=feedback_on,
                reason=involvement.reason if involvement else "",
                max_length=limit,
                problems=problems,
            )
        return audit_cards.summary_card(
            heading,
            seq=seq,
            items=summary_items(detail, standard, self._framework),
            problems=problems,
        )

    # -- Teams I/O ------------------------------------------------------------------------

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
        try:
            await context.update_activity(card_update(activity_id, card))
        except Exception as error:
            # The adapter tried again while the turn's time allowed. The answer is saved
            # either way, and a card left behind changes nothing if pressed (take_card):
            # not worth a message of its own.
            log.warning("could not replace card %s: %s", activity_id, type(error).__name__)
            return False
        return True

    # -- messages -------------------------------------------------------------------------

    async def _own_audit(
        self, context: TurnContext, session: AsyncSession, staff: Staff, audit_id: int
    ) -> AuditDetail | None:
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
        if detail is None or detail.audit.auditor_id != staff.id:
            log.warning("staff %s used a card for audit %s that is not theirs", staff.id, audit_id)
            await context.send_activity(
                "I can't find that audit among yours, so nothing was changed. Type **my audits** "
                "to see the audits you have."
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
