"""The botbuilder adapter, configured from our settings, and what it does when a turn fails."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)

from bot.auth import use_async_key_refresh
from bot.settings import Settings
from storage.bot_state import StateConflictError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _AuthConfiguration:
    # The attribute names botbuilder's ConfigurationBotFrameworkAuthentication reads.
    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str


def create_adapter(settings: Settings) -> CloudAdapter:
    """Return a CloudAdapter; with no app id (development only) it skips authentication."""
    configuration = _AuthConfiguration(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        # botbuilder only allows "no credentials" (authentication off) for MultiTenant;
        # settings refuse to start production without credentials.
        APP_TYPE=settings.app_type if settings.app_id else "MultiTenant",
        APP_TENANTID=settings.app_tenant_id,
    )
    use_async_key_refresh()
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(configuration))
    adapter.on_turn_error = on_turn_error
    return adapter


async def on_turn_error(context: TurnContext, error: Exception) -> None:
    """Tell the person something went wrong; log the error without personal data."""
    if isinstance(error, StateConflictError):
        log.info("two turns of one conversation overlapped; the later one was refused")
        message = "I was still saving your previous answer. Please try that again."
    else:
        log.error(
            "turn failed: %s (activity type %s)",
            type(error).__name__,
            context.activity.type,
            exc_info=(type(error), error, error.__traceback__),
        )
        message = (
            "Sorry, something went wrong on my side. Your saved answers are safe. Please try "
            "again, or type **help**."
        )
    try:
        await context.send_activity(message)
    except Exception:
        log.warning("could not tell the user about the failed turn", exc_info=True)
