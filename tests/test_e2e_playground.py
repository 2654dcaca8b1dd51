"""End to end through the real Microsoft 365 Agents Playground (a local Teams): the bot runs as
its own process, the playground plays the Bot Connector and the Teams client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from admin.demo_data import load_demo_data, playground_config_yaml
from practice.framework import Framework
from storage import audits
from storage.database import Database
from storage.migrate import upgrade
from storage.models import AuditStatus
from tests.conftest import TODAY, skip_or_fail
from tests.playground_client import PlaygroundChat
from tests.processes import BotProcess, PlaygroundProcess, playground_command

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PQF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class LiveBot:
    bot: BotProcess
    playground: PlaygroundProcess
    database_url: str


async def start_live_bot(
    tmp_path: Path,
    framework: Framework,
    user_email: str,
    prepare: Callable[[Database], Awaitable[None]] | None = None,
) -> LiveBot:
    if playground_command() is None:
        skip_or_fail(
            "PQF_REQUIRE_BROWSER", "Node.js and `npm ci` are needed for the Agents Playground"
        )
    database_url = f"sqlite:///{tmp_path}/pqf.db"
    await asyncio.to_thread(upgrade, database_url)
    database = Database(database_url)
    async with database.session() as session:
        await load_demo_data(session=session, framework=framework, today=TODAY)
    if prepare is not None:
        await prepare(database)
    await database.dispose()
    config = tmp_path / ".m365agentsplayground.yml"
    config.write_text(playground_config_yaml(user_email), encoding="utf-8")
    bot = await asyncio.to_thread(BotProcess(database_url, tmp_path / "bot.log").start)
    try:
        playground = await asyncio.to_thread(
            PlaygroundProcess(bot.url, config, tmp_path / "playground.log").start
        )
    except BaseException:
        bot.stop()
        raise
    return LiveBot(bot, playground, database_url)


@pytest.fixture
async def megan(tmp_path: Path, framework: Framework) -> AsyncIterator[LiveBot]:
    """The bot and the playground, signed in as Megan Bowen, a service manager."""
    live = await start_live_bot(tmp_path, framework, "meganb@example.com")
    yield live
    live.playground.stop()
    live.bot.stop()


@pytest.fixture
async def alex(tmp_path: Path, framework: Framework) -> AsyncIterator[LiveBot]:
    """The bot and the playground, signed in as Alex Wilber, a social worker."""
    live = await start_live_bot(tmp_path, framework, "alexw@example.com")
    yield live
    live.playground.stop()
    live.bot.stop()


async def test_full_standard_3_audit_through_the_playground_api(megan: LiveBot) -> None:
    async with aiohttp.ClientSession() as session:
        chat = await PlaygroundChat(session, megan.playground.url).connect()
        try:
            mark = await chat.install()
            await chat.next_card("Hello Megan", mark)
            request_id, request = await chat.next_card("Your case audit: Standard 3", mark)
            audit_id = request["actions"][0]["data"]["audit_id"]

            mark = await chat.submit(request_id, {"pqf": "audit.open", "audit_id": audit_id})
            card_id, card = await chat.next_card("Step 1: the case", mark)
            mark = await chat.submit(card_id, card["actions"][0]["data"])
            for number in range(1, 9):
                card_id, card = await chat.next_card(f"Criterion {number} of 8", mark)
                mark = await chat.submit(
                    card_id,
                    {
                        **card["actions"][0]["data"],
                        "rating": "meets",
                        "evidence": f"Evidence {number}",
                    },
                )
                done = await chat.replaced(card_id, mark)
                assert "Meets — saved" in str(done)
            card_id, card = await chat.next_card("Feedback call", mark)
            mark = await chat.submit(
                card_id, {**card["actions"][0]["data"], "contacted": "carer",
                          "what_they_said": "Kept well informed", "suitable_for_report": "true"},
            )  # fmt: skip
            card_id, card = await chat.next_card("Involving the worker", mark)
            mark = await chat.submit(card_id, {**card["actions"][0]["data"], "how": "joint_teams"})
            summary_id, summary = await chat.next_card("Check your answers", mark)
            mark = await chat.submit(summary_id, summary["actions"][0]["data"])
            assert "is submitted" in await chat.next_text("is submitted", mark)
            assert "Audit submitted" in str(await chat.replaced(summary_id, mark))

            # The summary card is gone; pressing Submit again on the old card changes nothing.
            mark = await chat.submit(summary_id, summary["actions"][0]["data"])
            assert "already submitted" in await chat.next_text("already submitted", mark)
        finally:
            await chat.close()

    database = Database(megan.database_url)
    async with database.session() as session:
        detail = await audits.audit_detail(session=session, audit_id=audit_id)
    await database.dispose()
    assert detail is not None
    assert detail.audit.status == AuditStatus.SUBMITTED
    assert len(detail.ratings) == 8
    assert detail.involvement is not None
    assert detail.involvement.how == "joint_teams"
    assert detail.feedback is not None
    assert detail.feedback.what_they_said == "Kept well informed"


async def test_playground_web_ui_request_to_criterion_save_and_resume(
    alex: LiveBot, output_dir: Path
) -> None:
    if not shutil.which(CHROMIUM):
        skip_or_fail("PQF_REQUIRE_BROWSER", f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright, expect

    shots = output_dir / "playground"
    shots.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(alex.playground.url)  # opening the playground installs the app

            start = page.get_by_role("button", name="Start the audit").last
            await expect(start).to_be_visible(timeout=30_000)
            await page.screenshot(path=shots / "1-request-card.png")
            await start.click()

            await expect(page.get_by_text("Step 1: the case").last).to_be_visible(timeout=15_000)
            await page.get_by_placeholder("For example 1234567").last.fill("4100107")
            await page.get_by_role("button", name="Use this case").last.click()

            await expect(page.get_by_text("Criterion 1 of 8").last).to_be_visible(timeout=15_000)
            await page.get_by_role("radio", name="Meets").last.check()
            await page.get_by_label("Evidence").last.fill(
                "The assessment records Mrs B's own goals."
            )
            await page.screenshot(path=shots / "2-criterion-card.png")
            await page.get_by_role("button", name="Next").last.click()

            await expect(page.get_by_text("Criterion 2 of 8").last).to_be_visible(timeout=15_000)
            await page.get_by_role("radio", name="Exceeds").last.check()
            await page.get_by_role("button", name="Save and exit").last.click()
            # The card itself says so, in place, and offers to carry on.
            await expect(page.get_by_role("button", name="Carry on").last).to_be_visible(
                timeout=15_000
            )

            message_box = page.locator("[role=textbox][contenteditable=true]").first
            await message_box.click()
            await page.keyboard.type("resume")
            await page.keyboard.press("Enter")
            # Criterion 2 has a rating but no evidence yet, so it is the first unanswered step.
            resumed = page.get_by_text("Criterion 2 of 8").last
            await expect(resumed).to_be_visible(timeout=15_000)
            await expect(page.get_by_role("radio", name="Exceeds").last).to_be_checked()
            await page.screenshot(path=shots / "3-resumed.png")
        finally:
            await browser.close()
    for name in ("1-request-card.png", "2-criterion-card.png", "3-resumed.png"):
        assert (shots / name).stat().st_size > 10_000


async def test_playground_web_ui_a_whole_audit_on_one_living_card(
    alex: LiveBot, output_dir: Path
) -> None:
    """Press Action.Execute buttons in Chromium from the request card to the audit's record."""
    if not shutil.which(CHROMIUM):
        skip_or_fail("PQF_REQUIRE_BROWSER", f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright, expect

    shots = output_dir / "playground-living-card"
    shots.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(alex.playground.url)
            cards = page.locator(".ac-adaptiveCard")
            start = page.get_by_role("button", name="Start the audit").last
            await expect(start).to_be_visible(timeout=30_000)
            before = await cards.count()  # the greeting and the request card
            await start.click()

            await expect(page.get_by_text("Step 1: the case").last).to_be_visible(timeout=15_000)
            await page.get_by_placeholder("For example 1234567").last.fill("4100107")
            await page.get_by_role("button", name="Use this case").last.click()
            for number in range(1, 9):
                await expect(page.get_by_text(f"Criterion {number} of 8").last).to_be_visible(
                    timeout=15_000
                )
                await page.get_by_role("radio", name="Meets").last.check()
                if number == 2:
                    # Rated, no evidence yet: Save and exit, then Carry on, both in place.
                    await page.get_by_role("button", name="Save and exit").last.click()
                    carry_on = page.get_by_role("button", name="Carry on").last
                    await expect(carry_on).to_be_visible(timeout=15_000)
                    await carry_on.click()
                    await expect(carry_on).to_have_count(0, timeout=15_000)
                    await expect(page.get_by_text("Criterion 2 of 8").last).to_be_visible()
                    await expect(page.get_by_role("radio", name="Meets").last).to_be_checked()
                await page.get_by_label("Evidence").last.fill(f"Evidence {number} on file.")
                await page.get_by_role("button", name="Next").last.click()

            await expect(page.get_by_text("Feedback call").last).to_be_visible(timeout=15_000)
            await page.get_by_label("If nobody was contacted: why not").last.fill(
                "No contact details held."
            )
            await page.get_by_role("button", name="Next").last.click()
            await expect(page.get_by_text("Check your answers").last).to_be_visible(timeout=15_000)
            await page.screenshot(path=shots / "1-summary.png")
            await page.get_by_role("button", name="Submit audit").last.click()
            await expect(page.get_by_text("Audit submitted").last).to_be_visible(timeout=15_000)
            await expect(
                page.get_by_role("button", name="Download for the supervision file").last
            ).to_be_visible()
            await page.screenshot(path=shots / "2-record.png")
            # One card for the whole audit: the request card became the audit and its record.
            assert await cards.count() == before
            assert await page.get_by_text("Step 1: the case").count() == 0
        finally:
            await browser.close()

    database = Database(alex.database_url)
    async with database.session() as session:
        found = await audits.audits_of_auditor(
            session=session, auditor_id=await _alex_id(session),
            submitted_since=datetime.now(UTC) - timedelta(hours=1),
        )  # fmt: skip
    await database.dispose()
    submitted = [a for a in found if a.status == AuditStatus.SUBMITTED]
    assert len(submitted) == 1


async def _alex_id(session: Any) -> int:
    from storage import roster

    staff = await roster.staff_by_email(session=session, email="alexw@example.com")
    assert staff is not None
    assert staff.id is not None
    return staff.id


async def _sample_an_audit_by_alex(database: Database, framework: Framework) -> int:
    """Add to this month's moderation sample a self-audit Alex has submitted; return its id."""
    from messages.requests import request_audit
    from storage import cycle as cycle_store
    from storage.models import AuditRequest

    month = datetime.now(UTC).strftime("%Y-%m")  # the bot runs on the real clock
    async with database.session() as session:
        for standard in framework.standards:
            try:
                requested = await request_audit(
                    session=session, framework=framework, auditor_email="alexw@example.com",
                    standard_number=standard.number, month=month, today=TODAY,
                )  # fmt: skip
            except ValueError:
                continue
            break
        audit = await session.get(AuditRequest, requested.audit.id)
        assert audit is not None
        assert audit.id is not None
        chosen = framework.standard(audit.standard)
        assert chosen is not None
        for criterion in chosen.criteria:
            await audits.save_rating(
                session=session, audit_id=audit.id, criterion_id=criterion.id, rating="meets",
                evidence=f"Evidence for {criterion.id}",
            )  # fmt: skip
        await audits.submit(session=session, audit=audit, actor_id=audit.auditor_id)
        await cycle_store.add_to_sample(session=session, month=month, audit_ids=[audit.id])
        return audit.id


@contextlib.asynccontextmanager
async def chat_with(live: LiveBot, command: str) -> AsyncIterator[Page]:
    """Open the playground's chat in Chromium, type a command in it; stop the bot after."""
    from playwright.async_api import async_playwright, expect

    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(live.playground.url)
                await expect(page.locator(".ac-adaptiveCard").first).to_be_visible(timeout=30_000)
                message_box = page.locator("[role=textbox][contenteditable=true]").first
                await message_box.click()
                await page.keyboard.type(command)
                await page.keyboard.press("Enter")
                yield page
            finally:
                await browser.close()
    finally:
        live.playground.stop()
        live.bot.stop()


async def test_playground_web_ui_a_moderation_on_one_card(
    tmp_path: Path, framework: Framework, output_dir: Path
) -> None:
    """Claim on the sample card (it comes back showing the claim), moderate on the moderation card."""
    if not shutil.which(CHROMIUM):
        skip_or_fail("PQF_REQUIRE_BROWSER", f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import expect

    sampled: list[int] = []

    async def prepare(database: Database) -> None:
        sampled.append(await _sample_an_audit_by_alex(database, framework))

    live = await start_live_bot(tmp_path, framework, "pattif@example.com", prepare)
    shots = output_dir / "playground-moderation"
    shots.mkdir(parents=True, exist_ok=True)
    async with chat_with(live, "moderation") as page:
        cards = page.locator(".ac-adaptiveCard")
        claim = page.get_by_role("button", name="Claim").last
        await expect(claim).to_be_visible(timeout=15_000)
        before = await cards.count()
        await claim.click()
        # The sample card comes back in place showing the claim; the moderation is the one
        # new card.
        await expect(page.get_by_text("Claimed by you").last).to_be_visible(timeout=15_000)
        submit = page.get_by_role("button", name="Submit moderation").last
        await expect(submit).to_be_visible(timeout=15_000)
        assert await cards.count() == before + 1
        views = page.locator(".ac-adaptiveCard").last.get_by_role("combobox")
        for index in range(await views.count()):
            await views.nth(index).click()
            await page.get_by_role("option", name="Agree with the auditor").last.click()
        await page.screenshot(path=shots / "1-moderation.png")
        await submit.click()
        await expect(page.get_by_text("Agreed on").last).to_be_visible(timeout=15_000)
        await page.screenshot(path=shots / "2-moderated.png")
        assert await cards.count() == before + 1

    database = Database(live.database_url)
    from storage import moderation as moderation_store

    async with database.session() as session:
        record = await moderation_store.moderation_of(session=session, audit_id=sampled[0])
    await database.dispose()
    assert record is not None
    assert record.submitted_at is not None


async def test_playground_web_ui_the_boards_pack_on_one_card(
    tmp_path: Path, framework: Framework, output_dir: Path
) -> None:
    """A report owner prepares the pack: Save, Preview and Publish answer on the one card."""
    if not shutil.which(CHROMIUM):
        skip_or_fail("PQF_REQUIRE_BROWSER", f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import expect

    # Isaiah Langer, a practice development advanced practitioner: the pack's owners.
    live = await start_live_bot(tmp_path, framework, "isaiahl@example.com")
    shots = output_dir / "playground-board-pack"
    shots.mkdir(parents=True, exist_ok=True)
    async with chat_with(live, "board pack") as page:
        # Isaiah's own audit requests go on arriving: count the pack's cards alone.
        packs = page.locator(".ac-adaptiveCard", has_text="the Board's pack")
        save = page.get_by_role("button", name="Save").last
        await expect(save).to_be_visible(timeout=15_000)
        await save.click()
        await expect(page.get_by_text("Saved at").last).to_be_visible(timeout=15_000)
        await page.get_by_role("button", name="Preview").last.click()
        # Action.OpenUrl: a link to the signed draft page, on the card pressed.
        await expect(page.get_by_text("Open the draft").last).to_be_visible(timeout=15_000)
        await page.screenshot(path=shots / "1-previewed.png")
        await page.get_by_role("button", name="Publish").last.click()
        await expect(page.get_by_text("Published version 1").last).to_be_visible(timeout=15_000)
        await page.screenshot(path=shots / "2-published.png")
        # Every press answered on the card pressed: no new card in the chat.
        assert await packs.count() == 1

    from sqlmodel import select

    from storage.models import BoardPack

    database = Database(live.database_url)
    async with database.session() as session:
        # The month the bot chose by its own clock (the card said which).
        versions = list(await session.exec(select(BoardPack)))
    await database.dispose()
    assert [version.version for version in versions] == [1]
