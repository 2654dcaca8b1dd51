"""Read what a person typed as one of the bot's commands."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

from practice.month import TEN_YEARS, Month, MonthError, check_range


class Command(StrEnum):
    HELP = "help"
    MY_AUDITS = "my audits"
    RESUME = "resume"
    CANCEL = "cancel"
    NEW_AUDIT = "new audit"
    MODERATION = "moderation"
    REPORT = "report"
    BOARD_PACK = "board pack"
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


_REPORT = re.compile(
    r"^report(?: (?P<first>[0-9]{4}-[0-9]{2})(?:(?: to | )(?P<last>[0-9]{4}-[0-9]{2}))?)?$"
)


def clean_command(text: str) -> str:
    cleaned = _TAGS.sub(" ", _MENTION.sub(" ", text)).lower()
    return re.sub(r"[\s\u00a0]+", " ", cleaned).strip(" .!?/")


def parse_command(text: str | None) -> Command:
    """Return the command in a message (mentions, markup, case and punctuation ignored)."""
    if not text or len(text) > MAX_COMMAND_LENGTH:
        return Command.UNKNOWN
    cleaned = clean_command(text)
    if cleaned == "report" or cleaned.startswith("report "):
        return Command.REPORT
    if re.match(r"^board ?pack(?: |$)", cleaned):
        return Command.BOARD_PACK
    return _SYNONYMS.get(cleaned, Command.UNKNOWN)


class ReportMonthsError(ValueError):
    """The months after `report` cannot be read."""


class ReportRangeError(ReportMonthsError):
    """The months after `report` are read, but are not a period a report may cover."""


def report_months(
    text: str | None, *, today: date, longest: int = TEN_YEARS
) -> tuple[Month, Month] | None:
    """Return the months named in `report 2023-09` or `report 2023-09 to 2024-02` (or None).

    The period is checked against what a report may cover (`practice.month.check_range`).
    """
    match = _REPORT.match(clean_command(text or ""))
    if match is None:
        raise ReportMonthsError("type report, report 2023-09, or report 2023-09 to 2024-02")
    if match["first"] is None:
        return None
    try:
        first = Month.parse(match["first"])
        last = Month.parse(match["last"] or match["first"])
    except MonthError as error:
        raise ReportMonthsError(str(error)) from None
    try:
        check_range(first, last, today=today, longest=longest)
    except MonthError as error:
        raise ReportRangeError(str(error)) from None
    return first, last
