"""The framework file: the shipped one is complete, and bad ones are refused by field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from practice.framework import (
    RATING_CODES,
    Framework,
    FrameworkError,
    default_framework_path,
    load_framework,
)

SEED_CRITERIA_COUNTS = {1: 5, 2: 7, 3: 8, 4: 5, 8: 7}
# One criterion per "Our standards" statement of the framework document.
BULLET_COUNTS = {5: 7, 6: 6, 7: 8, 9: 7, 10: 6}


def test_ten_standards_with_the_seed_titles(framework: Framework) -> None:
    titles = [s.title for s in framework.standards]
    assert titles == [
        "Working with people",
        "Case recording",
        "Strengths-based assessments",
        "Working with risk",
        "Personalised care and support planning",
        "Reviewing care and support plans",
        "Decision making",
        "Safeguarding people",
        "Equality, diversity and inclusion",
        "Supervision",
    ]


@pytest.mark.parametrize(
    ("number", "count"), sorted({**SEED_CRITERIA_COUNTS, **BULLET_COUNTS}.items())
)
def test_criteria_counts(framework: Framework, number: int, count: int) -> None:
    standard = framework.standard(number)
    assert standard is not None
    assert len(standard.criteria) == count
    assert [c.id for c in standard.criteria] == [f"{number}.{i}" for i in range(1, count + 1)]


def test_seed_wording_is_kept_for_audited_standards(framework: Framework) -> None:
    standard_1 = framework.standard(1)
    assert standard_1 is not None
    assert standard_1.criteria[0].text.startswith(
        "There is evidence from the records that the worker has built a positive relationship"
    )
    standard_2 = framework.standard(2)
    assert standard_2 is not None
    assert standard_2.criteria[3].text == "Case notes are written within 48 hours of contact"


def test_rating_scale_timetable_and_roles(framework: Framework) -> None:
    assert tuple(r.code for r in framework.rating_scale) == RATING_CODES
    assert [r.label for r in framework.rating_scale] == ["Below", "Meets", "Exceeds", "N/A"]
    assert [r.requires_evidence for r in framework.rating_scale] == [True, True, True, False]
    months = [(t.month, t.standard, t.practitioner_kind) for t in framework.timetable]
    assert months == [
        (9, 1, "self"), (10, 2, "peer"), (11, 3, "self"), (1, 4, "peer"), (2, 5, "self"),
        (3, 6, "peer"), (4, 7, "self"), (5, 8, "peer"), (6, 9, "self"), (7, 10, "peer"),
    ]  # fmt: skip
    assert framework.timetable_for_month(12) is None
    assert framework.timetable_for_month(8) is None
    quotas = {r.code: (r.monthly_audits, r.audit_kind) for r in framework.roles}
    assert quotas == {
        "DIR": (1, "sampled"), "SM": (2, "sampled"), "SVM": (2, "sampled"),
        "AP": (2, "sampled"), "PDAP": (6, "sampled"), "SW": (1, "practitioner"),
        "OT": (1, "practitioner"), "ASCP": (1, "practitioner"), "OTA": (1, "practitioner"),
        "MOD": (2, "moderation"),
    }  # fmt: skip
    standard_10 = framework.standard(10)
    assert standard_10 is not None
    assert standard_10.subject == "supervision"


def test_public_json_shape(framework: Framework) -> None:
    data = framework.as_public_dict()
    assert set(data) >= {"standards", "timetable", "roles"}
    first = data["standards"][0]
    assert set(first) >= {"number", "title", "criteria"}
    assert set(first["criteria"][0]) == {"id", "text"}
    assert sum(len(s["criteria"]) for s in data["standards"]) == 66


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "framework.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _shipped() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(default_framework_path().read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["standards"][2]["criteria"][1].pop("text"), "standards[2].criteria[1].text: Field required"),
        (lambda d: d["standards"][0]["criteria"][1].update(id="1.1"), "criteria[1].id '1.1' is used twice"),
        (lambda d: d["standards"][3]["criteria"][0].update(id="7.1"), "must start with '4.'"),
        (lambda d: d["rating_scale"].pop(), "rating_scale: must list exactly below, meets, exceeds, not_applicable"),
        (lambda d: d["timetable"][0].update(standard=11), "timetable[0].standard 11 is not a standard"),
        (lambda d: d["timetable"][1].update(month=9), "a calendar month appears more than once"),
        (lambda d: d["roles"][0].update(monthly_audits=-1), "roles[0].monthly_audits: Input should be greater than or equal to 0"),
        (lambda d: d["timetable"][0].update(practitioner_kind="both"), "timetable[0].practitioner_kind"),
        (lambda d: d["standards"].pop(4), "standards must be numbered 1..9"),
        (lambda d: d.update(surprise=True), "surprise: Extra inputs are not permitted"),
        (lambda d: d["additional_audits"][0].update(roles=["XYZ"]), "unknown role codes ['XYZ']"),
    ],
)  # fmt: skip
def test_invalid_file_names_file_field_and_problem(
    tmp_path: Path, change: object, expected: str
) -> None:
    data = _shipped()
    change(data)  # type: ignore[operator]
    path = _write(tmp_path, data)
    with pytest.raises(FrameworkError) as caught:
        load_framework(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError, match="cannot read"):
        load_framework(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("standards: [\n  - number: 1\n", encoding="utf-8")
    with pytest.raises(FrameworkError, match="not valid YAML"):
        load_framework(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(FrameworkError, match="mapping"):
        load_framework(listing)


def test_a_changed_wording_loads_without_code_changes(tmp_path: Path) -> None:
    data = _shipped()
    data["version"] = "2024-09.1"
    data["standards"][0]["criteria"][0]["text"] = "The worker has built a trusting relationship"
    framework = load_framework(_write(tmp_path, data))
    assert framework.version == "2024-09.1"
    standard = framework.standard(1)
    assert standard is not None
    assert standard.criteria[0].text == "The worker has built a trusting relationship"
