"""The Board's pack for a month: the quotes suggested for it, and the words the Board adds.

A pack is the month's report as the Board publishes it: a handful of quotes chosen from those
the auditors marked as suitable, a summary and a commentary per standard. The shortlist
spreads across teams and standards (taking each team's and standard's quotes in turn) and
across audits rated well and less well (with and without a criterion rated Below), and
leaves out any quote that holds the name of someone on the roster.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from practice.report import FeedbackQuote

SHORTLIST_SIZE = 10
MAX_SUMMARY = 2000
MAX_COMMENTARY = 1500
MAX_REASON = 300
MAX_ACTION = 1000
MAX_OWNER = 200
FIRST_PUBLICATION = "first publication"
_FIELD = re.compile(r"^(?P<kind>quote|commentary|action)_(?P<id>[0-9]{1,9})$")
_FORM_FIELDS = {"summary", "reason", "new_action_standard", "new_action_text", "new_action_owner"}


class PackError(ValueError):
    """The Board's words or choices cannot make a pack; the message says why."""


@dataclass(frozen=True)
class PackWords:
    """What the Board adds to the month's figures: the quotes chosen, a summary, commentary."""

    quote_ids: tuple[int, ...] = ()  # the audits whose quotes are shown, in this order
    summary: str = ""
    commentary: Mapping[int, str] = field(default_factory=dict)  # by standard number
    # The learning actions shown, by id (None: every action the report shows).
    action_ids: tuple[int, ...] | None = None

    def check(self) -> None:
        """Raise PackError if the words are too long or commentary names no standard."""
        if len(self.summary) > MAX_SUMMARY:
            raise PackError(f"the summary is longer than {MAX_SUMMARY} characters")
        for standard, words in self.commentary.items():
            if len(words) > MAX_COMMENTARY:
                raise PackError(
                    f"the commentary on standard {standard} is longer than "
                    f"{MAX_COMMENTARY} characters"
                )


def names_in(text: str, names: Iterable[str]) -> bool:
    """Return whether the text holds any of the names (whole words, any letter case)."""
    return any(
        re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE) for name in names if name.strip()
    )


def shortlist(
    quotes: Sequence[FeedbackQuote], names: Iterable[str], size: int = SHORTLIST_SIZE
) -> list[FeedbackQuote]:
    """Return up to `size` quotes spread across teams, standards and audits' ratings.

    Round after round, each standard-and-team gives one quote before any gives a second, the
    standards taking turns. Within a round, the next quote is from an audit with a criterion
    rated Below when fewer of those are chosen so far than from audits rated Meets or better
    throughout, or the other way round (a quote's words carry no praise or criticism the bot
    could know; how the audit was rated is what it has). No quote holding a name is offered.
    """
    known = [n for n in names if n.strip()]
    usable = [q for q in quotes if not names_in(q.text, known)]
    by_group: dict[tuple[int, str], list[FeedbackQuote]] = defaultdict(list)
    for quote in sorted(usable, key=lambda q: (q.standard, q.team, q.audit_id)):
        by_group[(quote.standard, quote.team)].append(quote)
    # The first team of each standard, then the second of each, and so on.
    place: dict[int, int] = defaultdict(int)
    turns: dict[tuple[int, str], int] = {}
    for group in by_group:
        turns[group] = place[group[0]]
        place[group[0]] += 1
    order = sorted(by_group, key=lambda group: (turns[group], group))
    chosen: list[FeedbackQuote] = []
    while len(chosen) < size and any(by_group.values()):
        this_round = [group for group in order if by_group[group]]
        while this_round and len(chosen) < size:
            want = _wanted(chosen)
            group = next(
                (g for g in this_round if any(q.rated_below == want for q in by_group[g])),
                this_round[0],
            )
            this_round.remove(group)
            waiting = by_group[group]
            quote = next((q for q in waiting if q.rated_below == want), waiting[0])
            waiting.remove(quote)
            chosen.append(quote)
    return sorted(chosen, key=lambda q: (q.month, q.standard, q.team, q.audit_id))


def _wanted(chosen: Sequence[FeedbackQuote]) -> bool | None:
    """Return which kind of audit the next quote had better come from (None: either)."""
    below = sum(q.rated_below for q in chosen)
    others = len(chosen) - below
    if below == others:
        return None
    return below < others


@dataclass(frozen=True)
class PackOffer:
    """What the pack's card offers for a month: the choices a submit may name."""

    quotes: frozenset[int]  # audits whose quote is on the card
    standards: frozenset[int]  # standards with a table in the month (commentary)
    actions: frozenset[int]  # learning actions on the card
    action_standards: frozenset[int]  # standards a new action may be themed by


