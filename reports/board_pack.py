"""The Board's pack for a month: made from the live figures and the Board's words, published.

The pack is the whole month's report (every team) with the quotes the Board chose, its
summary, a commentary per standard and the learning actions logged up to the day it is
published. Publishing freezes it as the month's next numbered version (figures as JSON and
the printable page); the live report can then say what changed since (`changes_since`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from practice.board_pack import FIRST_PUBLICATION, PackOffer, PackWords, names_in, shortlist
from practice.framework import Framework
from practice.month import month_label
from practice.report import Report, ReportScope, build_report
from reports.html import render_report_html
from reports.tabular import report_to_json
from storage.board_packs import Draft, draft_of, pack_versions, publish_pack, published_pack
from storage.models import BoardPack
from storage.reporting import report_facts

TITLE = "Practice quality audits: report to the Practice Quality Board"


async def pack_report(
    *, session: AsyncSession, framework: Framework, zone: ZoneInfo, month: str, today: date
) -> tuple[Report, dict[int, str]]:
    """Return the month's live report of every team, with actions logged up to today."""
    facts = await report_facts(
        session=session, framework=framework, zone=zone, first_month=month, last_month=month
    )
    report = build_report(
        framework, first_month=month, last_month=month, audits=facts.audits,
        feedback=facts.feedback, moderation=facts.moderation, actions=facts.actions,
        scope=ReportScope(), as_of=today, actions_until=today,
    )  # fmt: skip
    return report, facts.names


def suggested_words(report: Report, names: dict[int, str], draft: Draft | None) -> PackWords:
    """Return the draft's words, or (with no draft) the shortlist's quotes and every action."""
    if draft is not None:
        return PackWords(draft.quote_ids, draft.summary, draft.commentary, draft.action_ids)
    return PackWords(tuple(q.audit_id for q in shortlist(report.feedback, names.values())))


def offer_of(
    framework: Framework, report: Report, names: dict[int, str], words: PackWords
) -> PackOffer:
    """Return what the pack's card offers: the shortlist (and quotes chosen before), etc."""
    nameless = {
        q.audit_id for q in report.feedback if not names_in(q.text, [n for n in names.values()])
    }
    quotes = {q.audit_id for q in shortlist(report.feedback, names.values())}
    return PackOffer(
        quotes=frozenset(quotes | (set(words.quote_ids) & nameless)),
        standards=frozenset(t.standard for t in report.tables if not t.additional),
        actions=frozenset(a.id for a in report.actions),
        action_standards=frozenset(s.number for s in framework.standards),
    )


def with_words(report: Report, words: PackWords) -> Report:
    """Return the report showing only the chosen quotes (in order) and actions."""
    order = {audit_id: place for place, audit_id in enumerate(words.quote_ids)}
    feedback = sorted(
        (q for q in report.feedback if q.audit_id in order), key=lambda q: order[q.audit_id]
    )
    actions = report.actions
    if words.action_ids is not None:
        actions = [a for a in report.actions if a.id in set(words.action_ids)]
    return replace(report, feedback=feedback, actions=actions)


def pack_html(
    report: Report,
    names: dict[int, str],
    words: PackWords,
    today: date,
    *,
    edition: str = "",
    draft: str = "",
) -> str:
    """Return the pack's page: the report with the Board's words (`with_words` applied)."""
    return render_report_html(
        report, title=TITLE, generated_on=today, names=names, pack=words, edition=edition,
        draft=draft,
    )  # fmt: skip


def pack_content(
    report: Report, names: dict[int, str], words: PackWords, *, version: int, reason: str,
    today: date,
) -> dict[str, Any]:  # fmt: skip
    """Return what a version stores (`with_words` applied): the figures as JSON, the words."""
    return report_to_json(report, names=names) | {
        "pack": {
            "version": version, "reason": reason, "quotes": list(words.quote_ids),
            "summary": words.summary,
            "commentary": {str(k): v for k, v in sorted(words.commentary.items())},
            "actions": [a.id for a in report.actions], "published_on": today.isoformat(),
        }
    }  # fmt: skip


