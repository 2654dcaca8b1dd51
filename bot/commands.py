"""Read what a person typed as one of the bot's commands."""

from __future__ import annotations

import re
from enum import StrEnum


class Command(StrEnum):
    HELP = "help"
    MY_AUDITS = "my audits"
    RESUME = "resume"
    CANCEL = "cancel"
    NEW_AUDIT = "new audit"
    MODERATION = "moderation"
    REPORT = "report"
    UNKNOWN = "unknown"


_SYNONYMS = {
    "help": Command.HELP,
    "hello": Command.HELP,
    "hi": Command.HELP,
    "start": Command.HELP,
    "menu": Command.HELP,
    "my audits": Command.MY_AUDITS,
    "my audit": Command.MY_AUDITS,
    "audits": Command.MY_AUDITS,
    "list": Command.MY_AUDITS,
    "resume": Command.RESUME,
    "continue": Command.RESUME,
    "carry on": Command.RESUME,
    "cancel": Command.CANCEL,
    "stop": Command.CANCEL,
    "quit": Command.CANCEL,
    "exit": Command.CANCEL,
    "new audit": Command.NEW_AUDIT,
    "new": Command.NEW_AUDIT,
    "extra audit": Command.NEW_AUDIT,
    "start an audit": Command.NEW_AUDIT,
    "moderation": Command.MODERATION,
    "moderate": Command.MODERATION,
}
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]{0,200}>")
MAX_COMMAND_LENGTH = 200


_REPORT = re.compile(r"^report(?: (?P<first>\d{4}-\d{2})(?:(?: to | )(?P<last>\d{4}-\d{2}))?)?$")


def _clean(text: str) -> str:
    cleaned = _TAGS.sub(" ", _MENTION.sub(" ", text)).lower()
    return re.sub(r"[\s\u00a0]+", " ", cleaned).strip(" .!?/")


def parse_command(text: str | None) -> Command:
    """Return the command in a message (mentions, markup, case and punctuation ignored)."""
    if not text or len(text) > MAX_COMMAND_LENGTH:
        return Command.UNKNOWN
    cleaned = _clean(text)
    if cleaned == "report" or cleaned.startswith("report "):
        return Command.REPORT
    return _SYNONYMS.get(cleaned, Command.UNKNOWN)


class ReportMonthsError(ValueError):
    """The months after `report` cannot be read."""


def report_months(text: str | None) -> tuple[str | None, str | None]:
    """Return the months named in `report 2023-09` or `report 2023-09 to 2024-02` (or none)."""
    match = _REPORT.match(_clean(text or ""))
    if match is None:
        raise ReportMonthsError("type report, report 2023-09, or report 2023-09 to 2024-02")
    first, last = match["first"], match["last"] or match["first"]
    for month in (first, last):
        if month is not None and not 1 <= int(month[5:]) <= 12:
            raise ReportMonthsError(f"{month} is not a month")
    if first and last and last < first:
        raise ReportMonthsError("the second month comes before the first")
    return first, last
