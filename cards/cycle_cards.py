"""Cards of the monthly cycle: reminders, managers' digests, shared outcomes, moderation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cards.audit_cards import AuditHeading, SummaryItem, summary_blocks
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
from cards.help_cards import AuditListEntry, audit_list_blocks
from practice.dates import long_date, short_date

MODERATION_EVIDENCE_LIMIT = 2500


def reminder_card(*, entries: list[AuditListEntry], due_on: date, today: date) -> Element:
    """Return the reminder to an auditor about their unfinished audits."""
    when = "today" if due_on == today else f"by {long_date(due_on)}"
    plural = "audit is" if len(entries) == 1 else f"{len(entries)} audits are"
    body: list[Element] = [
        heading("Reminder: audits due", size="Medium"),
        text(f"Your {plural} due {when}. Everything you have answered so far is saved."),
    ]
    body += audit_list_blocks(entries)
    return adaptive_card(body)


@dataclass(frozen=True)
class DigestRow:
    """One member of a manager's team in the digest."""

    name: str
    state: str  # a key of DIGEST_STATES
    detail: str


@dataclass(frozen=True)
class DigestState:
    """How the digest shows one state: a heading, words for the count, and what to do."""

    heading: str
    counted: str  # after a count in the opening sentence: "1 not opened the audit bot yet"
    advice: str = ""


_OPEN_THE_BOT = "in Teams, Apps, then PQF Audit Bot"
# In the order the digest lists them. The bot can only say why it cannot reach someone as
# far as Teams told it: never opened, not installed yet or refused (through Graph), removed,
# blocked (Teams refused its messages), other.
DIGEST_STATES = {
    "done": DigestState("Done", "done"),
    "in_progress": DigestState("In progress", "in progress"),
    "not_started": DigestState("Not started", "not started"),
    "never_opened": DigestState(
        "Not opened the audit bot yet",
        "not opened the audit bot yet",
        "They have not opened the audit bot in Teams yet, so their audit requests are waiting "
        f"for them there. Please ask them to open it ({_OPEN_THE_BOT}).",
    ),
    "install_pending": DigestState(
        "Audit bot being added",
        "waiting for the audit bot to be added",
        "The audit bot could not be added to their Teams yet; it will try again. Their audit "
        "requests are waiting for them there.",
    ),
    "install_refused": DigestState(
        "Teams would not add the audit bot",
        "could not be given the audit bot",
        "Teams refused to add the audit bot for them, for the reason shown. Please ask your "
        "Teams administrator to allow the PQF Audit Bot app for them.",
    ),
    "removed": DigestState(
        "Removed the audit bot",
        "removed the audit bot",
        "They removed the audit bot from Teams, so it cannot send them their audits or "
        f"reminders. Please ask them to add it again ({_OPEN_THE_BOT}); their answers are kept.",
    ),
    "blocked": DigestState(
        "Blocked the audit bot",
        "blocked the audit bot",
        "Teams refused the audit bot's messages to them, as it does when someone has blocked "
        "the bot. Please ask them to open their chat with the audit bot and unblock it.",
    ),
    "undelivered": DigestState(
        "Messages not delivered",
        "not reached by the audit bot",
        "The audit bot's latest message to them could not be delivered in Teams. Please ask "
        f"them to open the audit bot ({_OPEN_THE_BOT}).",
    ),
    "no_teams_id": DigestState(
        "Not linked to Teams on the roster",
        "not linked to Teams on the roster",
        "The roster has no Microsoft Entra ID for them, so the audit bot cannot recognise them "
        "in Teams. Please ask whoever keeps the roster to add it.",
    ),
    "on_leave": DigestState("On leave", "on leave"),
    "inactive": DigestState("Marked inactive on the roster", "marked inactive on the roster"),
    "none": DigestState("No audit this month", "with no audit this month"),
}


def digest_card(*, month_label: str, due_on: date, rows: list[DigestRow], today: date) -> Element:
    """Return a manager's digest of their team's audits for the month."""
    counts = {state: sum(1 for r in rows if r.state == state) for state in DIGEST_STATES}
    summary = ", ".join(
        f"{counts[state]} {shown.counted}"
        for state, shown in DIGEST_STATES.items()
        if counts[state]
    )
    days = "today" if due_on == today else f"by {long_date(due_on)}"
    body: list[Element] = [
        text(f"Practice quality audits · {month_label}", subtle=True, weight="Bolder"),
        heading("Your team's audits", size="Medium"),
        # Counts lead the sentence: never change its case ("Teams" stays "Teams").
        text(f"Audits are due {days}. {summary}." if summary else "No audits."),
    ]
    for state, shown in DIGEST_STATES.items():
        members = [r for r in rows if r.state == state]
        if not members:
            continue
        body.append(text(shown.heading, weight="Bolder", spacing="Medium"))
        body.append(users_facts([(r.name, r.detail or "—") for r in members]))
        if shown.advice:
            body.append(text(shown.advice, subtle=True, spacing="Small"))
    return adaptive_card(body)


