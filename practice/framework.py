"""Load and validate the Practice Quality Framework file (standards, criteria, timetable, roles)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from practice.month import MONTH_NAMES

RATING_CODES = ("below", "meets", "exceeds", "not_applicable")
PRACTITIONER_KINDS = ("self", "peer")


class FrameworkError(Exception):
    """The framework file cannot be used; the message names the file, field and problem."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RatingOption(_Frozen):
    code: Literal["below", "meets", "exceeds", "not_applicable"]
    label: str = Field(min_length=1, max_length=20)
    description: str = Field(min_length=1, max_length=200)
    requires_evidence: bool


class Criterion(_Frozen):
    id: str = Field(pattern=r"^\d{1,2}\.\d{1,2}$")
    text: str = Field(min_length=10, max_length=600)


class Standard(_Frozen):
    number: int = Field(ge=1, le=99)
    title: str = Field(min_length=3, max_length=100)
    subject: Literal["case", "supervision"]
    what_people_can_expect: str = Field(default="", max_length=600)
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _criteria_belong_to_standard(self) -> Standard:
        seen: set[str] = set()
        for index, criterion in enumerate(self.criteria):
            if criterion.id.split(".")[0] != str(self.number):
                raise ValueError(
                    f"criteria[{index}].id {criterion.id!r} must start with "
                    f"'{self.number}.' (the standard's number)"
                )
            if criterion.id in seen:
                raise ValueError(f"criteria[{index}].id {criterion.id!r} is used twice")
            seen.add(criterion.id)
        return self

    def criterion(self, criterion_id: str) -> Criterion | None:
        """Return the criterion with this id, or None."""
        return next((c for c in self.criteria if c.id == criterion_id), None)

    @property
    def label(self) -> str:
        """Return 'Standard 3: Strengths-based assessments'."""
        return f"Standard {self.number}: {self.title}"


class TimetableMonth(_Frozen):
    month: int = Field(ge=1, le=12)
    standard: int
    practitioner_kind: Literal["self", "peer"]

    @property
    def month_name(self) -> str:
        """Return the calendar month's English name."""
        return MONTH_NAMES[self.month - 1]


class AdditionalAudit(_Frozen):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    standard: int
    title: str = Field(min_length=3, max_length=100)
    roles: tuple[str, ...] = Field(min_length=1)


class Role(_Frozen):
    code: str = Field(pattern=r"^[A-Z]{2,6}$")
    title: str = Field(min_length=2, max_length=120)
    monthly_audits: int = Field(ge=0, le=50)
    audit_kind: Literal["sampled", "practitioner", "moderation"]
    # Which audits and reports the role may see: every audit, their teams', or their own.
    sees: Literal["all", "teams", "own"] = "own"
    # The Board's report owners: they prepare and publish the monthly pack in Teams.
    prepares_board_pack: bool = False


class CyclePolicy(_Frozen):
    """When reminders and digests go out, and how much is moderated."""

    reminder_working_days_before_due: tuple[int, ...] = Field(default=(5, 0), max_length=10)
    digest_working_days_before_due: tuple[int, ...] = Field(default=(10, 3), max_length=10)
    moderation_sample_percent: float = Field(default=10, gt=0, le=100)

    @field_validator("reminder_working_days_before_due", "digest_working_days_before_due")
    @classmethod
    def _days_are_sensible(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 0 or day > 20 for day in value):
            raise ValueError("working days before the due date must be between 0 and 20")
        if len(set(value)) != len(value):
            raise ValueError("a day is listed twice")
        return tuple(sorted(value, reverse=True))


