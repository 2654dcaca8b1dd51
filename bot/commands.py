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


def parse_command(text: str | None) -> Command:
    """Return the command in a message (mentions, markup, case and punctuation ignored)."""
    if not text or len(text) > MAX_COMMAND_LENGTH:
        return Command.UNKNOWN
    cleaned = _TAGS.sub(" ", _MENTION.sub(" ", text)).lower()
    cleaned = re.sub(r"[\s\u00a0]+", " ", cleaned).strip(" .!?/")
    return _SYNONYMS.get(cleaned, Command.UNKNOWN)
