"""Run an outbox sender until killed: the child process of the sender's crash tests.

Usage: python -m tests.delivery_sender_child DATABASE_URL INSTANCE_ID
    [LEASE HEARTBEAT SEND_TIMEOUT POLL_INTERVAL [RATE]]

Without them, the sender runs with the defaults of `SendLimits`; RATE is its share of
Teams' 50 requests a second (the default, 48, is for a sender alone).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from bot.adapter import create_adapter
from bot.settings import load_settings
from delivery.limits import SendLimits
from delivery.sender import OutboxSender
from storage.database import Database
from tests.delivery_helpers import render_with


async def serve(database_url: str, instance_id: str, limits: SendLimits) -> None:
    """Send the outbox until the process is killed."""
    database = Database(database_url)
    sender = OutboxSender(
        database=database,
        adapter=create_adapter(load_settings(env_file=None)),
        app_id="",
        render=render_with(database),
        limits=limits,
        instance_id=instance_id,
    )
    try:
        await sender.run(asyncio.Event())
    finally:
        await database.dispose()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    database_url, instance_id, *times = argv
    limits = SendLimits()
    if times:
        lease, heartbeat, send_timeout, poll, *rate = (float(t) for t in times)
        limits = SendLimits(
            lease=lease, heartbeat=heartbeat, send_timeout=send_timeout, poll_interval=poll,
            global_rate=rate[0] if rate else limits.global_rate,
        )  # fmt: skip
    asyncio.run(serve(database_url, instance_id, limits))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
