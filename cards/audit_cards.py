"""Cards of the guided audit: the request, one card per step, the summary and the receipts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from cards.common import (
    Element,
    action_set,
    adaptive_card,
    download_action,
    execute,
    facts,
    heading,
    problems_block,
    refresh,
    submit,
    text,
    users_facts,
    users_text,
)
from practice.audit_steps import CASE, FEEDBACK, INVOLVEMENT, SUMMARY, AuditKind
from practice.audit_words import audit_about
from practice.dates import long_date, short_date

SUMMARY_TEXT_LIMIT = 600


@dataclass(frozen=True)
class AuditHeading:
    """What every card of an audit says about which audit it is."""

    audit_id: int
    standard_number: int
    standard_title: str
    kind: AuditKind
    month_label: str
    due_on: date
    case_reference: str | None
    subject_name: str | None
    supervision: bool

    @property
    def title(self) -> str:
        """Return 'Standard 3: Strengths-based assessments'."""
        return f"Standard {self.standard_number}: {self.standard_title}"

    @property
    def about(self) -> str:
        """Return what is being audited, e.g. 'case ABC123' or "Sam Jones's supervision"."""
        return audit_about(
            supervision=self.supervision,
            subject_name=self.subject_name,
            case_reference=self.case_reference,
        )


@dataclass(frozen=True)
class RatingChoice:
    """One point of the rating scale as offered on a card."""

    code: str
    label: str
    description: str


@dataclass(frozen=True)
class CaseChoice:
    """A case the auditor may pick."""

    reference: str
    description: str


@dataclass(frozen=True)
class SummaryItem:
    """One answered (or unanswered) step as listed on the summary."""

    step: str
    title: str
    lines: tuple[tuple[str, str], ...]
    users_words: tuple[tuple[str, str], ...]
    complete: bool
    changeable: bool = True
    change_label: str = "Change"


def _input(element: Element, value: str) -> Element:
    """Return the input with its current value filled in, if it has one."""
    if value:
        element["value"] = value
    return element


def _step_data(heading_: AuditHeading, pqf: str, seq: int, step: str, nav: str) -> Element:
    return {"pqf": pqf, "audit_id": heading_.audit_id, "seq": seq, "step": step, "nav": nav}


def _header(audit: AuditHeading, step_label: str, back: Element | None = None) -> list[Element]:
    # Back sits under the heading, as a back link does on GOV.UK forms: the row of buttons at
    # the foot of the card has room for two on a phone, Next and Save and exit.
    return [
        text(f"{audit.title} · {audit.kind.description}", subtle=True, weight="Bolder"),
        heading(step_label, size="Medium"),
        users_text(f"Auditing {audit.about} · due by {long_date(audit.due_on)}", subtle=True),
        *([action_set(back)] if back is not None else []),
    ]


def _truncated(value: str) -> str:
    if len(value) <= SUMMARY_TEXT_LIMIT:
        return value
    return value[:SUMMARY_TEXT_LIMIT].rstrip() + "… (shortened here; the full text is saved)"


def request_card(
    audit: AuditHeading,
    *,
    what_people_can_expect: str,
    refresh_for: str | None = None,
    steps_done: int = 0,
    steps_total: int = 0,
) -> Element:
    """Return the card that asks someone to do an audit, as the audit now stands.

    With `refresh_for` (the auditor's Teams id), Teams asks the bot for the card afresh when
    they look at it, so it shows the progress and due date as they are then.
    """
    if audit.kind is AuditKind.SELF:
        task = (
            "Audit one of your own open or recently closed cases against this standard."
            if not audit.supervision
            else "Audit your own supervision records against this standard."
        )
    elif audit.kind is AuditKind.PEER:
        task = (
            f"Audit the work of {audit.subject_name}, a colleague in a similar role in another "
            "team, as a critical friend."
            if audit.subject_name
            else "Audit the work of a colleague in a similar role in another team."
        )
    else:
        task = f"Audit {audit.about}, chosen at random for this month."
    body: list[Element] = [
        text(f"Practice quality audit · {audit.month_label}", subtle=True, weight="Bolder"),
        heading(f"Your {audit.kind.description}: {audit.title}"),
        users_text(task),
        facts(
            [("Due by", long_date(audit.due_on)), ("Kind of audit", audit.kind.description)]
            + (
                [("Progress", f"{steps_done} of {steps_total} steps answered")]
                if steps_done
                else []
            )
        ),
    ]
    if what_people_can_expect:
        body.append(text("What people can expect:", weight="Bolder", spacing="Medium"))
        body.append(text(f"“{what_people_can_expect}”", subtle=True))
    body.append(
        text(
            "You will rate each criterion Below, Meets, Exceeds or N/A (not applicable) with "
            "the evidence for it, record the feedback call with the person or their carer, "
            "and how the worker was involved. Everything is saved as you go.",
            spacing="Medium",
        )
    )
    actions = [
        execute(
            "Carry on" if steps_done else "Start the audit",
            {"pqf": "audit.open", "audit_id": audit.audit_id},
            style="positive",
        ),
        submit("My audits", {"pqf": "command", "command": "my audits"}),
    ]
    card = adaptive_card(body, actions)
    if refresh_for:
        card["refresh"] = refresh(
            {"pqf": "audit.refresh", "audit_id": audit.audit_id}, user_ids=[refresh_for]
        )
    return card


CaseMode = Literal["confirm_case", "choose_own", "choose_peer", "choose_any", "confirm_supervision"]


def case_card(
    audit: AuditHeading,
    *,
    seq: int,
    mode: CaseMode,
    allocated_worker: str | None,
    team: str | None,
    choices: list[CaseChoice],
    chosen: str = "",
    typed_reference: str = "",
    problems: list[str] | None = None,
) -> Element:
    """Return the first step: confirm the sampled case, or choose one to audit."""
    body = _header(audit, "Step 1: the case")
    body += problems_block(problems or [])
    if mode == "confirm_case":
        body.append(text("This case was chosen at random for your audit this month."))
        body.append(
            users_facts(
                [
                    ("Case reference", audit.case_reference or "not set"),
                    ("Team", team or "not recorded"),
                    ("Allocated worker", allocated_worker or "none recorded"),
                ]
            )
        )
        body.append(
            text(
                "Open the case record, then start. You will involve the allocated worker, or "
                "the person most recently involved, in the audit.",
                subtle=True,
            )
        )
        start_title = "Start the audit"
    elif mode == "confirm_supervision":
        body.append(
            users_text(
                f"You are auditing the supervision records of {audit.subject_name or 'the worker'}"
                ". Open their supervision file, then start."
            )
        )
        start_title = "Start the audit"
    elif mode == "choose_any":
        body.append(
            text(
                "Give the reference of the case you will audit: a case reference only, never "
                "the person's name."
            )
        )
        body.append(
            _input(
                {
                    "type": "Input.Text",
                    "id": "case_reference",
                    "label": "Case reference",
                    "placeholder": "For example 1234567",
                    "maxLength": 40,
                },
                typed_reference,
            )
        )
        start_title = "Use this case"
    else:
        if mode == "choose_own":
            whose, owner = "your own", "you"
        else:
            owner = audit.subject_name or "the worker"
            whose = f"{owner}'s"
        body.append(
            users_text(
                f"Choose one of {whose} open or recently closed cases. Give the case reference "
                "only, never the person's name."
            )
        )
        if choices:
            body.append(
                _input(
                    {
                        "type": "Input.ChoiceSet",
                        "id": "case_choice",
                        "label": "Case from the case list",
                        "style": "compact",
                        "placeholder": "Choose a case",
                        "choices": [
                            {"title": f"{c.reference} · {c.description}", "value": c.reference}
                            for c in choices
                        ],
                    },
                    chosen,
                )
            )
        else:
            body.append(
                users_text(
                    f"No open or recently closed cases are recorded for {owner} on the case "
                    "list, so type the reference below.",
                    subtle=True,
                )
            )
        body.append(
            _input(
                {
                    "type": "Input.Text",
                    "id": "case_reference",
                    "label": "Or type a case reference" if choices else "Case reference",
                    "placeholder": "For example 1234567",
                    "maxLength": 40,
                },
                typed_reference,
            )
        )
        start_title = "Use this case"
    # Leaving the case step saves nothing (the case is not chosen yet): "Not now", not "Save".
    actions = [
        execute(start_title, _step_data(audit, "audit.case", seq, CASE, "next"), style="positive"),
        execute("Not now", _step_data(audit, "audit.case", seq, CASE, "save_exit")),
    ]
    return adaptive_card(body, actions)


def criterion_card(
    audit: AuditHeading,
    *,
    seq: int,
    step: str,
    criterion_id: str,
    criterion_text: str,
    position: int,
    total: int,
    scale: list[RatingChoice],
    rating: str = "",
    evidence: str = "",
    max_length: int,
    problems: list[str] | None = None,
) -> Element:
    """Return the card for one criterion: rating, evidence, and Back / Next / Save and exit."""
    back = execute("Back", _step_data(audit, "audit.criterion", seq, step, "back"))
    body = _header(audit, f"Criterion {position} of {total}", back)
    body += problems_block(problems or [])
    body += [
        {
            "type": "Container",
            "style": "emphasis",
            "items": [text(f"**{criterion_id}** {criterion_text}", size="Medium")],
        },
        _input(
            {
                "type": "Input.ChoiceSet",
                "id": "rating",
                "label": "Rating (required)",
                "style": "expanded",
                "wrap": True,
                "choices": [
                    {"title": f"{choice.label} — {choice.description}", "value": choice.code}
                    for choice in scale
                ],
            },
            rating,
        ),
        _input(
            {
                "type": "Input.Text",
                "id": "evidence",
                "label": "Evidence (required unless you chose N/A)",
                "placeholder": "What in the record shows this? Do not include the person's name.",
                "isMultiline": True,
                "maxLength": max_length,
            },
            evidence,
        ),
    ]
    actions = [
        execute("Next", _step_data(audit, "audit.criterion", seq, step, "next"), style="positive"),
        execute("Save and exit", _step_data(audit, "audit.criterion", seq, step, "save_exit")),
    ]
    return adaptive_card(body, actions)


def feedback_card(
    audit: AuditHeading,
    *,
    seq: int,
    options: dict[str, str],
    contacted: tuple[str, ...] = (),
    what_they_said: str = "",
    no_contact_reason: str = "",
    suitable_for_report: bool = False,
    max_length: int,
    problems: list[str] | None = None,
) -> Element:
    """Return the feedback-call step."""
    if audit.supervision:
        intro = (
            "Ask the member of staff about their experience of supervision. If that was not "
            "possible or appropriate, record why."
        )
    else:
        intro = (
            "Try to contact the person, their carer or representative for feedback about their "
            "experience of Adult Social Care. If contact was not possible or appropriate, "
            "record why."
        )
    back = execute("Back", _step_data(audit, "audit.feedback", seq, FEEDBACK, "back"))
    body = _header(audit, "Feedback call", back)
    body += problems_block(problems or [])
    body += [
        text(intro),
        _input(
            {
                "type": "Input.ChoiceSet",
                "id": "contacted",
                "label": "Who gave feedback? (leave empty if nobody could be contacted)",
                "isMultiSelect": True,
                "style": "expanded",
                "wrap": True,
                "choices": [{"title": title, "value": code} for code, title in options.items()],
            },
            ",".join(contacted),
        ),
        _input(
            {
                "type": "Input.Text",
                "id": "what_they_said",
                "label": "What they said about their experience, without names",
                "placeholder": "Write “the person” or “her daughter”, never a name or initials: "
                "these words may be quoted to the Practice Quality Board.",
                "isMultiline": True,
                "maxLength": max_length,
            },
            what_they_said,
        ),
        {
            "type": "Input.Toggle",
            "id": "suitable_for_report",
            "title": "Their words may be quoted in reports to the Practice Quality Board (no "
            "names in them)",
            "label": "Sharing their feedback",
            "wrap": True,
            "value": "true" if suitable_for_report else "false",
            "valueOn": "true",
            "valueOff": "false",
        },
        _input(
            {
                "type": "Input.Text",
                "id": "no_contact_reason",
                "label": "If nobody was contacted: why not",
                "isMultiline": True,
                "maxLength": max_length,
            },
            no_contact_reason,
        ),
    ]
    actions = [
        execute(
            "Next", _step_data(audit, "audit.feedback", seq, FEEDBACK, "next"), style="positive"
        ),
        execute("Save and exit", _step_data(audit, "audit.feedback", seq, FEEDBACK, "save_exit")),
    ]
    return adaptive_card(body, actions)


def involvement_card(
    audit: AuditHeading,
    *,
    seq: int,
    worker_label: str,
    options: dict[str, str],
    how: str = "",
    feedback_on: str = "",
    reason: str = "",
    max_length: int,
    problems: list[str] | None = None,
) -> Element:
    """Return the step recording how the allocated worker (or supervisor) was involved."""
    back = execute("Back", _step_data(audit, "audit.involvement", seq, INVOLVEMENT, "back"))
    body = _header(audit, "Involving the worker", back)
    body += problems_block(problems or [])
    body += [
        users_text(
            f"Audits are not done in isolation. How was {worker_label} involved? Do the audit "
            "together (face to face or in Teams) where you can; otherwise arrange a date to "
            "give them feedback."
        ),
        _input(
            {
                "type": "Input.ChoiceSet",
                "id": "how",
                "label": "How they were involved (required)",
                "style": "expanded",
                "wrap": True,
                "choices": [{"title": title, "value": code} for code, title in options.items()],
            },
            how,
        ),
        _input(
            {
                "type": "Input.Date",
                "id": "feedback_on",
                "label": "Date arranged for feedback (if you arranged one)",
            },
            feedback_on,
        ),
        _input(
            {
                "type": "Input.Text",
                "id": "reason",
                "label": "If neither was possible: why",
                "isMultiline": True,
                "maxLength": max_length,
            },
            reason,
        ),
    ]
    actions = [
        execute(
            "Next",
            _step_data(audit, "audit.involvement", seq, INVOLVEMENT, "next"),
            style="positive",
        ),
        execute(
            "Save and exit", _step_data(audit, "audit.involvement", seq, INVOLVEMENT, "save_exit")
        ),
    ]
    return adaptive_card(body, actions)


def summary_blocks(
    items: list[SummaryItem], *, seq: int | None, audit: AuditHeading
) -> list[Element]:
    """Return every answer as card blocks, with Change buttons when `seq` is given."""
    body: list[Element] = []
    for item in items:
        entry: list[Element] = [text(item.title, weight="Bolder")]
        if item.lines:
            entry.append(users_facts(list(item.lines)))
        for label, words in item.users_words:
            entry.append(text(label, subtle=True, spacing="Small"))
            entry.append(users_text(_truncated(words)))
        if not item.complete:
            entry.append(text("Not answered yet", color="attention", weight="Bolder"))
        if seq is not None and item.changeable:
            # Below the answer, not in a column beside the title: on a phone the button
            # squeezed the title until its words broke ("Feedb-ack").
            data = _step_data(audit, "audit.summary", seq, SUMMARY, "edit")
            data["edit_step"] = item.step
            entry.append(action_set(execute(item.change_label, data, send_inputs=False)))
        body.append({"type": "Container", "separator": True, "spacing": "Medium", "items": entry})
    return body


def summary_card(
    audit: AuditHeading,
    *,
    seq: int,
    items: list[SummaryItem],
    problems: list[str] | None = None,
) -> Element:
    """Return the summary of every answer, with Change buttons and Submit."""
    ready = all(item.complete for item in items)
    body = _header(audit, "Check your answers")
    body += problems_block(problems or [])
    body.append(
        text(
            "Check every answer. Use Change to correct one. When you submit, the audit is final."
            if ready
            else "Some answers are missing. Use Change to complete them before you submit."
        )
    )
    body += summary_blocks(items, seq=seq, audit=audit)
    actions = [
        execute(
            "Submit audit",
            _step_data(audit, "audit.summary", seq, SUMMARY, "submit"),
            style="positive",
        ),
        execute("Save and exit", _step_data(audit, "audit.summary", seq, SUMMARY, "save_exit")),
    ]
    return adaptive_card(body, actions)


def submitted_card(audit: AuditHeading, *, items: list[SummaryItem], submitted_on: date) -> Element:
    """Return the read-only record of a submitted audit (replaces the summary card)."""
    body = [
        text(f"{audit.title} · {audit.kind.description}", subtle=True, weight="Bolder"),
        heading("Audit submitted", size="Medium"),
        users_text(
            f"Auditing {audit.about}. Submitted on {short_date(submitted_on)}.", subtle=True
        ),
    ]
    body += summary_blocks(items, seq=None, audit=audit)
    return adaptive_card(body, [download_action(audit.audit_id)])


def step_done_card(
    audit: AuditHeading, *, label: str, outcome: str, carry_on: bool = False
) -> Element:
    """Return the small record that replaces a step's card once it has been answered.

    With `carry_on` (the audit was left for later), it offers to open the audit again in place.
    """
    body = [
        users_text(f"{audit.title} · {audit.about}", subtle=True),
        users_text(f"{label}: {outcome}", weight="Bolder"),
    ]
    if not carry_on:
        return adaptive_card(body)
    body.append(text("Your answers are saved. Carry on whenever you are ready.", spacing="Small"))
    open_again = {"pqf": "audit.open", "audit_id": audit.audit_id}
    return adaptive_card(body, [execute("Carry on", open_again, style="positive")])


def notice_card(message: str, audit: AuditHeading | None = None) -> Element:
    """Return a card that only tells: what the bot did (or would not do) with a button pressed."""
    body: list[Element] = []
    if audit is not None:
        body.append(users_text(f"{audit.title} · {audit.about}", subtle=True))
    body.append(text(message, weight="Bolder"))
    return adaptive_card(body)


def replaced_card(audit: AuditHeading) -> Element:
    """Return the notice that replaces a card superseded by a newer one."""
    return adaptive_card(
        [
            users_text(f"{audit.title} · {audit.about}", subtle=True),
            text("This card was replaced by a newer one further down the chat.", weight="Bolder"),
        ]
    )
