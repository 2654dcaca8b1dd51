"""Take the README's screenshots: the request, criterion and summary cards in the Agents
Playground, and the Board's report for September 2023 from the example history, on screen
and as its first printed A4 page; and the Board's pack for September 2023 (docs/images/), as
its web page and the first page of its PDF (drawn with poppler's pdftoppm).

Run with `make screenshots` (`--reports`: the report and the pack only, no playground). It
starts its own bot and playground on free ports, with a throw-away database, so it does not
touch `make run`'s data.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from datetime import date
from pathlib import Path

from playwright.async_api import Locator, Page, async_playwright, expect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from admin.demo_data import load_demo_data, playground_config_yaml  # noqa: E402
from practice.framework import load_framework  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.processes import BotProcess, PlaygroundProcess  # noqa: E402

DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
PACK_SUMMARY = (
    "September 2023 saw the formal launch of the refreshed Practice Quality Framework and its "
    "monthly audits: 180 audits of Standard 1, Working with people, by staff at every level, "
    "including self audits.\n\nMost records show a positive relationship built on trust, and "
    "the people and carers we heard from said they were kept informed and put at ease."
)
PACK_COMMENTARY = (
    "1=More than nine in ten audits rated each criterion as meeting or exceeding the standard. "
    "Celebrating the strengths of the person and their networks (1.4) was the criterion most "
    "often rated Below; the Practice Development team will share examples of good practice."
)
DEMO_DAY = date(2026, 11, 23)
# A4 in CSS pixels (96 to the inch) inside the report's @page margins (12 mm, 14 mm/16 mm).
A4_TEXT = {"width": round(186 / 25.4 * 96), "height": round(267 / 25.4 * 96)}
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def card(page: Page, text: str) -> Locator:
    return page.locator(".ac-adaptiveCard").filter(has_text=text).last


async def report_screenshot() -> None:
    """Import the example history and photograph the report it gives."""
    from admin.cli import main as cli

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        environment = {"DATABASE_URL": f"sqlite:///{work}/pqf.db"}
        os.environ.update(environment)
        history = ROOT / "examples" / "history"
        for args in (
            ["migrate"],
            ["import-staff", str(history / "staff.csv")],
            ["import-audits", str(history / "audits-2023-09.csv")],
            *HISTORY_ACTIONS,
            ["report", "--month", "2023-09", "--format", "html", "--out", str(work / "r.html")],
        ):  # fmt: skip
            await asyncio.to_thread(cli, args)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=FLAGS
            )
            page = await browser.new_page(viewport={"width": 1100, "height": 1450})
            await page.goto((work / "r.html").as_uri())
            await page.screenshot(path=DOCS / "report-2023-09.png")
            # The first page as printed: the print styles, at A4's text width and height.
            printed = await browser.new_page(viewport=A4_TEXT)
            await printed.emulate_media(media="print")
            await printed.goto((work / "r.html").as_uri())
            await printed.screenshot(path=DOCS / "report-2023-09-printed.png")
            await browser.close()


HISTORY_ACTIONS = [
    ["actions", "add", "--theme", "1", "--logged", "2023-10-10", "--owner", "Service managers",
     "--action", "Operational team improvement plans: productivity, timeliness of allocations "
     "and data quality"],
    ["actions", "add", "--theme", "1", "--logged", "2023-10-10", "--due", "2024-01-31",
     "--owner", "Practice Development Advanced Practitioners", "--action",
     "Promote existing information leaflets and how to contact our teams"],
]  # fmt: skip


async def pack_screenshots() -> None:
    """Publish the example history's September 2023 pack and photograph its page and PDF."""
    from admin.cli import main as cli

    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.environ["DATABASE_URL"] = f"sqlite:///{work}/pqf.db"
        history = ROOT / "examples" / "history"
        month = ["--month", "2023-09"]
        for args in (
            ["migrate"],
            ["import-staff", str(history / "staff.csv")],
            ["import-audits", str(history / "audits-2023-09.csv")],
            *HISTORY_ACTIONS,
            ["board-pack", "publish", *month, "--reason", "first publication",
             "--summary", PACK_SUMMARY, "--commentary", PACK_COMMENTARY],
            ["board-pack", "show", *month, "--out", str(work / "pack.html")],
            ["board-pack", "pdf", *month, "--out", str(work / "pack.pdf")],
        ):  # fmt: skip
            await asyncio.to_thread(cli, args)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=FLAGS
            )
            page = await browser.new_page(viewport={"width": 1100, "height": 1600})
            await page.goto((work / "pack.html").as_uri())
            await page.screenshot(path=IMAGES / "pack-2023-09.png")
            await browser.close()
        # The PDF's first page as the Board prints it (pdftoppm comes with poppler-utils).
        process = await asyncio.create_subprocess_exec(
            "pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
            str(work / "pack.pdf"), str(IMAGES / "pack-2023-09-pdf-page1"),
        )  # fmt: skip
        if await process.wait() != 0:
            raise SystemExit("pdftoppm failed: install poppler-utils")
    print("Wrote", ", ".join(str(p.relative_to(ROOT)) for p in sorted(IMAGES.glob("pack-*.png"))))


