"""Cards for the Board's pack: prepare it (quotes, words, actions), preview it, publish it.

The report's owners type `board pack 2026-11` and get `board_pack_card`: the suggested quotes
with a toggle each, a summary, a commentary per standard of the month, the learning actions
with a toggle each and a new one, and the buttons to save, preview and publish. What they
save is the month's draft, kept by the bot; `board_pack_preview_card` shows it as the Board
would read it, and `board_pack_published_card` announces a published version.
"""

from __future__ import annotations

from dataclasses import dataclass

from cards.common import (
    Element,
    action_set,
    adaptive_card,
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


def _open_url(title: str, url: str) -> Element:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def _data(month: str, nav: str) -> Element:
    return {"pqf": PACK_ANSWER, "month": month, "nav": nav}


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


def _status_by_the_buttons(problems: list[str], notice: str) -> list[Element]:
    """Return what the last press did, again by the buttons: the card is long on a phone."""
    if problems:
        things = "one thing" if len(problems) == 1 else f"{len(problems)} things"
        return [
            text(
                f"Nothing was saved: {things} to correct, listed at the top of the card.",
                color="Attention", weight="Bolder", spacing="Medium",
            )
        ]  # fmt: skip
    if notice:
        return [text(notice, color="Good", spacing="Medium")]
    return []


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
) -> Element:
    """Return the card on which the report's owners prepare and publish the month's pack."""
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
            "value": "",
            "choices": [
                {"title": f"Standard {number}: {title}", "value": str(number)}
                for number, title in action_standards
            ],
        },
        _text_input("new_action_text", "The action", "", MAX_ACTION),
        _text_input("new_action_owner", "Owner", "", MAX_OWNER, multiline=False),
        *_status_by_the_buttons(problems or [], notice),
        action_set(
            submit("Save", _data(month, "save")), submit("Preview", _data(month, "preview"))
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
            "",
            MAX_REASON,
            multiline=False,
        ),
    ]
    return adaptive_card(body, [submit("Publish", _data(month, "publish"), style="positive")])


def board_pack_preview_card(
    *,
    month: str,
    month_label: str,
    completed: int,
    quotes: list[QuoteChoice],
    summary: str,
    standards: list[StandardWords],
    actions: list[ActionChoice],
    title: str = "Preview",
    report_url: str | None = None,
    pdf_url: str | None = None,
    draft_url: str | None = None,
    minutes: int = 0,
) -> Element:
    """Return the pack as the Board will read it: the figures, chosen quotes, words, actions.

    `report_url` and `pdf_url` open a published version; `draft_url` the whole pack as it
    would be published from the saved draft (a preview, for the report's owners).
    """
    chosen_quotes = [q for q in quotes if q.chosen]
    chosen_actions = [a for a in actions if a.chosen]
    body: list[Element] = [
        text("Practice quality audits · the Board's pack", subtle=True, weight="Bolder"),
        heading(f"{title}: {month_label}", size="Medium"),
        facts(
            [
                ("Audits completed", str(completed)),
                ("Quotes", str(len(chosen_quotes))),
                ("Learning actions", str(len(chosen_actions))),
            ]
        ),
    ]
    if summary:
        body += [text("Summary", weight="Bolder"), users_text(summary)]
    for standard in standards:
        if standard.commentary:
            body += [
                text(f"Standard {standard.number}: {standard.title}", weight="Bolder"),
                users_text(standard.commentary),
            ]
    if chosen_quotes:
        body.append(text("Quotes", weight="Bolder"))
    for quote in chosen_quotes:
        body.append(users_text(f"“{quote.text}” (standard {quote.standard})", italic=True))
    if report_url:
        body.append(
            text(
                f"The links open the pack as published and work for {minutes} minutes.", subtle=True
            )
        )
        if pdf_url:
            body.append(action_set(_open_url("Download as PDF", pdf_url)))
        return adaptive_card(body, [_open_url("Open the pack", report_url)])
    back = submit("Back to the pack", _data(month, "edit"), send_inputs=False)
    if draft_url:
        body.append(
            text(
                "Open the draft for the whole pack as the Board would read it, with its tables. "
                f"It is not published; the link is for the report's owners and works for "
                f"{minutes} minutes.",
                subtle=True,
            )
        )
        # One button a row: side by side, neither title fits a phone's card.
        body.append(action_set(_open_url("Open the draft", draft_url)))
        return adaptive_card(body, [back])
    body.append(action_set(back))
    return adaptive_card(body)


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
