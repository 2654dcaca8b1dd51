"""The Board's pack in draft: a signed link, for the report's owners only, to the whole pack.

On the September 2023 history: the link opens the pack as publishing it now would make it
(the same page as a published version, marked as a draft), its PDF link the same drawn as a
published version's PDF with every page marked as a draft; both are refused to anyone else,
when altered or expired, or for something else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.app import create_app
from bot.links import LinkMaker
from bot.settings import load_settings
from practice.board_pack import PackWords
from practice.framework import Framework
from reports.board_pack import draft_pack, publish_month_pack
from reports.pack_pdf import render_pack_pdf
from storage import board_packs
from storage.database import Database
from storage.models import AccessLogEntry, OutboxMessage, Staff
from tests.conftest import NOW
from tests.fake_connector import FakeConnector
from tests.harness import action, actions, all_text, inputs
from tests.test_board_pack import pdf_pages
from tests.test_board_pack_chat import filled, packs, seed
from tests.test_http_app import activity, client_for, dev_settings, seeded
from tests.test_monthly_cycle import LONDON
from tests.test_report_access import SECRET, path

# Quotes of September 2023 (audit ids): two are chosen in the draft, one left out.
CHOSEN = {48: "Over more than a year you have replied", 174: "The family found the worker"}
LEFT_OUT = "She always explained what she was doing"
BANNER = "Draft — not published"


def links(minutes: int = 15, clock_offset: timedelta = timedelta(0)) -> LinkMaker:
    return LinkMaker(
        public_url="https://pqf.example", secret=SECRET, minutes=minutes,
        clock=lambda: NOW + clock_offset,
    )  # fmt: skip


@pytest.fixture
async def world(
    sqlite_url: str, framework: Framework
) -> AsyncIterator[tuple[TestClient, Database, dict[str, int]]]:  # type: ignore[type-arg]
    database = Database(sqlite_url)
    await seed(database, framework)
    async with database.session() as session:
        await board_packs.save_draft(
            session=session, month="2023-09", staff_id=None,
            draft=board_packs.Draft(
                tuple(CHOSEN), "A good month for relationships.",
                {1: "Relationships were strong."}, (),
            ),
        )  # fmt: skip
        ids = {s.email.split("@")[0]: s.id for s in await session.exec(select(Staff))}
    settings = load_settings(
        env_file=None, DATABASE_URL=sqlite_url, PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false",
        PQF_LINK_SECRET=SECRET, PQF_PUBLIC_URL="https://pqf.example",
    )  # fmt: skip
    client = TestClient(TestServer(create_app(settings, framework=framework, clock=lambda: NOW)))
    await client.start_server()
    yield client, database, ids  # type: ignore[misc]
    await client.close()
    await database.dispose()


async def test_an_owner_opens_the_pack_as_the_draft_would_publish_it(
    world: tuple[TestClient, Database, dict[str, int]],  # type: ignore[type-arg]
    framework: Framework,
) -> None:
    client, database, ids = world
    owner = ids["staff027"]  # a Practice Development Advanced Practitioner
    response = await client.get(path(links().pack_preview(owner, "2023-09")))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = await response.text()
    assert BANNER in page
    assert "This is how version 1 would read if it were published now" in page
    assert "from the draft its owners saved" in page
    assert "Not yet: this is a draft" in page
    assert "A good month for relationships." in page
    assert "Relationships were strong." in page
    assert page.count('<figure class="quote">') == len(CHOSEN)
    for words in CHOSEN.values():
        assert words in page
    assert LEFT_OUT not in page
    assert "Learning actions" in page
    # Seen, logged, and nothing published.
    async with database.session() as session:
        logged = list(
            await session.exec(
                select(AccessLogEntry).where(AccessLogEntry.action == "pack_preview")
            )
        )
    assert [(e.staff_id, e.target, e.via) for e in logged] == [(owner, "2023-09 draft", "link")]
    assert await packs(database) == []

    # The same page the published version is, but for the banner.
    async with database.session() as session:
        await publish_month_pack(
            session=session, framework=framework, zone=LONDON, month="2023-09",
            words=PackWords(tuple(CHOSEN), "A good month for relationships.",
                            {1: "Relationships were strong."}, ()),
            reason="first publication", published_by="staff027@somerset.example", now=NOW,
        )  # fmt: skip
    [published] = await packs(database)
    assert BANNER not in published.html
    again = await (await client.get(path(links().pack_preview(owner, "2023-09")))).text()
    assert "This is how version 2 would read" in again
    body = again.split("</header>", 1)[1]
    assert body == published.html.split("</header>", 1)[1]


async def test_an_owner_downloads_the_draft_as_a_pdf_marked_on_every_page(
    world: tuple[TestClient, Database, dict[str, int]],  # type: ignore[type-arg]
    framework: Framework,
) -> None:
    client, database, ids = world
    owner = ids["staff027"]
    response = await client.get(path(links().pack_preview(owner, "2023-09", pdf=True)))
    assert response.status == 200
    assert response.content_type == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="board-pack-2023-09-draft.pdf"'
    )
    pages = pdf_pages(await response.read())
    assert len(pages) > 1
    for number, page in enumerate(pages, 1):
        # At the head and the foot of every page: a page printed alone still says so.
        assert BANNER in page, number
        assert "September 2023 · draft — not published (version 1)" in page, number
        assert f"Page {number} of {len(pages)}" in page
    whole = " ".join(pages)
    assert "This is how version 1 would read if it were published now" in whole
    assert "Not yet: this is a draft of version 1" in whole
    assert "A good month for relationships." in whole
    assert "Relationships were strong." in whole
    for words in CHOSEN.values():
        assert words in whole
    assert LEFT_OUT not in whole
    async with database.session() as session:
        logged = list(
            await session.exec(
                select(AccessLogEntry).where(AccessLogEntry.action == "pack_preview_pdf")
            )
        )
        # Drawn from what publishing now would store: the same JSON but for the reason.
        draft = await draft_pack(
            session=session, framework=framework, zone=LONDON, month="2023-09",
            today=NOW.date(),
        )  # fmt: skip
        published, _ = await publish_month_pack(
            session=session, framework=framework, zone=LONDON, month="2023-09",
            words=draft.words, reason="first publication",
            published_by="staff027@somerset.example", now=NOW,
        )  # fmt: skip
    assert [(e.staff_id, e.target, e.via) for e in logged] == [(owner, "2023-09 draft", "link")]
    assert draft.content(NOW.date()) == json.loads(published.content)
    assert BANNER not in " ".join(pdf_pages(render_pack_pdf(json.loads(published.content))))


async def test_without_a_draft_the_link_shows_the_suggested_choices(
    world: tuple[TestClient, Database, dict[str, int]],  # type: ignore[type-arg]
) -> None:
    client, _, ids = world
    page = await (await client.get(path(links().pack_preview(ids["staff028"], "2023-10")))).text()
    assert BANNER in page
    assert "from the suggested choices" in page


async def test_the_draft_link_is_refused_to_others_and_when_altered_or_expired(
    world: tuple[TestClient, Database, dict[str, int]],  # type: ignore[type-arg]
) -> None:
    client, database, ids = world
    owner = ids["staff027"]
    good = path(links().pack_preview(owner, "2023-09"))
    good_pdf = path(links().pack_preview(owner, "2023-09", pdf=True))
    for bad, reason in (
        *((link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:], "altered")
          for link in (good, good_pdf)),
        *((path(links(clock_offset=timedelta(minutes=-30)).pack_preview(owner, "2023-09", pdf=pdf)),
           "expired") for pdf in (False, True)),
        ("/packs/draft?t=nonsense", "not a link of ours"),
        ("/packs/draft.pdf?t=nonsense", "not a link of ours"),
        # A report link is not a draft link, nor the other way round; nor are their PDFs.
        (path(links().report(owner, "2023-09", "2023-09")).replace("/reports", "/packs/draft"),
         "for something else"),
        (good.replace("/packs/draft", "/reports"), "for something else"),
        (path(links().report(owner, "2023-09", "2023-09", pdf=True)).replace(
            "/reports.pdf", "/packs/draft.pdf"), "for something else"),
        (good_pdf.replace("/packs/draft.pdf", "/reports.pdf"), "for something else"),
    ):  # fmt: skip
        response = await client.get(bad)
        assert response.status == 403, bad
        assert reason in await response.text()
    # The Director sees the whole report, but the draft is its owners' alone; so is a
    # service manager's and a social worker's, as a page or a PDF.
    for email in ("staff001", "staff007", "staff080"):
        for pdf in (False, True):
            response = await client.get(path(links().pack_preview(ids[email], "2023-09", pdf=pdf)))
            assert response.status == 403, email
            assert "Only the report's owners" in await response.text()
    # An owner who moves to another role loses the links at once.
    async with database.session() as session:
        row = await session.get(Staff, owner)
        assert row is not None
        row.role_code = "SM"
        session.add(row)
    assert (await client.get(good)).status == 403
    assert (await client.get(good_pdf)).status == 403
    async with database.session() as session:
        logged = list(
            await session.exec(
                select(AccessLogEntry).where(
                    col(AccessLogEntry.action).in_(["pack_preview", "pack_preview_pdf"])
                )
            )
        )
    assert logged == []


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


def invoke(message: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Return the activity Teams posts for a press of an Action.Execute button."""
    return message | {
        "type": "invoke", "name": "adaptiveCard/action", "replyToId": "pack-card",
        "value": {
            "action": {"type": "Action.Execute", "verb": data["pqf"], "data": data},
            "trigger": "manual",
        },
    }  # fmt: skip


