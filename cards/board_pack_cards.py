"""Cards for the Board's pack: prepare it (quotes, words, actions), preview it, publish it.

The report's owners type `board pack 2026-11` and get `board_pack_card`: the suggested quotes
with a toggle each, a summary, a commentary per standard of the month, the learning actions
with a toggle each and a new one, and the buttons to save, preview and publish. What they
save is the month's draft, kept by the bot.

One card, updated in place: its buttons are `Action.Execute`, so each press is answered with
the card that takes its place (`bot/board_pack_chat.py`). Save and Preview bring the pack card
back with a status line by the buttons (Preview adds **Open the draft** and **Draft as a
PDF**, the signed links to the whole pack as it would be published: the card itself stays the
place to edit, so nothing typed is lost and there is no Back to press); a problem brings it
back as typed with what to correct. Publish turns it into `pack_version_card`: the version
published, its links, what happens next. `pack_published_card` is the notice of a version
queued to the Board.
"""

from __future__ import annotations

from dataclasses import dataclass

from cards.common import (
    Element,
    action_set,
    adaptive_card,
    execute,
    facts,
    heading,
    problems_block,
    submit,
    text,
    users_text,
)
from practice.board_pack import MAX_ACTION, MAX_COMMENTARY, MAX_OWNER, MAX_REASON, MAX_SUMMARY

PACK_ANSWER = "pack.answer"


@dataclass(frozen=True)
class QuoteChoice:
    """A quote on the shortlist, and whether it is chosen."""

    audit_id: int
    standard: int
    team: str
    text: str
    chosen: bool


@dataclass(frozen=True)
class StandardWords:
    """A standard with a table in the month, and the commentary written on it so far."""

    number: int
    title: str
    commentary: str


@dataclass(frozen=True)
class ActionChoice:
    """A learning action the report shows, and whether the pack shows it."""

    action_id: int
    theme: str
    action: str
    owner: str
    chosen: bool


@dataclass(frozen=True)
class UnsavedEntries:
    """What was typed on the card besides the pack's words: kept on the card it comes back as."""

    new_action_standard: str = ""  # a standard's number, as the choice's value
    new_action_text: str = ""
    new_action_owner: str = ""
    reason: str = ""


def _open_url(title: str, url: str) -> Element:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def _data(month: str, nav: str, published: int) -> Element:
    # `published`: the versions published when the card was made. A Publish pressed on a
    # card made before another version was published is out of date and changes nothing.
    return {"pqf": PACK_ANSWER, "month": month, "nav": nav, "published": published}


def _toggle(id_: str, label: str, title: str, on: bool) -> Element:
    return {
        "type": "Input.Toggle", "id": id_, "label": label, "title": title,
        "value": "true" if on else "false",
        "valueOn": "true", "valueOff": "false", "wrap": True,
    }  # fmt: skip


def _text_input(id_: str, label: str, value: str, limit: int, *, multiline: bool = True) -> Element:
    return {
        "type": "Input.Text", "id": id_, "label": label, "value": value,
        "isMultiline": multiline, "maxLength": limit,
    }  # fmt: skip


def _status_by_the_buttons(
    problems: list[str], notice: str, draft_url: str | None, draft_pdf_url: str | None,
    minutes: int,
) -> list[Element]:  # fmt: skip
    """Return what the last press did, again by the buttons: the card is long on a phone."""
    if problems:
        things = "one thing" if len(problems) == 1 else f"{len(problems)} things"
        return [
            text(
                f"Nothing was saved: {things} to correct, listed at the top of the card.",
                color="Attention", weight="Bolder", spacing="Medium",
            )
        ]  # fmt: skip
    status: list[Element] = []
    if notice:
        status.append(text(notice, color="Good", spacing="Medium"))
    if draft_url:
        pdf = " or download it as a PDF marked as a draft on every page" if draft_pdf_url else ""
        status += [
            text(
                "Open the draft for the whole pack as the Board would read it, with its "
                f"tables,{pdf}. It is not published; the links are for the report's owners and "
                f"work for {minutes} minutes (press Preview again for fresh ones).",
                subtle=True,
            ),
            # One button a row: side by side with another, neither title fits a phone's card.
            action_set(_open_url("Open the draft", draft_url)),
        ]
        if draft_pdf_url:
            status.append(action_set(_open_url("Draft as a PDF", draft_pdf_url)))
    return status