def outcome_card(
    audit: AuditHeading,
    *,
    items: list[SummaryItem],
    submitted_on: date,
    auditor_name: str,
    for_supervisor: bool,
) -> Element:
    """Return the completed audit as shared with the audited worker or their supervisor."""
    whose = (
        f"the work of {audit.subject_name}"
        if for_supervisor and audit.subject_name
        else ("your work")
    )
    body: list[Element] = [
        text(f"{audit.title} · {audit.kind.description}", subtle=True, weight="Bolder"),
        heading("A completed audit to discuss in supervision", size="Medium"),
        users_text(
            f"{auditor_name} completed an audit of {whose} ({audit.about}) on "
            f"{short_date(submitted_on)}. Please talk it through in supervision."
        ),
    ]
    body += summary_blocks(items, seq=None, audit=audit)
    return adaptive_card(body, [download_action(audit.audit_id)])


@dataclass(frozen=True)
class SampleEntry:
    """One audit of the moderation sample, as a moderator sees it."""

    audit_id: int
    title: str
    about: str
    team: str
    kind: str
    claimed_by: str | None
    mine: bool
    moderated: bool


def moderation_sample_card(
    *,
    month_label: str,
    until: date,
    entries: list[SampleEntry],
    moderator_name: str,
    month: str | None = None,
    refresh_for: str | None = None,
) -> Element:
    """Return the month's moderation sample with a Claim button on each unclaimed audit.

    With `month` ('YYYY-MM') and `refresh_for` (the moderator's Teams id), Teams asks the bot
    for the card afresh when they look at it: who holds each audit now, what is moderated.
    """
    body: list[Element] = [
        text(f"Moderation · audits of {month_label}", subtle=True, weight="Bolder"),
        heading("Audits to moderate", size="Medium"),
        text(
            f"{len(entries)} completed audits were drawn at random for moderation. Claim the "
            f"ones you will moderate; moderation closes on {long_date(until)}."
        ),
    ]
    for entry in entries:
        if entry.moderated:
            state = f"Moderated by {entry.claimed_by}"
        elif entry.mine:
            state = "Claimed by you"
        elif entry.claimed_by:
            state = f"Taken by {entry.claimed_by}"
        else:
            state = "Not claimed yet"
        items: list[Element] = [
            text(entry.title, weight="Bolder"),
            users_text(
                f"{entry.kind.capitalize()} of {entry.about} · {entry.team}", spacing="None"
            ),
            users_text(state, subtle=True, spacing="None"),
        ]
        if entry.claimed_by is None:
            items.append(
                {
                    "type": "ActionSet",
                    "actions": [
                        execute("Claim", {"pqf": "moderation.claim", "audit_id": entry.audit_id})
                    ],
                }
            )
        elif entry.mine and not entry.moderated:
            items.append(
                {
                    "type": "ActionSet",
                    "actions": [
                        execute("Moderate", {"pqf": "moderation.open", "audit_id": entry.audit_id})
                    ],
                }
            )
        body.append({"type": "Container", "separator": True, "items": items})
    card = adaptive_card(body)
    if month and refresh_for:
        card["refresh"] = refresh(
            {"pqf": "moderation.sample", "month": month}, user_ids=[refresh_for]
        )
    return card


@dataclass(frozen=True)
class ModerationItem:
    """One criterion as the moderator sees it: the auditor's rating and evidence, and theirs."""

    criterion_id: str
    text: str
    auditor_rating: str
    evidence: str
    view: str  # "agree", a rating code, or "" when not answered
    reason: str


