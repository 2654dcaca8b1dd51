"""Reading typed commands and card submits, including hostile ones."""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import Command, parse_command
from cards.submissions import (
    HARD_TEXT_LIMIT,
    CriterionAnswer,
    FeedbackAnswer,
    OpenAudit,
    RunCommand,
    SubmissionError,
    parse_submission,
)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("help", Command.HELP),
        ("  HELP  ", Command.HELP),
        ("My audits", Command.MY_AUDITS),
        ("my  audits!", Command.MY_AUDITS),
        ("<at>PQF Audit Bot</at> resume", Command.RESUME),
        ("Resume.", Command.RESUME),
        ("cancel", Command.CANCEL),
        ("stop", Command.CANCEL),
        ("what is this", Command.UNKNOWN),
        ("", Command.UNKNOWN),
        (None, Command.UNKNOWN),
        ("help" * 100, Command.UNKNOWN),
    ],
)
def test_parse_command(text: str | None, command: Command) -> None:
    assert parse_command(text) is command


def test_parse_good_submissions() -> None:
    assert parse_submission({"pqf": "audit.open", "audit_id": 4}) == OpenAudit(
        pqf="audit.open", audit_id=4
    )
    assert isinstance(parse_submission({"pqf": "command", "command": "my audits"}), RunCommand)
    answer = parse_submission(
        {"pqf": "audit.criterion", "audit_id": "4", "seq": 3, "step": "criterion:3.2",
         "nav": "next", "rating": "meets", "evidence": "text", "msteams": {"x": 1}}
    )  # fmt: skip
    assert isinstance(answer, CriterionAnswer)
    assert answer.audit_id == 4
    feedback = parse_submission(
        {"pqf": "audit.feedback", "audit_id": 4, "seq": 3, "step": "feedback", "nav": "next",
         "contacted": "person,carer", "suitable_for_report": "true"}
    )  # fmt: skip
    assert isinstance(feedback, FeedbackAnswer)
    assert feedback.contacted == ("person", "carer")
    assert feedback.suitable_for_report is True


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a string", "can't read"),
        (["a", "list"], "can't read"),
        ({"action": "x"}, "isn't one of mine"),
        ({"pqf": "audit.delete", "audit_id": 1}, "isn't one of mine"),
        ({"pqf": "audit.open", "audit_id": "one"}, "can't read"),
        ({"pqf": "audit.open", "audit_id": -5}, "can't read"),
        ({"pqf": "audit.open", "audit_id": 10**20}, "can't read"),
        ({"pqf": "audit.criterion", "audit_id": 1, "seq": 0, "step": "criterion:3.2",
          "nav": "jump"}, "can't read"),
        ({"pqf": "audit.criterion", "audit_id": 1, "seq": 0, "step": "../etc",
          "nav": "next"}, "can't read"),
        ({"pqf": "audit.criterion", "audit_id": 1, "seq": 0, "step": "criterion:3.2",
          "nav": "next", "evidence": "x" * (HARD_TEXT_LIMIT + 1)}, "far too long"),
        ({"pqf": "audit.criterion", "audit_id": 1, "seq": 0, "step": "criterion:3.2",
          "nav": "next", "evidence": {"$ne": 1}}, "can't read"),
        ({"pqf": "audit.feedback", "audit_id": 1, "seq": 0, "step": "feedback", "nav": "next",
          "contacted": ",".join(["person"] * 50)}, "can't read"),
        ({"pqf": "command", "command": "drop tables"}, "can't read"),
    ],
)  # fmt: skip
def test_parse_bad_submissions(value: Any, message: str) -> None:
    with pytest.raises(SubmissionError, match=message):
        parse_submission(value)
