"""Read a request body as JSON, refusing bodies nested too deeply before any parser sees them.

Python's `json` parser (and msrest's deserialiser after it) recurse once per level of
nesting: a 12 KB body of a thousand nested objects, or `[` a hundred thousand times,
exhausts the interpreter's stack and surfaces as a 500 before the request's token is even
looked at. The depth is measured here first, without recursion and in time linear in the
body's size, so that such a body is a plain 400.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

# Teams' activities nest some 6 levels deep (a card's submitted data inside an invoke's
# value); this leaves generous room while keeping every parser far from its stack limit.
MAX_DEPTH = 64

# An escape (a backslash and the character it escapes) holds no bracket or quote that counts.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
# With escapes gone, a string is a quote, anything but quotes, and a quote: linear to match.
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Opening brackets count +1 and closing ones -1, as signed bytes.
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class BodyError(ValueError):
    """The body is not JSON this service will read; `reason` names why, for the metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def nesting_depth(data: bytes) -> int:
    """Return the deepest nesting of arrays and objects in JSON text, strings ignored.

    For text that is not JSON the figure may be anything, but a parser reading it never
    gets deeper than this figure before it finds the fault: up to the first fault, the
    escapes, strings and brackets seen here are the ones the parser sees.
    """
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", data)).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(array("b", brackets.translate(_SIGNS)))))


def read_json(data: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Return the parsed body, or raise BodyError if it is too deep or not JSON."""
    if nesting_depth(data) > max_depth:
        raise BodyError("too_deep", f"the body is nested more than {max_depth} levels deep")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BodyError("not_json", "the body is not JSON") from error
