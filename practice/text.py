"""Which characters text from people and files may hold, and what a strict email address is.

Control characters (NUL above all) cannot be stored in PostgreSQL and break layouts and
exports everywhere; unpaired surrogates cannot be encoded at all. Names, teams and email
addresses are also kept free of invisible characters (zero-width spaces, direction
overrides, line breaks), which make two entries look alike or text read backwards.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls but tab, line feed and carriage return; DEL and the C1 controls; surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# In one-line values also: tab and line breaks, zero-width spaces and joiners that carry no
# meaning in a name, direction marks, embeddings, overrides and isolates, the BOM.
_INVISIBLE = re.compile(
    "[\t\n\r\x85\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# Deliberately narrower than RFC 5322: what Microsoft 365 addresses use, and an apostrophe
# for names such as O'Neill. No quotes, spaces, comments or addresses without a domain.
_LOCAL = r"[A-Za-z0-9_%+'-]+(?:\.[A-Za-z0-9_%+'-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
EMAIL = re.compile(rf"(?=[^@]{{1,64}}@)(?=.{{6,254}}\Z){_LOCAL}@{_DOMAIN}\Z", re.ASCII)


def describe(character: str) -> str:
    """Return a character as a person can look it up, e.g. 'U+200B ZERO WIDTH SPACE'."""
    name = unicodedata.name(character, "")
    code = f"U+{ord(character):04X}"
    return f"{code} {name}" if name else code


def unwanted_character(text: str, *, one_line: bool = False) -> str | None:
    """Return why the text cannot be taken (naming its first bad character), or None."""
    match = _CONTROL.search(text)
    if match is not None:
        kind = (
            "an unpaired surrogate"
            if "\ud800" <= match.group() <= "\udfff"
            else ("a control character")
        )
        return f"{kind} ({describe(match.group())})"
    if one_line:
        match = _INVISIBLE.search(text)
        if match is not None:
            return f"an invisible character or line break ({describe(match.group())})"
    return None


def is_email(text: str) -> bool:
    """Return whether the text is an email address of the strict form the roster accepts."""
    return EMAIL.match(text) is not None