@dataclass(frozen=True)
class DraftPack:
    """The month's pack as it would be published now from its saved draft (or suggestion)."""

    report: Report  # with only the chosen quotes and actions
    names: dict[int, str]
    words: PackWords
    next_version: int
    saved: bool  # False: nobody has saved a draft, so these are the suggested choices

    @property
    def note(self) -> str:
        """Return what the draft is: which version it would be, made from what."""
        made_from = "the draft its owners saved" if self.saved else "the suggested choices"
        return (
            f"This is how version {self.next_version} would read if it were published now "
            f"from {made_from}. The Board has not seen it, and its figures may still change "
            "until it is published."
        )

    def html(self, today: date) -> str:
        """Return the page the pack would be, marked as a draft that is not published."""
        return pack_html(self.report, self.names, self.words, today, draft=self.note)

    def content(self, today: date) -> dict[str, Any]:
        """Return the JSON publishing it now would store (for the draft's PDF)."""
        reason = FIRST_PUBLICATION if self.next_version == 1 else "not published yet"
        return pack_content(
            self.report, self.names, self.words, version=self.next_version, reason=reason,
            today=today,
        )  # fmt: skip


async def draft_pack(
    *, session: AsyncSession, framework: Framework, zone: ZoneInfo, month: str, today: date
) -> DraftPack:
    """Return the month's pack as publishing it now would make it, from its draft."""
    live, names = await pack_report(
        session=session, framework=framework, zone=zone, month=month, today=today
    )
    draft = await draft_of(session=session, month=month)
    words = suggested_words(live, names, draft)
    version = len(await pack_versions(session=session, month=month)) + 1
    return DraftPack(with_words(live, words), names, words, version, draft is not None)


async def publish_month_pack(
    *,
    session: AsyncSession,
    framework: Framework,
    zone: ZoneInfo,
    month: str,
    words: PackWords,
    reason: str,
    published_by: str,
    now: datetime,
) -> tuple[BoardPack, Report]:
    """Freeze the month's pack with the Board's words as its next version; return it."""
    words.check()
    today = now.astimezone(zone).date()
    live, names = await pack_report(
        session=session, framework=framework, zone=zone, month=month, today=today
    )
    report = with_words(live, words)
    version = len(await pack_versions(session=session, month=month)) + 1
    content = pack_content(report, names, words, version=version, reason=reason, today=today)
    html = pack_html(report, names, words, today, edition=f"Version {version}: {reason}")
    pack = await publish_pack(
        session=session, month=month, reason=reason,
        content=json.dumps(content, ensure_ascii=False), html=html, published_by=published_by,
        published_at=now,
    )  # fmt: skip
    return pack, report


async def month_draft(
    *, session: AsyncSession, framework: Framework, zone: ZoneInfo, month: str, today: date
) -> tuple[Report, dict[int, str], PackWords, BoardPack | None]:
    """Return the month's live report, the words prepared so far, and its latest version."""
    report, names = await pack_report(
        session=session, framework=framework, zone=zone, month=month, today=today
    )
    words = suggested_words(report, names, await draft_of(session=session, month=month))
    latest = await published_pack(session=session, month=month)
    return report, names, words, latest


def _counts(content: dict[str, Any]) -> dict[tuple[int, bool], list[Any]]:
    return {
        (table["standard"], table["additional"]): [
            (row["criterion_id"], row["counts"]) for row in table["criteria"]
        ]
        for table in content.get("outcomes", [])
    }


def changes_since(frozen: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Return what changed in the live figures since a pack was published (empty: nothing)."""
    changes = []
    before, now = frozen["completed"]["total"], live["completed"]["total"]
    if now != before:
        more = now - before
        word = "submitted" if more > 0 else "removed"
        changes.append(f"{abs(more)} audit{'s' if abs(more) != 1 else ''} {word}")
    old, new = _counts(frozen), _counts(live)
    changed = sorted(
        {
            standard
            for key in old.keys() | new.keys()
            for standard in (key[0],)
            if old.get(key) != new.get(key)
        }
    )
    if changed:
        listed = ", ".join(str(s) for s in changed)
        changes.append(f"figures for standard{'s' if len(changed) > 1 else ''} {listed} changed")
    return changes


def since_line(pack: BoardPack, zone: ZoneInfo, live: dict[str, Any]) -> str:
    """Return the live report's line on what changed since the month's latest version."""
    frozen = json.loads(pack.content)
    changes = changes_since(frozen, live)
    published = pack.published_at.astimezone(zone)
    head = f"Since version {pack.version} was published on {published:%-d %B %Y}"
    if not changes:
        return f"{head}: nothing has changed."
    return f"{head}: {'; '.join(changes)}."


def pack_title(month: str, version: int) -> str:
    """Return how a version of the month's pack is named."""
    return f"The Board's pack for {month_label(month)}, version {version}"
