"""Cards for reports: the summary in Teams, and links to download one audit."""

from __future__ import annotations

from cards.common import (
    Element,
    action_set,
    adaptive_card,
    facts,
    heading,
    submit,
    text,
    users_text,
)
from practice.report_summary import BelowCriterion, OwnAudit


def _open_url(title: str, url: str) -> Element:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def report_summary_card(
    *,
    period: str,
    scope: str,
    completed: int,
    completion: str,
    below: list[BelowCriterion],
    own: list[OwnAudit] | None,
    report_url: str,
    minutes: int,
    caution: str | None = None,
    published: str | None = None,
) -> Element:
    """Return the summary of the Board's report (or of one's own audits) with its link.

    `published`: the month's pack is published, and the figures are those it froze.
    """
    body: list[Element] = [
        text(f"Practice quality audits · {period}", subtle=True, weight="Bolder"),
        heading("Audit report", size="Medium"),
        users_text(f"Covering: {scope}.", subtle=True),
        facts([("Audits completed", str(completed)), ("Completion", completion)]),
    ]
    if caution:
        body.append(text(caution, color="Warning"))
    if published:
        body.append(text(published, subtle=True))
    if below:
        body.append(text("Criteria most often rated Below", weight="Bolder", spacing="Medium"))
        for item in below:
            body.append(
                text(f"**{item.criterion_id}** {item.text} — {item.percent} of {item.answered}")
            )
    elif own is None:
        body.append(text("No criterion was rated Below in this period.", spacing="Medium"))
    if own is not None:
        body.append(text("Your audits", weight="Bolder", spacing="Medium"))
        if not own:
            body.append(text("There are no audits by you or of your work in this period."))
        for audit in own:
            items = [
                text(audit.title, weight="Bolder"),
                users_text(f"{audit.role} · {audit.outcome}", spacing="None", subtle=True),
            ]
            if audit.submitted:
                download = {"pqf": "audit.download", "audit_id": audit.audit_id}
                items.append(action_set(submit("Download", download)))
            body.append({"type": "Container", "separator": True, "items": items})
    body.append(
        text(f"The link opens the full report and works for {minutes} minutes.", subtle=True)
    )
    return adaptive_card(body, [_open_url("Open full report", report_url)])


def download_card(*, title: str, html_url: str, pdf_url: str, minutes: int) -> Element:
    """Return the links to download one audit for the supervision file."""
    # One button a row: side by side, the two titles do not fit the width of a phone.
    return adaptive_card(
        [
            heading("Download the audit", size="Medium"),
            text(title),
            text(
                f"For the supervision file. The links work for {minutes} minutes and only for you.",
                subtle=True,
            ),
            action_set(_open_url("Download as PDF", pdf_url)),
        ],
        [_open_url("Open as a web page", html_url)],
    )
