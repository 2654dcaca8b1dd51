"""Read, check and save the answer to each step of an audit, and say what it leads to.

The audit dialog (`dialogs/audit_dialog.py`) checks that an answer is the audit's live card and
takes the card; the methods here, one per step in the order the steps run, save what the card
submitted (complete or as a draft) and return a `StepOutcome`: the step whose card comes next
and how the answered card is replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from cards import audit_cards
from cards.submissions import (
    CaseAnswer,
    CriterionAnswer,
    FeedbackAnswer,
    InvolvementAnswer,
    SummaryAction,
)
from cards.views import audit_heading
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
    is_complete,
    is_step,
    step_after,
    step_before,
)
from practice.framework import Framework, Standard
from storage import audits as audit_store
from storage import roster
from storage.audits import AuditDetail
from storage.models import CaseRecord, Staff

log = logging.getLogger(__name__)


@dataclass
class StepOutcome:
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


def case_mode(detail: AuditDetail, standard: Standard) -> audit_cards.CaseMode:
    """Return how the case step asks for its case: confirm the one given, or choose one."""
    if standard.subject == "supervision":
        return "confirm_supervision"
    if detail.kind is AuditKind.SELF:
        return "choose_own"
    if detail.kind is AuditKind.PEER:
        return "choose_peer"
    if detail.audit.voluntary:
        return "choose_any"
    return "confirm_case"


class StepAnswers:
    """Save the answer to each step of an audit and decide the step that follows."""

    def __init__(
        self, *, framework: Framework, zone: ZoneInfo, clock: Callable[[], datetime]
    ) -> None:
        self._framework = framework
        self._zone = zone
        self._clock = clock

    def _after(self, standard: Standard, kind: AuditKind, step: str, state: dict[str, Any]) -> str:
        if state.get("return_to_summary"):
            state["return_to_summary"] = False
            return SUMMARY
        return step_after(standard, kind, step)

    def _leave(self, outcome: StepOutcome) -> StepOutcome:
        outcome.end = True
        outcome.show = None
        outcome.message = "Saved. Type **resume** (or use **my audits**) when you want to carry on."
        return outcome

    async def case(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: CaseAnswer,
        state: dict[str, Any],
    ) -> StepOutcome:
        staff = detail.auditor
        if answer.nav == "save_exit":
            return self._leave(StepOutcome(done_label="The case", done_outcome="not confirmed yet"))
        case: CaseRecord | None = detail.case
        subject: Staff | None = detail.subject
        problems: list[str] = []
        mode = case_mode(detail, standard)
        if mode in ("choose_own", "choose_peer"):
            worker = staff if mode == "choose_own" else detail.subject
            case, problems = await self._chosen_case(session, answer, worker, detail)
            if case is not None and mode == "choose_own":
                subject = staff
        elif mode == "choose_any":
            case, problems = await self._any_case(session, answer, detail)
            if case is not None and case.allocated_worker_id is not None:
                subject = await roster.staff_by_id(
                    session=session, staff_id=case.allocated_worker_id
                )
        elif mode == "confirm_case" and case is None:
            problems = ["No case is set for this audit. Ask your administrator to check it."]
        if problems:
            return StepOutcome(
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
        return StepOutcome(
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
            case = await roster.add_case_from_auditor(
                session=session, reference=reference, team=worker.team, worker_id=worker.id
            )
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
            case = await roster.add_case_from_auditor(
                session=session, reference=reference, team=detail.auditor.team, worker_id=None
            )
        return case, []

    async def criterion(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: CriterionAnswer,
        state: dict[str, Any],
    ) -> StepOutcome:
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
        return self._where_next(
            after, standard, answer.step, label=label, saved=saved, nav=answer.nav,
            problems=problems, state=state,
        )  # fmt: skip

    def _where_next(
        self,
        after: AuditDetail,
        standard: Standard,
        step: str,
        *,
        label: str,
        saved: str,
        nav: str,
        problems: list[str],
        state: dict[str, Any],
        draft: dict[str, str] | None = None,
    ) -> StepOutcome:
        """Return where an answered step leads: out, back, the same card to fix, or on."""
        if nav == "save_exit":
            return self._leave(StepOutcome(detail=after, done_label=label, done_outcome=saved))
        if nav == "back":
            return StepOutcome(
                detail=after,
                show=step_before(standard, after.kind, step),
                done_label=label,
                done_outcome=saved,
            )
        if problems:
            return StepOutcome(
                detail=after, show=step, in_place=True, problems=problems, draft=draft or {}
            )
        return StepOutcome(
            detail=after,
            show=self._after(standard, after.kind, step, state),
            done_label=label,
            done_outcome=saved,
        )

    async def feedback(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: FeedbackAnswer,
        state: dict[str, Any],
    ) -> StepOutcome:
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
        return self._where_next(
            after, standard, FEEDBACK, label="Feedback call",
            saved="saved" if not problems else "draft saved", nav=answer.nav, problems=problems,
            state=state,
        )  # fmt: skip

    async def involvement(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: InvolvementAnswer,
        state: dict[str, Any],
    ) -> StepOutcome:
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
        return self._where_next(
            after, standard, INVOLVEMENT, label="Involving the worker",
            saved="saved" if not problems else "draft saved", nav=answer.nav, problems=problems,
            state=state,
            # A date that could not be read is shown again as typed, to be put right.
            draft={"feedback_on": answer.feedback_on} if feedback_on is None else {},
        )  # fmt: skip

    async def summary(
        self,
        session: AsyncSession,
        detail: AuditDetail,
        standard: Standard,
        answer: SummaryAction,
        state: dict[str, Any],
    ) -> StepOutcome:
        if answer.nav == "save_exit":
            return self._leave(
                StepOutcome(
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
                return StepOutcome(
                    detail=detail,
                    show=SUMMARY,
                    in_place=True,
                    problems=["That answer cannot be changed here."],
                )
            state["return_to_summary"] = True
            return StepOutcome(
                detail=detail,
                show=target,
                done_label="Check your answers",
                done_outcome="changing an answer",
            )
        if not is_complete(standard, detail.kind, detail.progress(self._framework)):
            return StepOutcome(
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
            return StepOutcome(detail=detail, show=SUMMARY, in_place=True, problems=together)
        await audit_store.submit(
            session=session, audit=detail.audit, actor_id=detail.auditor.id or 0, now=self._clock()
        )
        await queue_outcome(
            session=session, framework=self._framework, detail=detail, submitted_on=self._today()
        )
        log.info("audit %s submitted", detail.audit.id)
        heading = audit_heading(detail, standard)
        return StepOutcome(
            detail=detail,
            end=True,
            submitted=True,
            message=(
                f"Thank you. Your {detail.kind.description} of {heading.about} against "
                f"{heading.title} is submitted. It can no longer be changed; type **my audits** "
                "to see what else you have to do."
            ),
        )

    def _today(self) -> date:
        return self._clock().astimezone(self._zone).date()
