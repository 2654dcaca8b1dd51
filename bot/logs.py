"""Logging: readable lines in development, one JSON object per line in production.

Log lines carry ids (staff, audit, message), never names, email addresses, evidence or
feedback. As a second line of defence, anything shaped like an email address is masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

# Libraries that log SQL statements with their parameters (evidence, feedback, names) or
# whole HTTP bodies at DEBUG: held at WARNING whatever PQF_LOG_LEVEL says.
CHATTY = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg", "urllib3",
          "msrest", "botbuilder", "botframework", "asyncio", "alembic")  # fmt: skip


class MaskEmails(logging.Filter):
    """Mask email addresses in a record's message (a safety net, not the main rule)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if EMAIL.search(message):
            record.msg = EMAIL.sub("<email>", message)
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class StandardErrorHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever `sys.stderr` is when a record is written, not when configured.

    (A handler bound to the stream of the moment writes to a closed file once a test's, or
    an embedding program's, captured standard error is gone.)
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(*, level: str, json_lines: bool) -> None:
    """Send logs to standard error, as JSON lines or as readable text."""
    handler = StandardErrorHandler()
    handler.addFilter(MaskEmails())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # (Alembic also narrates every migration step at INFO; the command prints a summary.)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


class RequestLogger(AbstractAccessLogger):
    """Log each HTTP request as method, path, status and time - never its query string.

    The query string of a report or download link is its signed token, which opens the
    report for some minutes: aiohttp's default access log line would write it out.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Write one line for a request that has been answered."""
        self.logger.info(
            "%s %s %s %.0f ms", request.method, request.path, response.status, time * 1000
        )