def board_pack_card(
    *,
    month: str,
    month_label: str,
    completed: int,
    quotes: list[QuoteChoice],
    summary: str,
    standards: list[StandardWords],
    actions: list[ActionChoice],
    action_standards: list[tuple[int, str]],
    published_versions: int,
    problems: list[str] | None = None,
    notice: str = "",
    unsaved: UnsavedEntries | None = None,
    draft_url: str | None = None,
    draft_pdf_url: str | None = None,
    minutes: int = 0,
) -> Element:
    """Return the card on which the report's owners prepare and publish the month's pack.

    `notice` says what the last press did (at the top and by the buttons); `problems` what to
    correct, with `unsaved` (the new action and the reason as typed) kept on the card;
    `draft_url` and `draft_pdf_url` are the signed links Preview made to the whole pack in
    draft, as a page and as a PDF.
    """
    typed = unsaved or UnsavedEntries()
    body: list[Element] = [
        text("Practice quality audits · the Board's pack", subtle=True, weight="Bolder"),
        heading(f"Pack for {month_label}", size="Medium"),
        facts(
            [
                ("Audits completed", str(completed)),
                ("Published", f"version {published_versions}" if published_versions else "not yet"),
            ]
        ),
    ]
    if notice:
        body.append(text(notice, color="Good"))
    body += problems_block(problems or [])
    body.append(heading("Quotes", size="Default"))
    if quotes:
        body.append(
            text(
                "Suggested from those the auditors marked as suitable, spread across teams, "
                "standards, and audits rated well and less well (with or without a criterion "
                "rated Below); none names anyone on the roster. Switch off those to leave out.",
                subtle=True,
            )
        )
    else:
        body.append(text("No quote was marked as suitable for reporting this month."))
    for place, quote in enumerate(quotes, 1):
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    users_text(f"Standard {quote.standard} · {quote.team}", subtle=True),
                    users_text(quote.text, italic=True, spacing="Small"),
                    _toggle(
                        f"quote_{quote.audit_id}",
                        f"Quote {place}",
                        "Show in the pack",
                        quote.chosen,
                    ),
                ],
            }
        )
    body.append(heading("Summary", size="Default"))
    body.append(_text_input("summary", "The Board's summary (plain text)", summary, MAX_SUMMARY))
    if standards:
        body.append(heading("Commentary", size="Default"))
    for standard in standards:
        body.append(
            _text_input(
                f"commentary_{standard.number}",
                f"Standard {standard.number}: {standard.title}",
                standard.commentary,
                MAX_COMMENTARY,
            )
        )
    body.append(heading("Learning actions", size="Default"))
    if not actions:
        body.append(text("No learning action is open for this month."))
    for place, item in enumerate(actions, 1):
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    users_text(item.theme, weight="Bolder"),
                    users_text(item.action, spacing="Small"),
                    users_text(f"Owner: {item.owner}", subtle=True, spacing="Small"),
                    _toggle(
                        f"action_{item.action_id}",
                        f"Action {place}",
                        "Show in the pack",
                        item.chosen,
                    ),
                ],
            }
        )
    body += [
        text("Add a learning action (optional)", weight="Bolder", spacing="Medium"),
        {
            "type": "Input.ChoiceSet",
            "id": "new_action_standard",
            "label": "Standard",
            "style": "compact",
            "placeholder": "Choose a standard",
            "value": typed.new_action_standard,
            "choices": [
                {"title": f"Standard {number}: {title}", "value": str(number)}
                for number, title in action_standards
            ],
        },
        _text_input("new_action_text", "The action", typed.new_action_text, MAX_ACTION),
        _text_input(
            "new_action_owner", "Owner", typed.new_action_owner, MAX_OWNER, multiline=False
        ),
        *_status_by_the_buttons(problems or [], notice, draft_url, draft_pdf_url, minutes),
        action_set(
            execute("Save", _data(month, "save", published_versions)),
            execute("Preview", _data(month, "preview", published_versions)),
        ),
        heading("Publish", size="Default"),
        text(
            "Publishing freezes this month's figures with the words and choices above as "
            f"version {published_versions + 1}; later imports and submissions never change it."
            + (" Say why it is published again." if published_versions else ""),
            subtle=True,
        ),
        _text_input(
            "reason",
            "Why it is published again" if published_versions else "Reason (optional)",
            typed.reason,
            MAX_REASON,
            multiline=False,
        ),
    ]
    publish = execute("Publish", _data(month, "publish", published_versions), style="positive")
    return adaptive_card(body, [publish])


