"""Signed, expiring links to reports and audit downloads.

A link carries what it opens and for whom, and an expiry, signed with HMAC-SHA256 under
`PQF_LINK_SECRET`. Opening it checks the signature and the expiry, and then the access
rules again for that person as they are now, so a link cannot be edited to show something
else, goes stale, and stops working at once for someone taken off the roster.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from practice.month import TEN_YEARS, Month, MonthError, check_range

LinkKind = Literal[
    "report", "report_pdf", "pack_preview", "pack_preview_pdf", "audit", "audit_pdf"
]  # fmt: skip
# "report_pdf": the published Board's pack of a month, as a PDF. "pack_preview": the month's
# pack as it would be published from the draft its owners saved (one month: first == last);
# "pack_preview_pdf": the same as a PDF, marked as a draft on every page.
PATHS: dict[str, str] = {
    "report": "/reports", "report_pdf": "/reports.pdf", "pack_preview": "/packs/draft",
    "pack_preview_pdf": "/packs/draft.pdf", "audit": "/audits", "audit_pdf": "/audits.pdf",
}  # fmt: skip
MONTH_KINDS = ("report", "report_pdf", "pack_preview", "pack_preview_pdf")
DRAFT_KINDS = ("pack_preview", "pack_preview_pdf")


class InvalidLinkError(ValueError):
    """The link was altered, is not ours, or has expired."""


@dataclass(frozen=True)
class LinkClaims:
    """What a link opens, for whom, until when."""

    kind: LinkKind
    viewer_id: int
    expires: datetime
    first_month: str | None = None
    last_month: str | None = None
    audit_id: int | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: LinkClaims, secret: str) -> str:
    """Return the token for these claims."""
    payload: dict[str, Any] = {
        "k": claims.kind,
        "v": claims.viewer_id,
        "e": int(claims.expires.timestamp()),
    }
    if claims.first_month:
        payload["f"] = claims.first_month
    if claims.last_month:
        payload["l"] = claims.last_month
    if claims.audit_id is not None:
        payload["a"] = claims.audit_id
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


# The largest id a row can have on either database (SQLite's INTEGER, PostgreSQL's integer).
MAX_ID = 2**31 - 1
# Expiries a link may carry: the signing process writes at most a day ahead of now.
_EARLIEST, _LATEST = 0, 2**33  # 1970 to the year 2242, within every platform's datetime


def _whole(payload: dict[str, Any], key: str, low: int, high: int) -> int:
    value = payload[key]
    if type(value) is not int or not low <= value <= high:
        raise InvalidLinkError("This link cannot be read.")
    return value


def _month(payload: dict[str, Any], key: str) -> str:
    value = payload[key]
    try:
        return str(Month.parse(value))
    except MonthError as error:
        raise InvalidLinkError("This link cannot be read.") from error


def _read(payload: Any, tzinfo: Any) -> LinkClaims:
    """Return the claims in a genuine link's payload, every value checked for range."""
    if not isinstance(payload, dict) or payload.get("k") not in PATHS:
        raise InvalidLinkError("This link cannot be read.")
    kind: LinkKind = payload["k"]
    viewer_id = _whole(payload, "v", 1, MAX_ID)
    expires = datetime.fromtimestamp(_whole(payload, "e", _EARLIEST, _LATEST), tz=tzinfo)
    if kind in MONTH_KINDS:
        first, last = _month(payload, "f"), _month(payload, "l")
        if kind in DRAFT_KINDS and first != last:
            raise InvalidLinkError("This link cannot be read.")
        return LinkClaims(kind, viewer_id, expires, first_month=first, last_month=last)
    return LinkClaims(kind, viewer_id, expires, audit_id=_whole(payload, "a", 1, MAX_ID))


def verify(token: str, secret: str, now: datetime, longest: int = TEN_YEARS) -> LinkClaims:
    """Return the claims of a genuine, unexpired token, or raise InvalidLinkError.

    A report link's months must be a period a report may cover (at most `longest` months).
    """
    if len(token) > 2000 or token.count(".") != 1:
        raise InvalidLinkError("This is not a link of ours.")
    body, signature = token.split(".")
    expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise InvalidLinkError("This link has been altered or is not ours.")
    try:
        payload = json.loads(_unb64(body))
        claims = _read(payload, now.tzinfo)
    except (ValueError, KeyError, TypeError, OverflowError, OSError) as error:
        # A genuine signature over unreadable contents: another release's link, or a bug.
        raise InvalidLinkError("This link cannot be read.") from error
    if claims.expires <= now:
        raise InvalidLinkError("This link has expired.")
    if claims.kind in MONTH_KINDS:
        try:
            first = Month.parse(claims.first_month or "")
            last = Month.parse(claims.last_month or "")
            check_range(first, last, today=now.date(), longest=longest)
        except MonthError as error:
            raise InvalidLinkError("This link cannot be read.") from error
    return claims


def link_url(public_url: str, claims: LinkClaims, secret: str) -> str:
    """Return the full address of a signed link."""
    return f"{public_url.rstrip('/')}{PATHS[claims.kind]}?t={quote(sign(claims, secret))}"


def expiry(now: datetime, minutes: int) -> datetime:
    """Return when a link made now expires."""
    return now + timedelta(minutes=minutes)


class LinkMaker:
    """Makes the signed links the bot hands out."""

    def __init__(
        self,
        *,
        public_url: str,
        secret: str,
        minutes: int,
        clock: Callable[[], datetime],
        longest_report: int = TEN_YEARS,
    ) -> None:
        self.public_url = public_url
        self._longest_report = longest_report
        self.minutes = minutes
        self._secret = secret
        self._clock = clock

    def report(
        self, viewer_id: int, first_month: str, last_month: str, *, pdf: bool = False
    ) -> str:
        """Return a link to the report for these months, as this person may see it.

        With `pdf`, the link is to the month's published Board's pack as a PDF.
        """
        kind: LinkKind = "report_pdf" if pdf else "report"
        claims = LinkClaims(
            kind, viewer_id, expiry(self._clock(), self.minutes), first_month, last_month
        )
        return link_url(self.public_url, claims, self._secret)

    def pack_preview(self, viewer_id: int, month: str, *, pdf: bool = False) -> str:
        """Return a link to the month's pack as it would be published from its saved draft.

        With `pdf`, the link is to that draft as a PDF.
        """
        kind: LinkKind = "pack_preview_pdf" if pdf else "pack_preview"
        claims = LinkClaims(kind, viewer_id, expiry(self._clock(), self.minutes), month, month)
        return link_url(self.public_url, claims, self._secret)

    def audit(self, viewer_id: int, audit_id: int, *, pdf: bool) -> str:
        """Return a link to one audit as a web page or a PDF, for this person."""
        kind: LinkKind = "audit_pdf" if pdf else "audit"
        claims = LinkClaims(kind, viewer_id, expiry(self._clock(), self.minutes), audit_id=audit_id)
        return link_url(self.public_url, claims, self._secret)

    def today(self, zone: ZoneInfo) -> date:
        """Return today's date in the council's time zone."""
        return self._clock().astimezone(zone).date()

    def verify(self, token: str) -> LinkClaims:
        """Return the claims of a genuine, unexpired link (see `verify`)."""
        return verify(token, self._secret, self._clock(), self._longest_report)
