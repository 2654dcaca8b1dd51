"""Cards for finding one's way: the welcome and help card, and the list of one's audits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cards.common import (
    Element,
    adaptive_card,
    heading,
    submit,
    text,
    users_text,
)
from practice.dates import long_date, short_date

# What everyone on the roster may type, in the order the help card lists it; `moderation`
# (moderators only) and then `board pack` (the report's owners only) are listed after `report`.
COMMANDS = (
    ("my audits", "List the audits you have to do and the ones you have done."),
    ("resume", "Carry on with the audit you were doing, at the first unanswered question."),
    ("new audit", "Start an extra audit of any standard, for your team or supervision."),
    (
        "report",
        "A summary of the latest month's audits that you may see, with a link to the full "
        "report. For another month, add it: report 2023-09.",
    ),
    ("cancel", "Stop the audit you are doing. Your answers so far are kept."),
    ("help", "Show this help."),
)
MODERATOR_COMMANDS = (("moderation", "Show the audits drawn for moderation, and claim them."),)
PACK_COMMANDS = (
    (
        "board pack",
        "Prepare last month's pack for the Board: choose the quotes, write the summary and "
        "commentary, preview and publish. For another month, add it: board pack 2023-09.",
    ),
)


@dataclass(frozen=True)
class AuditListEntry:
    """One line of the 'my audits' list."""

    audit_id: int
    title: str
    kind: str
    about: str
    due_on: date
    status: str
    steps_done: int
    steps_total: int
    submitted_on: date | None


def commands_for(*, moderator: bool, prepares_pack: bool = False) -> list[tuple[str, str]]:
    """Return the commands this person may use, with what each does."""
    listed = list(COMMANDS)
    at = next(i for i, (command, _) in enumerate(listed) if command == "report") + 1
    extra = (MODERATOR_COMMANDS if moderator else ()) + (PACK_COMMANDS if prepares_pack else ())
    listed[at:at] = extra
    return listed


def help_card(
    *, name: str, greeting: bool, outstanding: int, moderator: bool, prepares_pack: bool = False
) -> Element:
    """Return the welcome (on installation) or help card, listing what this person may use.

    `prepares_pack`: the person is one of the report's owners, who prepare the Board's pack.
    """
    first = name.split()[0] if name.strip() else "there"
    body: list[Element] = [
        users_text(f"Hello {first}", size="Large", weight="Bolder")
        if greeting
        else heading("How to use the audit bot"),
        text(
            "I run Adult Social Care's monthly practice quality audits under the Practice "
            "Quality Framework. I send you the audits your role asks for, guide you "
            "through every criterion of that month's practice standard, and save your answers "
            "as you go."
        ),
    ]
    if outstanding:
        plural = "audit" if outstanding == 1 else "audits"
        body.append(text(f"You have {outstanding} {plural} to do.", weight="Bolder"))
    body.append(text("Type one of these, or use the buttons:", spacing="Medium"))
    body.append(
        {
            "type": "FactSet",
            "facts": [
                {"title": command, "value": meaning}
                for command, meaning in commands_for(
                    moderator=moderator, prepares_pack=prepares_pack
                )
            ],
        }
    )
    actions = [submit("My audits", {"pqf": "command", "command": "my audits"}, style="positive")]
    if outstanding:
        # With nothing to do, Resume could only say so.
        actions.append(submit("Resume", {"pqf": "command", "command": "resume"}))
    return adaptive_card(body, actions)


def my_audits_card(entries: list[AuditListEntry]) -> Element:
    """Return the auditor's list of audits with a button for each unfinished one."""
    body: list[Element] = [heading("Your audits")]
    if not entries:
        body.append(text("You have no audits to do at the moment."))
        return adaptive_card(body)
    body += audit_list_blocks(entries)
    body.append(text("Type **new audit** to start an extra audit of any standard.", subtle=True))
    return adaptive_card(body)


def audit_list_blocks(entries: list[AuditListEntry]) -> list[Element]:
    """Return one block per audit: what, whose, due, progress, and Start or Continue."""
    body: list[Element] = []
    for entry in entries:
        if entry.submitted_on is not None:
            state = f"Submitted on {short_date(entry.submitted_on)}"
        elif entry.steps_done == 0:
            state = "Not started"
        else:
            state = f"In progress: {entry.steps_done} of {entry.steps_total} steps done"
        items: list[Element] = [
            text(entry.title, weight="Bolder"),
            users_text(f"{entry.kind.capitalize()} of {entry.about}", spacing="None"),
            text(f"Due by {long_date(entry.due_on)} · {state}", subtle=True, spacing="None"),
        ]
        if entry.submitted_on is None:
            label = "Start" if entry.steps_done == 0 else "Continue"
            items.append(
                {
                    "type": "ActionSet",
                    "actions": [submit(label, {"pqf": "audit.open", "audit_id": entry.audit_id})],
                }
            )
        body.append({"type": "Container", "separator": True, "items": items})
    return body