async def test_preview_and_publish_in_teams_are_answered_in_the_http_response(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    client = await client_for(dev_settings(sqlite_url), framework)
    isaiah = "00000000-0000-0000-0000-0000000000023"  # the demo's PDAP
    message = activity(connector.url, "", aad=isaiah)
    try:
        typed = activity(connector.url, "board pack 2026-10", aad=isaiah)
        assert (await client.post("/api/messages", json=typed)).status == 201
        card = connector.cards()[-1]
        sent = len(connector.calls)
        data = {**action(card, "Preview"), **filled(card, summary="No audits yet.")}
        response = await client.post("/api/messages", json=invoke(message, data))
        assert response.status == 200
        answer = await response.json()
        assert answer["type"] == "application/vnd.microsoft.card.adaptive"
        preview = answer["value"]
        assert "Pack for October 2026" in all_text(preview)
        assert inputs(preview)["summary"]["value"] == "No audits yet."
        [url] = [a["url"] for a in actions(preview) if a.get("title") == "Open the draft"]
        assert url.startswith("http://localhost:3978/packs/draft?t=")
        page = await client.get(path(url))
        assert page.status == 200
        text = await page.text()
        assert BANNER in text
        assert "No audits yet." in text
        [pdf_url] = [a["url"] for a in actions(preview) if a.get("title") == "Draft as a PDF"]
        assert pdf_url.startswith("http://localhost:3978/packs/draft.pdf?t=")
        pdf = await client.get(path(pdf_url))
        assert pdf.status == 200
        assert all(BANNER in page for page in pdf_pages(await pdf.read()))

        data = {**action(preview, "Publish"), **filled(preview)}
        response = await client.post("/api/messages", json=invoke(message, data))
        assert response.status == 200
        published = (await response.json())["value"]
        assert "Published version 1: October 2026" in all_text(published)
        # Someone else (a social worker) pressing it: a card saying who prepares the pack.
        refused = await client.post("/api/messages", json=invoke(activity(connector.url), data))
        assert "prepared by the report's owners" in all_text((await refused.json())["value"])
        assert len(connector.calls) == sent  # nothing sent or updated through Teams
    finally:
        await client.close()
    database = Database(sqlite_url)
    try:
        assert [p.version for p in await packs(database)] == [1]
        async with database.session() as session:
            queued = list(
                await session.exec(
                    select(OutboxMessage).where(OutboxMessage.purpose == "board_pack")
                )
            )
        assert queued  # the Board's notice goes through the outbox, as before
    finally:
        await database.dispose()
