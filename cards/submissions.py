"""The answers our cards submit, validated on the server.

Teams renders the cards, but whatever comes back is untrusted: a tampered client can send
anything. Every submit is parsed here into one of these models (or refused with a message
the user can understand) before a dialog looks at it. Whether the answer is *complete* is
the audit's rule and is checked later (see `practice.answers`); here we check shape, types
and hard size limits only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from practice.text import unwanted_character

# Far above any real answer; refuses absurd payloads before any other work.
HARD_TEXT_LIMIT = 20_000
STEP_PATTERN = r"^(case|feedback|involvement|summary|criterion:\d{1,2}\.\d{1,2})$"


class SubmissionError(ValueError):
    """The card payload could not be read; the message says so in plain words."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OpenAudit(_Payload):
    """Start or carry on an audit (from a request card or the audit list)."""

    pqf: Literal["audit.open"]
    audit_id: int = Field(ge=1, le=2**31 - 1)


class RunCommand(_Payload):
    """A button that does what typing a command would."""

    pqf: Literal["command"]
    command: Literal["help", "my audits", "resume", "new audit", "moderation", "report"]
    # With "report": the month to report on (the notice of a published Board's pack).
    month: str | None = Field(default=None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class _StepAnswer(_Payload):
    audit_id: int = Field(ge=1, le=2**31 - 1)
    seq: int = Field(ge=0, le=2**31 - 1)
    step: str = Field(pattern=STEP_PATTERN)


_Text = Annotated[str, Field(max_length=HARD_TEXT_LIMIT)]


class CaseAnswer(_StepAnswer):
    """The auditor's confirmation (or choice) of the case to audit."""

    pqf: Literal["audit.case"]
    nav: Literal["next", "save_exit"]
    case_choice: str = Field(default="", max_length=40)
    case_reference: str = Field(default="", max_length=200)


class CriterionAnswer(_StepAnswer):
    """A rating and its evidence for one criterion."""

    pqf: Literal["audit.criterion"]
    nav: Literal["next", "back", "save_exit"]
    rating: str = Field(default="", max_length=20)
    evidence: _Text = ""


class FeedbackAnswer(_StepAnswer):
    """The feedback call: who was contacted and what they said, or why nobody was."""

    pqf: Literal["audit.feedback"]
    nav: Literal["next", "back", "save_exit"]
    contacted: tuple[str, ...] = ()
    what_they_said: _Text = ""
    no_contact_reason: _Text = ""
    suitable_for_report: bool = False

    @field_validator("contacted", mode="before")
    @classmethod
    def _split_choices(cls, value: Any) -> Any:
        # A multi-select ChoiceSet submits "person,carer".
        if isinstance(value, str):
            return tuple(part for part in (p.strip() for p in value.split(",")) if part)
        return value

    @field_validator("contacted")
    @classmethod
    def _few_choices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 5 or any(len(v) > 20 for v in value):
            raise ValueError("too many or too long choices")
        return tuple(dict.fromkeys(value))

    @field_validator("suitable_for_report", mode="before")
    @classmethod
    def _toggle(cls, value: Any) -> Any:
        # Input.Toggle submits the strings "true" and "false".
        if isinstance(value, str) and value.lower() in ("true", "false", ""):
            return value.lower() == "true"
        return value


class InvolvementAnswer(_StepAnswer):
    """How the allocated worker was involved."""

    pqf: Literal["audit.involvement"]
    nav: Literal["next", "back", "save_exit"]
    how: str = Field(default="", max_length=40)
    feedback_on: str = Field(default="", max_length=40)
    reason: _Text = ""


class SummaryAction(_StepAnswer):
    """Submit the audit, change an answer, or leave it for later."""

    pqf: Literal["audit.summary"]
    nav: Literal["submit", "edit", "save_exit"]
    edit_step: str = Field(default="", max_length=40)


class AuditRefresh(_Payload):
    """Teams asks for a request card as the audit now stands (its `refresh`)."""

    pqf: Literal["audit.refresh"]
    audit_id: int = Field(ge=1, le=2**31 - 1)


class SampleRefresh(_Payload):
    """Teams asks for a moderation sample card as it now stands (its `refresh`)."""

    pqf: Literal["moderation.sample"]
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class DownloadAudit(_Payload):
    """Ask for links to download a completed audit."""

    pqf: Literal["audit.download"]
    audit_id: int = Field(ge=1, le=2**31 - 1)


class NewAudit(_Payload):
    """Start an extra, voluntary audit of any standard."""

    pqf: Literal["audit.new"]
    standard: str = Field(default="", max_length=3)
    what: Literal["own", "other", ""] = ""


class ClaimModeration(_Payload):
    """A moderator claims an audit of the moderation sample."""

    pqf: Literal["moderation.claim"]
    audit_id: int = Field(ge=1, le=2**31 - 1)


class OpenModeration(_Payload):
    """A moderator opens (again) the moderation of an audit they claimed."""

    pqf: Literal["moderation.open"]
    audit_id: int = Field(ge=1, le=2**31 - 1)


class ModerationAnswer(_Payload):
    """The moderation card: per criterion `view_<id>` and `reason_<id>`, and a comment."""

    model_config = ConfigDict(extra="allow", frozen=True)

    pqf: Literal["moderation.answer"]
    audit_id: int = Field(ge=1, le=2**31 - 1)
    seq: int = Field(ge=0, le=2**31 - 1)
    nav: Literal["submit", "save"]
    comment: _Text = ""

    @model_validator(mode="after")
    def _criteria_answers_are_bounded(self) -> ModerationAnswer:
        extra = self.model_extra or {}
        if len(extra) > 60:
            raise ValueError("too many answers")
        for key, value in extra.items():
            if not isinstance(value, str) or len(value) > HARD_TEXT_LIMIT:
                raise ValueError(f"{key} is not text of a sensible length")
        return self

    def views(self) -> dict[str, tuple[str, str]]:
        """Return criterion id → (view, reason) for the criteria the card sent."""
        extra = self.model_extra or {}
        found: dict[str, tuple[str, str]] = {}
        for key, value in extra.items():
            match = _CRITERION_FIELD.match(key)
            if match:
                view, reason = found.get(match["id"], ("", ""))
                if match["field"] == "view":
                    view = str(value).strip()
                else:
                    reason = str(value)
                found[match["id"]] = (view, reason)
        return found


class BoardPackAnswer(_Payload):
    """The Board's pack card: `quote_<id>`, `commentary_<n>`, `action_<id>` and the words.

    What the fields may name (the month's shortlist, standards, actions) is checked against
    the month by `practice.board_pack.read_pack_form`; here only shape and size.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    pqf: Literal["pack.answer"]
    month: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    nav: Literal["save", "preview", "publish", "edit"]
    # The versions published when the card was made (None: a card from before it said so).
    published: int | None = Field(default=None, ge=0, le=10_000)

    @model_validator(mode="after")
    def _fields_are_bounded(self) -> BoardPackAnswer:
        extra = self.model_extra or {}
        if len(extra) > 120:
            raise ValueError("too many answers")
        for key, value in extra.items():
            if not isinstance(value, str) or len(value) > HARD_TEXT_LIMIT:
                raise ValueError(f"{key} is not text of a sensible length")
        return self

    def fields(self) -> dict[str, str]:
        """Return the card's inputs as sent."""
        return {key: str(value) for key, value in (self.model_extra or {}).items()}


_CRITERION_FIELD = re.compile(r"^(?P<field>view|reason)_(?P<id>\d{1,2}\.\d{1,2})$")

StepAnswer = CaseAnswer | CriterionAnswer | FeedbackAnswer | InvolvementAnswer | SummaryAction
CardSubmission = (
    OpenAudit | RunCommand | NewAudit | DownloadAudit | ClaimModeration | OpenModeration
    | ModerationAnswer | BoardPackAnswer | StepAnswer | AuditRefresh | SampleRefresh
)  # fmt: skip
Submission = Annotated[CardSubmission, Field(discriminator="pqf")]
_ADAPTER: TypeAdapter[Submission] = TypeAdapter(Submission)


# How each field is named when a person is asked to correct it.
FIELD_LABELS = {
    "evidence": "The evidence",
    "what_they_said": "What they said",
    "no_contact_reason": "The reason nobody was contacted",
    "reason": "The reason",
    "comment": "Your comment",
    "case_reference": "The case reference",
    "case_choice": "The case",
    "feedback_on": "The feedback date",
    "summary": "The summary",
    "new_action_text": "The new action",
    "new_action_owner": "The new action's owner",
}
_MODERATION_REASON = re.compile(r"^reason_(?P<id>\d{1,2}\.\d{1,2})$")


def _field_label(key: object) -> str:
    if isinstance(key, str):
        if key in FIELD_LABELS:
            return FIELD_LABELS[key]
        reason = _MODERATION_REASON.match(key)
        if reason:
            return f"The reason for criterion {reason['id']}"
        if key.startswith("commentary_"):
            return f"The commentary on standard {key.removeprefix('commentary_')[:3]}"
    return "One of the answers"


def _refuse_unwanted_characters(value: dict[Any, Any]) -> None:
    """Refuse a submit holding text that cannot be stored, naming the field to correct."""
    for key, item in value.items():
        texts = [item] if isinstance(item, str) else item if isinstance(item, list) else []
        for text in texts:
            problem = unwanted_character(text) if isinstance(text, str) else None
            if problem:
                raise SubmissionError(
                    f"{_field_label(key)} contains {problem}, which I can't store. Please "
                    "remove it (it may have come with pasted text) and try again. Nothing "
                    "was saved."
                )


def parse_submission(value: Any) -> CardSubmission:
    """Return the submission a card sent, or raise SubmissionError."""
    if not isinstance(value, dict):
        raise SubmissionError("That card sent something I can't read.")
    if "pqf" not in value:
        raise SubmissionError("That card isn't one of mine, so I can't act on it.")
    _refuse_unwanted_characters(value)
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as error:
        kinds = {e["type"] for e in error.errors()}
        if "union_tag_invalid" in kinds:
            raise SubmissionError("That card isn't one of mine, so I can't act on it.") from None
        if kinds & {"string_too_long", "too_long"}:
            raise SubmissionError(
                "Part of that answer is far too long for me to accept. Nothing was saved."
            ) from None
        raise SubmissionError("That card sent something I can't read. Nothing was saved.") from None