async def main() -> None:
    await report_screenshot()
    await pack_screenshots()
    if "--reports" in sys.argv:
        return
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        url = f"sqlite:///{work}/pqf.db"
        upgrade(url)
        database = Database(url)
        async with database.session() as session:
            await load_demo_data(session=session, framework=load_framework(), today=DEMO_DAY)
        await database.dispose()
        config = work / ".m365agentsplayground.yml"
        config.write_text(playground_config_yaml("meganb@example.com"), encoding="utf-8")
        bot = BotProcess(url, work / "bot.log").start()
        playground = PlaygroundProcess(bot.url, config, work / "playground.log").start()
        try:
            await shoot(playground.url)
        finally:
            playground.stop()
            bot.stop()


async def shoot(playground_url: str) -> None:
    DOCS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = await browser.new_page(
            viewport={"width": 1280, "height": 1000}, device_scale_factor=1
        )
        await page.goto(playground_url)
        request = card(page, "Your case audit")
        await expect(request).to_be_visible(timeout=30_000)
        await request.screenshot(path=DOCS / "request-card.png")
        await request.get_by_role("button", name="Start the audit").click()
        await card(page, "Step 1: the case").get_by_role("button", name="Start the audit").click()
        criterion = card(page, "Criterion 1 of 8")
        await expect(criterion).to_be_visible(timeout=15_000)
        await criterion.get_by_role("radio", name="Meets").check()
        await criterion.get_by_label("Evidence").fill(
            "The assessment records what matters to Mrs B in her own words, including her wish "
            "to keep gardening, and is proportionate to a first contact."
        )
        await criterion.screenshot(path=DOCS / "criterion-card.png")
        # Every button is an Action.Execute: each answer comes back in place of the card.
        await criterion.get_by_role("button", name="Next").click()
        for number in range(2, 9):
            step = card(page, f"Criterion {number} of 8")
            await expect(step).to_be_visible(timeout=15_000)
            rating = "Exceeds" if number == 4 else "Meets"
            await step.get_by_role("radio", name=re.compile(f"^{rating}")).check()
            await step.get_by_label("Evidence").fill(
                f"Evidence for criterion 3.{number} from the case record."
            )
            await step.get_by_role("button", name="Next").click()
        feedback = card(page, "Feedback call")
        await expect(feedback).to_be_visible(timeout=15_000)
        await feedback.get_by_role("checkbox", name="Their carer").check()
        await feedback.get_by_label("What they said about their experience").fill(
            "Her daughter said the worker listened and kept them informed."
        )
        await feedback.get_by_text(re.compile("^Their words may be quoted")).click()
        await feedback.get_by_role("button", name="Next").click()
        involvement = card(page, "Involving the worker")
        await expect(involvement).to_be_visible(timeout=15_000)
        await involvement.get_by_role("radio", name="We did the audit together, in Teams").check()
        await involvement.get_by_role("button", name="Next").click()
        summary = card(page, "Check your answers")
        await expect(summary).to_be_visible(timeout=15_000)
        # The summary is taller than a screen: make the window tall enough to show all of it.
        await page.set_viewport_size({"width": 1280, "height": 3400})
        await summary.scroll_into_view_if_needed()
        await summary.screenshot(path=DOCS / "summary-card.png")
        await summary.get_by_role("button", name="Submit audit").click()
        record = card(page, "Audit submitted")
        await expect(record).to_be_visible(timeout=15_000)
        await record.scroll_into_view_if_needed()
        await record.screenshot(path=DOCS / "record-card.png")
        await browser.close()
    print("Wrote", ", ".join(str(p.relative_to(ROOT)) for p in sorted(DOCS.glob("*-card.png"))))


if __name__ == "__main__":
    asyncio.run(main())