class Framework(_Frozen):
    version: str = Field(min_length=1, max_length=40)
    recently_closed_days: int = Field(ge=1, le=730)
    max_text_length: int = Field(ge=100, le=20000)
    rating_scale: tuple[RatingOption, ...]
    standards: tuple[Standard, ...] = Field(min_length=1)
    timetable: tuple[TimetableMonth, ...]
    additional_audits: tuple[AdditionalAudit, ...] = ()
    roles: tuple[Role, ...] = Field(min_length=1)
    cycle: CyclePolicy = CyclePolicy()

    @field_validator("rating_scale")
    @classmethod
    def _scale_has_the_four_ratings(
        cls, value: tuple[RatingOption, ...]
    ) -> tuple[RatingOption, ...]:
        codes = tuple(option.code for option in value)
        if codes != RATING_CODES:
            raise ValueError(
                f"must list exactly {', '.join(RATING_CODES)} in that order "
                f"(found {', '.join(codes)})"
            )
        return value

    @model_validator(mode="after")
    def _references_are_consistent(self) -> Framework:
        numbers = [s.number for s in self.standards]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(
                f"standards must be numbered 1..{len(numbers)} in order (found {numbers})"
            )
        all_ids = [c.id for s in self.standards for c in s.criteria]
        duplicates = sorted({i for i in all_ids if all_ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"criterion ids used more than once: {duplicates}")
        months = [t.month for t in self.timetable]
        if len(set(months)) != len(months):
            raise ValueError("timetable: a calendar month appears more than once")
        for index, entry in enumerate(self.timetable):
            if entry.standard not in numbers:
                raise ValueError(f"timetable[{index}].standard {entry.standard} is not a standard")
        role_codes = [r.code for r in self.roles]
        if len(set(role_codes)) != len(role_codes):
            raise ValueError("roles: a role code appears more than once")
        for index, extra in enumerate(self.additional_audits):
            if extra.standard not in numbers:
                raise ValueError(
                    f"additional_audits[{index}].standard {extra.standard} is not a standard"
                )
            unknown = sorted(set(extra.roles) - set(role_codes))
            if unknown:
                raise ValueError(f"additional_audits[{index}].roles: unknown role codes {unknown}")
        return self

    @cached_property
    def _standards_by_number(self) -> dict[int, Standard]:
        return {s.number: s for s in self.standards}

    @cached_property
    def _roles_by_code(self) -> dict[str, Role]:
        return {r.code: r for r in self.roles}

    def standard(self, number: int) -> Standard | None:
        """Return the standard with this number, or None."""
        return self._standards_by_number.get(number)

    def role(self, code: str) -> Role | None:
        """Return the role with this code, or None."""
        return self._roles_by_code.get(code)

    def rating(self, code: str) -> RatingOption | None:
        """Return the rating option with this code, or None."""
        return next((r for r in self.rating_scale if r.code == code), None)

    def timetable_for_month(self, month: int) -> TimetableMonth | None:
        """Return the timetable entry for a calendar month (1-12), or None if none is audited."""
        return next((t for t in self.timetable if t.month == month), None)

    def criteria(self) -> Iterator[tuple[Standard, Criterion]]:
        """Yield every criterion with its standard."""
        for standard in self.standards:
            for criterion in standard.criteria:
                yield standard, criterion

    def as_public_dict(self) -> dict[str, Any]:
        """Return the framework in the documented `pqf-bot framework --json` shape."""
        return {
            "version": self.version,
            "rating_scale": [
                {"code": r.code, "label": r.label, "requires_evidence": r.requires_evidence}
                for r in self.rating_scale
            ],
            "standards": [
                {
                    "number": s.number,
                    "title": s.title,
                    "subject": s.subject,
                    "criteria": [{"id": c.id, "text": c.text} for c in s.criteria],
                }
                for s in self.standards
            ],
            "timetable": [
                {
                    "month": t.month,
                    "month_name": t.month_name,
                    "standard": t.standard,
                    "practitioner_kind": t.practitioner_kind,
                }
                for t in self.timetable
            ],
            "additional_audits": [a.model_dump(mode="json") for a in self.additional_audits],
            "roles": [r.model_dump(mode="json") for r in self.roles],
        }


def default_framework_path() -> Path:
    """Return the framework file shipped with the bot."""
    return Path(__file__).with_name("framework.yaml")


def load_framework(path: Path | None = None) -> Framework:
    """Read and validate a framework file; raise FrameworkError naming the field at fault."""
    path = path or default_framework_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise FrameworkError(
            f"{path}: cannot read the framework file ({error.strerror})"
        ) from error
    except yaml.YAMLError as error:
        raise FrameworkError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(raw, dict):
        raise FrameworkError(f"{path}: expected a mapping of settings at the top level")
    try:
        return Framework.model_validate(raw)
    except ValidationError as error:
        raise FrameworkError(f"{path}: {_describe(error)}") from error


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        location = _location(detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
