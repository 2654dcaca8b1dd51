"""Every card fits a phone: rendered by Microsoft's Adaptive Cards renderer in Chromium on a
320 px screen (a card about 306 px wide) with Teams-like spacing, type and buttons, nothing is
cut off or reaches past the card's edge, no word is split across lines, and every button shows
whole.

The screenshots (`test-output/cards-320/`) are for people to look at: a check can only find
what it was written to find.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from practice.framework import Framework
from tests.card_gallery import phone_gallery
from tests.conftest import ROOT, skip_or_fail

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PQF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RENDERER = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
STYLES = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.css"
CHECKER = ROOT / "tests" / "js" / "phone_cards.js"
# The narrowest phone screen in use, and what Teams leaves of it to a card (about 306 px).
PHONE_WIDTH = 320
GUTTER = 7


def _need_browser() -> None:
    if not shutil.which(CHROMIUM):
        skip_or_fail("PQF_REQUIRE_BROWSER", f"Chromium is not installed at {CHROMIUM}")
    if not RENDERER.exists():
        skip_or_fail("PQF_REQUIRE_NODE", "`npm ci` is needed for the adaptivecards renderer")


def check_at_phone_width(
    cards: dict[str, dict[str, Any]], *, shots: Path | None = None
) -> dict[str, list[str]]:
    """Render the cards on a 320 px screen, all in one page, and return each card's problems."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 400, "height": 800})
            page.set_content("<!doctype html><html><head></head><body></body></html>")
            page.add_style_tag(path=str(STYLES))
            page.add_script_tag(path=str(RENDERER))
            page.add_script_tag(path=str(CHECKER))
            if not page.evaluate("() => window.pqfFontInstalled()"):
                pytest.fail(
                    "None of Segoe UI, Helvetica Neue, Arial or Liberation Sans is installed, so "
                    "text widths would not be Teams-like: install fonts-liberation."
                )
            entries = [{"name": name, "card": card} for name, card in cards.items()]
            problems: dict[str, list[str]] = page.evaluate(
                "([entries, width, gutter]) => window.pqfPhoneCheck(entries, width, gutter)",
                [entries, PHONE_WIDTH, GUTTER],
            )
            if shots is not None:
                shots.mkdir(parents=True, exist_ok=True)
                for name in cards:
                    box = page.locator(f'.pqf-phone[data-card="{name}"]')
                    box.screenshot(path=shots / f"{name}.png")
        finally:
            browser.close()
    return problems


def test_every_card_fits_a_320_px_phone(framework: Framework, output_dir: Path) -> None:
    _need_browser()
    cards = phone_gallery(framework)
    shots = output_dir / "cards-320"
    problems = check_at_phone_width(cards, shots=shots)
    (shots / "problems.json").write_text(json.dumps(problems, indent=1, ensure_ascii=False))
    assert sorted(problems) == sorted(cards)
    found = {name: issues for name, issues in problems.items() if issues}
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)


def test_the_check_finds_what_a_phone_would_cut() -> None:
    """Each kind of defect, made on purpose, is found (so a pass means something)."""
    _need_browser()

    def card(*body: dict[str, Any], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        made: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.5", "body": list(body)}
        if actions:
            made["actions"] = actions
        return made

    def button(title: str) -> dict[str, Any]:
        return {"type": "Action.Submit", "title": title, "data": {"pqf": "command"}}

    squeezed_title = card(
        {
            "type": "ColumnSet",
            "columns": [
                {"type": "Column", "width": "stretch",
                 "items": [{"type": "TextBlock", "text": "Involving the worker", "weight": "Bolder", "wrap": True}]},
                {"type": "Column", "width": "auto",
                 "items": [{"type": "ActionSet", "actions": [button("Change the involvement of the worker")]}]},
            ],
        }
    )  # fmt: skip
    cases = {
        "fits": card({"type": "TextBlock", "text": "Short words only.", "wrap": True},
                     actions=[button("Next"), button("Back")]),
        "squeezed_title": squeezed_title,
        "unwrapped_choice": card({
            "type": "Input.ChoiceSet", "id": "x", "label": "Rating", "style": "expanded",
            "choices": [{"title": "N/A — The criterion does not apply to this case at all", "value": "n"}],
        }),
        "too_many_buttons": card(
            {"type": "TextBlock", "text": "x"},
            actions=[button("Submit moderation"), button("Save and finish later"), button("Cancel it")],
        ),
        "unwrapped_text": card({"type": "TextBlock", "text": "A sentence far too long to fit on one line of a phone's card"}),
    }  # fmt: skip
    found = check_at_phone_width(cases)
    assert found["fits"] == []
    assert any(p.startswith("broken word") for p in found["squeezed_title"]), found
    assert any("Change the involvement" in p for p in found["squeezed_title"]), found
    assert any(p.startswith("clipped") for p in found["unwrapped_choice"]), found
    assert any(p.startswith("button") for p in found["too_many_buttons"]), found
    assert any(p.startswith("clipped") for p in found["unwrapped_text"]), found
