"""The Board's pack for a month: the quotes suggested for it, and the words the Board adds.

A pack is the month's report as the Board publishes it: a handful of quotes chosen from those
the auditors marked as suitable, a summary and a commentary per standard. The shortlist
spreads across teams and standards (taking each team's and standard's quotes in turn) and
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


class PackError(ValueError):
    """The Board's words or choices cannot make a pack; the message says why."""


@dataclass(frozen=True)
class PackWords:
    """What the Board adds to the month's figures: the quotes chosen, a summary, commentary."""

    quote_ids: tuple[int, ...] = ()  # the audits whose quotes are shown, in this order
    summary: str = ""
    commentary: Mapping[int, str] = field(default_factory=dict)  # by standard number

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
    """Return up to `size` quotes spread across teams and standards, none holding a name."""
    known = [n for n in names if n.strip()]
    usable = [q for q in quotes if not names_in(q.text, known)]
    by_group: dict[tuple[int, str], list[FeedbackQuote]] = defaultdict(list)
    for quote in sorted(usable, key=lambda q: (q.standard, q.team, q.audit_id)):
        by_group[(quote.standard, quote.team)].append(quote)
    chosen: list[FeedbackQuote] = []
    # Round after round, one quote from each standard-and-team in turn.
    while len(chosen) < size and any(by_group.values()):
        for group in list(by_group):
            if by_group[group] and len(chosen) < size:
                chosen.append(by_group[group].pop(0))
    return sorted(chosen, key=lambda q: (q.month, q.standard, q.team, q.audit_id))