@dataclass(frozen=True)
class NewAction:
    """A learning action the Board adds while preparing the pack, themed by a standard."""

    standard: int
    action: str
    owner: str


@dataclass(frozen=True)
class PackForm:
    """The pack's card as submitted: the Board's words, a new action and the reason given."""

    words: PackWords
    new_action: NewAction | None = None
    reason: str = ""


def _toggle(key: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise PackError(f"{key} is not a toggle's value")
    return value.lower() == "true"


def read_pack_form(fields: Mapping[str, str], offer: PackOffer) -> tuple[PackForm, list[str]]:
    """Return the card's answers and the problems a person can correct on the card.

    Raise PackError when the submit names what the card never offered (a quote, a standard,
    an action) or holds a field no card of ours has: it was altered, so nothing is kept.
    """
    quotes: list[int] = []
    commentary: dict[int, str] = {}
    actions: list[int] = []
    for key, value in fields.items():
        if key in _FORM_FIELDS:
            continue
        match = _FIELD.match(key)
        if match is None:
            raise PackError(f"the card sent a field ({key[:40]}) that is not one of its own")
        kind, number = match["kind"], int(match["id"])
        if kind == "quote":
            if number not in offer.quotes:
                raise PackError(f"audit {number} has no quote on this month's shortlist")
            if _toggle(key, value):
                quotes.append(number)
        elif kind == "action":
            if number not in offer.actions:
                raise PackError(f"learning action {number} is not one the card offered")
            if _toggle(key, value):
                actions.append(number)
        else:
            if number not in offer.standards:
                raise PackError(f"standard {number} has no table in this month's report")
            if value.strip():
                commentary[number] = value.strip()
    problems: list[str] = []
    summary = fields.get("summary", "").strip()
    if len(summary) > MAX_SUMMARY:
        problems.append(
            f"The summary is {len(summary):,} characters; shorten it to {MAX_SUMMARY:,} or fewer."
        )
    for standard, words in sorted(commentary.items()):
        if len(words) > MAX_COMMENTARY:
            problems.append(
                f"The commentary on standard {standard} is {len(words):,} characters; shorten "
                f"it to {MAX_COMMENTARY:,} or fewer."
            )
    reason = fields.get("reason", "").strip()
    if len(reason) > MAX_REASON:
        problems.append(f"The reason is longer than {MAX_REASON} characters; shorten it.")
    new_action, trouble = _new_action(fields, offer)
    problems.extend(trouble)
    chosen = PackWords(tuple(sorted(quotes)), summary, commentary, tuple(sorted(actions)))
    return PackForm(chosen, new_action, reason), problems


def offered_fields(fields: Mapping[str, str], offer: PackOffer) -> dict[str, str]:
    """Return the card's fields less any naming what the month does not offer now.

    What is left reads without PackError: an out-of-date card (a quote no longer on the
    shortlist, an action gone) is shown again as the pack now stands, with the words typed on
    it that still have a place, so nothing typed is lost.
    """
    kept: dict[str, str] = {}
    for key, value in fields.items():
        if key == "new_action_standard":
            offered = value.strip().isdigit() and int(value) in offer.action_standards
            kept[key] = value if offered else ""
        elif key in _FORM_FIELDS:
            kept[key] = value
        elif (match := _FIELD.match(key)) is not None:
            kind, number = match["kind"], int(match["id"])
            if kind == "commentary":
                if number in offer.standards:
                    kept[key] = value
            elif number in (offer.quotes if kind == "quote" else offer.actions) and (
                value.lower() in ("true", "false")
            ):
                kept[key] = value
    return kept


def _new_action(fields: Mapping[str, str], offer: PackOffer) -> tuple[NewAction | None, list[str]]:
    standard = fields.get("new_action_standard", "").strip()
    text = fields.get("new_action_text", "").strip()
    owner = fields.get("new_action_owner", "").strip()
    if not (standard or text or owner):
        return None, []
    if standard and (not standard.isdigit() or int(standard) not in offer.action_standards):
        raise PackError(f"standard {standard[:10]} is not one a new action may be themed by")
    problems = []
    if not standard:
        problems.append("Choose the standard the new learning action is about.")
    if not text:
        problems.append("Describe the new learning action.")
    elif len(text) > MAX_ACTION:
        problems.append(f"Describe the new learning action in {MAX_ACTION:,} characters or fewer.")
    if not owner:
        problems.append("Name the new learning action's owner.")
    elif len(owner) > MAX_OWNER:
        problems.append(f"Name the new action's owner in {MAX_OWNER} characters or fewer.")
    if problems:
        return None, problems
    return NewAction(int(standard), text, owner), []
