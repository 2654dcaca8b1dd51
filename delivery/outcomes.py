"""What became of a send to Teams: the outcome of a delivery, Retry-After, a failure described.

Shared by the outbox sender and the answers of a turn, so that both read Teams' answers the
same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from botframework.connector.models import ErrorResponseException

# Teams answers 403 when the person blocked or removed the app, 404 when the chat is gone.
UNDELIVERABLE_STATUSES = frozenset({403, 404})


class Delivery(StrEnum):
    """The outcome of one attempt to deliver an outbox message."""

    SENT = "sent"
    NOT_INSTALLED = "not_installed"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"  # not sent this time; pending, to be tried again


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one outbox message."""

    message_id: int
    outcome: Delivery
    detail: str = ""
    retry_at: datetime | None = None  # when a failed message will be tried again


class UnrenderableMessageError(Exception):
    """An outbox message whose activity cannot be made (its audit is gone): it cannot be sent."""


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After value (seconds or an HTTP date) asks to wait."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_after_of(error: BaseException, now: datetime) -> float | None:
    """Return the Retry-After of a Connector error answer, in seconds, if it has one."""
    if not isinstance(error, ErrorResponseException):
        return None
    # msrest keeps the `requests.Response` as `error.response`; its headers ignore case.
    headers = getattr(getattr(error, "response", None), "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    return parse_retry_after(value if isinstance(value, str) else None, now)


def status_of(error: BaseException) -> int:
    """Return the HTTP status of a Connector error answer, 0 if it is not one."""
    if not isinstance(error, ErrorResponseException):
        return 0
    status = getattr(getattr(error, "response", None), "status_code", 0)
    return status if isinstance(status, int) else 0


def describe(failure: BaseException) -> str:
    """Return a log-safe description of a failed request: its status, never its text."""
    if isinstance(failure, ErrorResponseException):
        return f"HTTP {status_of(failure)}"
    if isinstance(failure, TimeoutError):
        return "timed out"
    return type(failure).__name__