def moderation_card(
    audit: AuditHeading,
    *,
    seq: int,
    auditor_name: str,
    ratings: list[tuple[str, str]],
    items: list[ModerationItem],
    overall_comment: str,
    max_length: int,
    problems: list[str] | None = None,
    notice: str = "",
) -> Element:
    """Return the moderation of one audit: per criterion, agree or a rating with a reason.

    `notice` says what the last press did (that the views were saved, and when), on the card.
    """
    body: list[Element] = [
        text(f"{audit.title} · moderation", subtle=True, weight="Bolder"),
        users_text(
            f"Moderate the {audit.kind.description} of {audit.about}",
            size="Medium",
            weight="Bolder",
        ),
        users_text(
            f"Audited by {auditor_name}. For each criterion, agree with the auditor's rating or "
            "give yours, with the reason when you differ."
        ),
    ]
    if notice:
        body.append(text(notice, color="Good"))
    body += problems_block(problems or [])
    choices = [{"title": "Agree with the auditor", "value": "agree"}] + [
        {"title": f"Rate it {label}", "value": code} for code, label in ratings
    ]
    for item in items:
        view: Element = {
            "type": "Input.ChoiceSet",
            "id": f"view_{item.criterion_id}",
            "label": f"Your view of {item.criterion_id}",
            "style": "compact",
            "placeholder": "Agree, or choose your rating",
            "choices": choices,
        }
        if item.view:
            view["value"] = item.view
        reason: Element = {
            "type": "Input.Text",
            "id": f"reason_{item.criterion_id}",
            "label": f"Why you differ on {item.criterion_id} (if you do)",
            "isMultiline": True,
            "maxLength": max_length,
        }
        if item.reason:
            reason["value"] = item.reason
        evidence = item.evidence
        if len(evidence) > MODERATION_EVIDENCE_LIMIT:
            evidence = evidence[:MODERATION_EVIDENCE_LIMIT] + "… (shortened here)"
        body.append(
            {
                "type": "Container",
                "separator": True,
                "spacing": "Medium",
                "items": [
                    text(f"**{item.criterion_id}** {item.text}", weight="Bolder"),
                    facts([("Auditor's rating", item.auditor_rating)]),
                    text("Auditor's evidence", subtle=True, spacing="Small"),
                    users_text(evidence or "—"),
                    view,
                    reason,
                ],
            }
        )
    comment: Element = {
        "type": "Input.Text",
        "id": "comment",
        "label": "Overall comment for the auditor",
        "isMultiline": True,
        "maxLength": max_length,
    }
    if overall_comment:
        comment["value"] = overall_comment
    body.append(comment)
    data = {"pqf": "moderation.answer", "audit_id": audit.audit_id, "seq": seq}
    # Two rows: side by side, these titles do not fit the width of a phone.
    body.append(action_set(execute("Save and finish later", {**data, "nav": "save"})))
    actions = [execute("Submit moderation", {**data, "nav": "submit"}, style="positive")]
    return adaptive_card(body, actions)


def moderated_card(
    audit: AuditHeading,
    *,
    moderator_name: str,
    lines: list[tuple[str, str, str]],
    overall_comment: str,
    for_auditor: bool,
) -> Element:
    """Return a submitted moderation: per criterion, agreed or the moderator's rating and why."""
    intro = (
        f"{moderator_name} moderated your {audit.kind.description} of {audit.about}."
        if for_auditor
        else f"You moderated this {audit.kind.description} of {audit.about}."
    )
    body: list[Element] = [
        text(f"{audit.title} · moderation", subtle=True, weight="Bolder"),
        heading("Moderation", size="Medium"),
        users_text(intro),
    ]
    agreed = sum(1 for _, verdict, _ in lines if verdict == "Agreed")
    body.append(text(f"Agreed on {agreed} of {len(lines)} criteria.", weight="Bolder"))
    for criterion_id, verdict, reason in lines:
        entry: list[Element] = [facts([(criterion_id, verdict)])]
        if reason:
            entry.append(users_text(reason, italic=True))
        body.append({"type": "Container", "spacing": "Small", "items": entry})
    if overall_comment:
        body.append(text("Overall comment", weight="Bolder", spacing="Medium"))
        body.append(users_text(overall_comment))
    return adaptive_card(body)


def new_audit_card(
    *, standards: list[tuple[int, str]], problems: list[str] | None = None
) -> Element:
    """Return the card to start an extra (voluntary) audit of any standard."""
    body: list[Element] = [
        heading("Start an extra audit", size="Medium"),
        text(
            "Beyond the audits you are asked for, you can audit any standard at any time, for "
            "example to explore practice in your team or in supervision. It is recorded as a "
            "voluntary audit."
        ),
    ]
    body += problems_block(problems or [])
    body += [
        {
            "type": "Input.ChoiceSet",
            "id": "standard",
            "label": "Practice standard",
            "style": "compact",
            "placeholder": "Choose a standard",
            "choices": [
                {"title": f"Standard {number}: {title}", "value": str(number)}
                for number, title in standards
            ],
        },
        {
            "type": "Input.ChoiceSet",
            "id": "what",
            "label": "What will you audit?",
            "style": "expanded",
            "wrap": True,
            "value": "own",
            "choices": [
                {"title": "One of my own cases (or my own supervision records)", "value": "own"},
                {"title": "Another case I can give the reference of", "value": "other"},
            ],
        },
    ]
    return adaptive_card(body, [submit("Start", {"pqf": "audit.new"}, style="positive")])