def pack_version_card(
    *,
    month: str,
    month_label: str,
    version: int,
    reason: str,
    published_at: str,
    completed: int,
    quotes: int,
    actions: int,
    told: int,
    report_url: str,
    pdf_url: str,
    minutes: int,
) -> Element:
    """Return the pack's card once an owner has published it: the version, its links, what next.

    `published_at` is the time of day it was published; `told` how many people the notice of
    it was queued to.
    """
    if told:
        people = "1 person" if told == 1 else f"{told:,} people"
        board = (
            f"The Board is told: {people} who see the whole report (you aside) get a notice "
            "in their chat with the bot, with a button to open the pack."
        )
    else:
        board = "Nobody on the roster sees the whole report, so nobody was sent a notice."
    body: list[Element] = [
        text("Practice quality audits · the Board's pack", subtle=True, weight="Bolder"),
        heading(f"Published version {version}: {month_label}", size="Medium"),
        text(
            f"Published at {published_at}. Its figures, quotes and words are frozen: later "
            "imports and submissions never change it.",
            color="Good",
        ),
        users_text(f"Why: {reason}", subtle=True),
        facts([
            ("Audits completed", str(completed)),
            ("Quotes", str(quotes)),
            ("Learning actions", str(actions)),
        ]),
        heading("What happens next", size="Default"),
        text(board),
        text(
            f"Open it as a web page or download it as a PDF to print or send; the links work "
            f"for {minutes} minutes (type **report {month}** for fresh ones).",
            subtle=True,
        ),
        # One button a row: side by side, neither title fits a phone's card.
        action_set(_open_url("Open the pack", report_url)),
        action_set(_open_url("Download as PDF", pdf_url)),
        text(
            f"To change it, prepare version {version + 1}: it is published beside this one, "
            "with the reason you give, and this one stays as it is.",
            subtle=True,
        ),
    ]  # fmt: skip
    again = execute(
        f"Prepare version {version + 1}", _data(month, "edit", version), send_inputs=False
    )
    return adaptive_card(body, [again])


def pack_published_card(
    *,
    month: str,
    month_label: str,
    version: int,
    reason: str,
    completed: int,
    quotes: int,
    actions: int,
    summary: str,
) -> Element:
    """Return the notice to the Board that a version of the month's pack is published."""
    body: list[Element] = [
        text("Practice quality audits · the Board's pack", subtle=True, weight="Bolder"),
        heading(f"{month_label}: version {version} published", size="Medium"),
        users_text(f"Why: {reason}", subtle=True),
        facts([
            ("Audits completed", str(completed)),
            ("Quotes", str(quotes)),
            ("Learning actions", str(actions)),
        ]),
    ]  # fmt: skip
    if summary:
        body.append(users_text(summary))
    body.append(
        text(
            "Open it for its summary and a link to the whole pack, as a web page or a PDF.",
            subtle=True,
        )
    )
    data = {"pqf": "command", "command": "report", "month": month}
    return adaptive_card(body, [submit("Open the pack", data, send_inputs=False)])
