"""Small builders shared by every card. All cards are Adaptive Card 1.5, the most Teams renders.

Every card must fit a phone (Teams leaves a card about 306 px on a 320 px screen; see
`tests/test_cards_on_a_phone.py`): no button beside text in a column (the text gets squeezed
until words break), at most two buttons in a row and short titles (a row of Teams buttons is
about 274 px), and every choice and toggle wraps its words.

Teams renders a subset of markdown in a TextBlock's text and in a FactSet's titles and values:
a name typed as `[click me](https://…)` would show as a link, `**x**` as bold. So words that
people typed or imported (names, teams, case references, evidence, quotes, reasons) go only
through `users_text` and `users_facts`, which put them in a RichTextBlock's TextRun: the
schema gives TextRun no markdown at all, so they are shown exactly as written. `text`,
`heading` and `facts` are for the bot's own words.
"""

from __future__ import annotations

from typing import Any

CARD_VERSION = "1.5"

Element = dict[str, Any]


def adaptive_card(body: list[Element], actions: list[Element] | None = None) -> Element:
    """Return an Adaptive Card."""
    card: Element = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def heading(text: str, *, size: str = "Large") -> Element:
    """Return a bold heading (announced as a heading by screen readers)."""
    return {
        "type": "TextBlock",
        "text": text,
        "size": size,
        "weight": "Bolder",
        "wrap": True,
        "style": "heading",
    }


def text(
    value: str,
    *,
    subtle: bool = False,
    weight: str | None = None,
    size: str | None = None,
    color: str | None = None,
    spacing: str | None = None,
) -> Element:
    """Return a wrapped text block of the bot's own words (Teams renders its markdown)."""
    block: Element = {"type": "TextBlock", "text": value, "wrap": True}
    if subtle:
        block["isSubtle"] = True
    if weight:
        block["weight"] = weight
    if size:
        block["size"] = size
    if color:
        block["color"] = color
    if spacing:
        block["spacing"] = spacing
    return block


def _run(
    value: str,
    *,
    italic: bool = False,
    subtle: bool = False,
    weight: str | None = None,
    size: str | None = None,
    color: str | None = None,
) -> Element:
    run: Element = {"type": "TextRun", "text": value}
    if italic:
        run["italic"] = True
    if subtle:
        run["isSubtle"] = True
    if weight:
        run["weight"] = weight
    if size:
        run["size"] = size
    if color:
        run["color"] = color
    return run


def users_text(
    value: str,
    *,
    italic: bool = False,
    subtle: bool = False,
    weight: str | None = None,
    size: str | None = None,
    color: str | None = None,
    spacing: str | None = None,
) -> Element:
    """Return text holding words people typed or imported, shown exactly as written."""
    block: Element = {
        "type": "RichTextBlock",
        "inlines": [
            _run(value, italic=italic, subtle=subtle, weight=weight, size=size, color=color)
        ],
    }
    if spacing:
        block["spacing"] = spacing
    return block


def users_facts(pairs: list[tuple[str, str]]) -> Element:
    """Return label: value lines holding people's words, shown exactly as written."""
    return {
        "type": "Container",
        "items": [
            {
                "type": "RichTextBlock",
                "inlines": [_run(f"{title}: ", weight="Bolder"), _run(value)],
                **({"spacing": "None"} if index else {}),
            }
            for index, (title, value) in enumerate(pairs)
        ],
    }


def facts(pairs: list[tuple[str, str]]) -> Element:
    """Return a fact set (label: value lines) of the bot's own words."""
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in pairs]}


def problems_block(problems: list[str]) -> list[Element]:
    """Return the 'please fix' messages shown above the inputs, or nothing."""
    if not problems:
        return []
    return [
        {
            "type": "Container",
            "style": "attention",
            "items": [text("Please check your answer:", weight="Bolder")]
            + [text(f"- {p}") for p in problems],
        }
    ]


def submit(
    title: str, data: Element, *, style: str | None = None, send_inputs: bool = True
) -> Element:
    """Return an Action.Submit button."""
    action: Element = {"type": "Action.Submit", "title": title, "data": data}
    if style:
        action["style"] = style
    if not send_inputs:
        action["associatedInputs"] = "none"
    return action


def execute(
    title: str, data: Element, *, style: str | None = None, send_inputs: bool = True
) -> Element:
    """Return an Action.Execute button: the bot answers with the card taking this one's place.

    Its verb is what the data says it does (`data["pqf"]`); Teams sends the data, with the
    card's inputs, in an `adaptiveCard/action` invoke.
    """
    action: Element = {
        "type": "Action.Execute",
        "title": title,
        "verb": str(data["pqf"]),
        "data": data,
    }
    if style:
        action["style"] = style
    if not send_inputs:
        action["associatedInputs"] = "none"
    return action


def refresh(data: Element, *, user_ids: list[str]) -> Element:
    """Return a card's `refresh`: Teams asks the bot for the card as it now is for these people.

    People are named as Teams names them ("29:…") or by their Entra object id ("8:orgid:…").
    Teams refreshes automatically for everyone in a chat of fewer than 60, and otherwise only
    for the people in `userIds` (at most 60).
    """
    return {
        "action": {"type": "Action.Execute", "verb": str(data["pqf"]), "data": data},
        "userIds": user_ids[:60],
    }


def teams_id(aad_object_id: str | None) -> str | None:
    """Return how a card's `refresh` names a person with this Entra object id."""
    return f"8:orgid:{aad_object_id}" if aad_object_id else None


def action_set(*actions: Element) -> Element:
    """Return buttons placed in the card's body, on a row of their own."""
    return {"type": "ActionSet", "actions": list(actions)}


def download_action(audit_id: int) -> Element:
    """Return the button that asks the bot for links to download an audit."""
    return submit(
        "Download for the supervision file", {"pqf": "audit.download", "audit_id": audit_id}
    )
