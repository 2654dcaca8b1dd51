"""What makes an answer to an audit step complete. Each check returns the problems, in words
the auditor can act on; an empty list means the answer is complete."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date, timedelta

from practice.framework import Framework, Standard

# A case reference from the council's case system: never a name.
CASE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{0,39}$")
# A title and a name or initial ("Mrs B", "Mr. Jones"): how names most often slip into what a
# person or carer said.
TITLED_NAME = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Sir|Dame)\b\.? ?[A-Z][A-Za-z'’-]*")


def is_case_reference(text: str) -> bool:
    """Return whether the text has the form of a case reference (1-40 letters, digits, -/_)."""
    return bool(CASE_REFERENCE.match(text))


# Who the auditor spoke to for feedback. A supervision audit asks the supervisee instead.
CASE_CONTACTS = {
    "person": "The person",
    "carer": "Their carer",
    "representative": "Their representative",
}
SUPERVISION_CONTACTS = {"supervisee": "The member of staff (supervisee)"}

# How the allocated worker (or, for supervision, the supervisor) was involved.
INVOLVEMENT_OPTIONS = {
    "joint_in_person": "We did the audit together, face to face",
    "joint_teams": "We did the audit together, in Teams",
    "feedback_arranged": "I have arranged a date to give them feedback",
    "not_involved": "Neither was possible",
}

# A feedback date may be a little in the past (feedback already given) or ahead.
FEEDBACK_DATE_PAST = timedelta(days=62)
FEEDBACK_DATE_AHEAD = timedelta(days=183)


def contact_options(standard: Standard) -> dict[str, str]:
    """Return the people an auditor may have contacted for feedback on this standard."""
    return SUPERVISION_CONTACTS if standard.subject == "supervision" else CASE_CONTACTS


def _too_long(framework: Framework, label: str, text: str) -> list[str]:
    limit = framework.max_text_length
    if len(text) > limit:
        return [f"{label} is {len(text):,} characters long; the most is {limit:,}."]
    return []


def check_criterion_answer(framework: Framework, rating: str | None, evidence: str) -> list[str]:
    """Check a criterion's rating and evidence."""
    problems = _too_long(framework, "The evidence", evidence)
    if not rating:
        problems.append("Choose a rating: Below, Meets, Exceeds or N/A.")
        return problems
    option = framework.rating(rating)
    if option is None:
        problems.append("Choose one of the ratings shown: Below, Meets, Exceeds or N/A.")
    elif option.requires_evidence and not evidence.strip():
        problems.append(
            f"Add the evidence for rating this criterion {option.label}: what in the record "
            "shows it. Evidence is needed for every rating except N/A."
        )
    return problems


def check_ratings_together(
    framework: Framework, answers: Mapping[str, tuple[str | None, str]]
) -> list[str]:
    """Check the criteria's answers as a whole (criterion id -> rating, evidence).

    An audit rating every criterion N/A without a word of why says nothing about the
    practice, yet would count as done and in the Board's N/A figures.
    """
    if not answers:
        return []
    for rating, evidence in answers.values():
        option = framework.rating(rating) if rating else None
        if option is None or option.requires_evidence or evidence.strip():
            return []
    return [
        "Every criterion is rated N/A and none says why, so this audit would say nothing about "
        "the practice. Rate the criteria that apply or, if none does, give the reason in the "
        "evidence of at least one."
    ]


def titled_names(text: str) -> list[str]:
    """Return the titles with a name or initial in the text ("Mrs B", "Dr Jones")."""
    return [match.group(0) for match in TITLED_NAME.finditer(text)]


def check_feedback_call(
    framework: Framework,
    standard: Standard,
    contacted: Collection[str],
    what_they_said: str,
    no_contact_reason: str,
    *,
    suitable_for_report: bool,
) -> list[str]:
    """Check the feedback call: who was contacted and what they said, or why nobody was.

    Words that may be quoted to the Practice Quality Board must not name anyone.
    """
    problems = _too_long(framework, "What they said", what_they_said)
    problems += _too_long(framework, "The reason", no_contact_reason)
    allowed = contact_options(standard)
    unknown = [c for c in contacted if c not in allowed]
    if unknown:
        problems.append("Choose who you contacted from the list shown.")
    elif contacted and not what_they_said.strip():
        problems.append("Write down what they said about their experience.")
    elif not contacted and not no_contact_reason.strip():
        problems.append(
            "Nobody was contacted, so record why contact was not possible or not appropriate."
        )
    names = titled_names(what_they_said) if suitable_for_report and contacted else []
    if names:
        problems.append(
            f"Their words may be quoted to the Practice Quality Board, so leave names out: you "
            f"wrote “{names[0]}”. Write “the person”, “her daughter” or “the worker” instead, "
            "or untick sharing."
        )
    return problems


def check_involvement(
    framework: Framework, how: str, feedback_on: date | None, reason: str, today: date
) -> list[str]:
    """Check how the allocated worker was involved, or why they could not be."""
    problems = _too_long(framework, "The reason", reason)
    if how not in INVOLVEMENT_OPTIONS:
        problems.append("Choose how the worker was involved.")
    elif how == "feedback_arranged":
        if feedback_on is None:
            problems.append("Give the date you have arranged to give the worker feedback.")
        elif not today - FEEDBACK_DATE_PAST <= feedback_on <= today + FEEDBACK_DATE_AHEAD:
            problems.append(
                "The feedback date should be within the last two months or the next six months."
            )
    elif how == "not_involved" and not reason.strip():
        problems.append("Record why the worker could not be involved or given feedback.")
    return problems
