"""An audit half done survives the bot process being killed and started again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from admin.demo_data import cases_csv, staff_csv
from messages.requests import request_audit
from practice.framework import Framework
from storage import audits
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import AuditRequest, AuditStatus
from tests.conftest import TODAY
from tests.fake_connector import FakeConnector
from tests.processes import BotProcess

MEGAN = {
    "id": "29:megan",
    "aadObjectId": "00000000-0000-0000-0000-0000000000021",
    "name": "Megan Bowen",
}


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


class Chat:
    """Posts activities to the bot's HTTP endpoint as Teams would, for one user."""

    def __init__(self, bot: BotProcess, connector: FakeConnector) -> None:
        self.bot = bot
        self.connector = connector
        self.sequence = 0

    async def post(self, **fields: Any) -> None:
        self.sequence += 1
        activity = {
            "type": "message",
            "id": f"user-{self.sequence}",
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": MEGAN,
            "conversation": {"id": "a:megan", "conversationType": "personal"},
            "recipient": {"id": "28:bot"},
            **fields,
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.bot.url}/api/messages", json=activity) as response,
        ):
            assert response.status == 201, await response.text()

    def last_card(self) -> tuple[str, dict[str, Any]]:
        """Return the id and content of the newest card posted."""
        for call in reversed(self.connector.calls):
            if call.method == "POST" and call.body.get("attachments"):
                index = self.connector.calls.index(call)
                card_id = f"activity-{sum(1 for c in self.connector.calls[: index + 1] if c.method == 'POST')}"
                return card_id, call.body["attachments"][0]["content"]
        raise AssertionError("no card posted")

    async def press(self, title: str, **inputs: Any) -> None:
        card_id, card = self.last_card()
        data = next(a["data"] for a in card["actions"] if a["title"] == title)
        await self.post(value={**data, **inputs}, replyToId=card_id)


async def test_half_done_audit_resumes_after_a_crash(
    tmp_path: Path, framework: Framework, connector: FakeConnector, sqlite_url: str
) -> None:
    database = Database(sqlite_url)
    async with database.session() as session:
        await import_staff(session=session, framework=framework, text=staff_csv())
        await import_cases(session=session, text=cases_csv(TODAY))
        requested = await request_audit(
            session=session, framework=framework, auditor_email="meganb@example.com",
            standard_number=3, month="2026-11", today=TODAY,
        )  # fmt: skip
    audit_id = requested.audit.id

    bot = BotProcess(sqlite_url, tmp_path / "bot.log").start()
    chat = Chat(bot, connector)
    try:
        await chat.post(value={"pqf": "audit.open", "audit_id": audit_id})
        await chat.press("Start the audit")
        for number in (1, 2, 3):
            await chat.press("Next", rating="meets", evidence=f"Evidence {number}")
        _, live_card = chat.last_card()
        assert "Criterion 4 of 8" in json.dumps(live_card)

        bot.kill()
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(f"{bot.url}/healthz")
        bot.start()

        # The card that was live before the crash still works, at the same step.
        await chat.press("Next", rating="exceeds", evidence="Evidence 4")
        _, card = chat.last_card()
        assert "Criterion 5 of 8" in json.dumps(card)
        await chat.press("Save and exit", rating="", evidence="")
        bot.kill()
        bot.start()
        await chat.post(text="resume")
        _, card = chat.last_card()
        assert "Criterion 5 of 8" in json.dumps(card)  # the first unanswered step
    finally:
        bot.stop()

    async with database.session() as session:
        detail = await audits.audit_detail(session=session, audit_id=audit_id or 0)
        assert detail is not None
        assert detail.audit.status == AuditStatus.IN_PROGRESS
        assert [detail.ratings[f"3.{i}"].rating for i in range(1, 5)] == ["meets"] * 3 + ["exceeds"]
        assert len((await session.exec(select(AuditRequest))).all()) == 1
    await database.dispose()
    await asyncio.sleep(0)
