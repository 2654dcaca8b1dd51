"""The documentation stays true: every setting documented, every local link leading somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices

from bot.settings import Settings
from tests.conftest import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# The README is the front door; the manuals live in docs/.
README_MAX_CHARACTERS = 16_000


def setting_names() -> set[str]:
    """Return the environment variable each setting is read from (its first name)."""
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        assert isinstance(alias, str), f"a setting without an environment name: {field}"
        names.add(alias)
    return names


def documented_settings() -> list[str]:
    """Return the variables in the first column of docs/configuration.md's settings table."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text.split("## The bot's settings", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE)


def test_configuration_documents_every_setting_once() -> None:
    documented = documented_settings()
    assert len(documented) == len(set(documented)), "a setting is documented twice"
    assert set(documented) == setting_names(), (
        f"undocumented: {sorted(setting_names() - set(documented))}; "
        f"documented but not read: {sorted(set(documented) - setting_names())}"
    )


def test_production_settings_example_names_only_real_settings() -> None:
    example = (ROOT / "deploy" / "pqf-bot.env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert named, "no settings found in the example"
    assert named <= setting_names(), f"not settings: {sorted(named - setting_names())}"


def test_readme_is_the_front_door() -> None:
    size = len((ROOT / "README.md").read_text(encoding="utf-8"))
    assert size < README_MAX_CHARACTERS, f"README.md is {size} characters"


def _anchors(path: Path) -> set[str]:
    """Return the anchors GitHub makes for a Markdown file's headings."""
    anchors = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        heading = line.lstrip("#").strip().lower()
        heading = re.sub(r"[^\w\- ]", "", heading)
        anchors.add(heading.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("document", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_lead_somewhere(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # a web address
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        missing_anchor = anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        if not linked.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"links that lead nowhere: {broken}"


# A module named in a document as `room/module.py`: the rooms are the project's top folders.
_MODULE_PATH = re.compile(r"`((?:[a-z_]+/)+[a-z_0-9]+\.py)`")


@pytest.mark.parametrize("document", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_named_in_the_documents_exist(document: Path) -> None:
    named = set(_MODULE_PATH.findall(document.read_text(encoding="utf-8")))
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"{document.name} names modules that do not exist: {missing}"
