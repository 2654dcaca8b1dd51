"""Run an outbox sender until killed: the child process of the sender's crash test.

Usage: python -m tests.outbox_sender_child DATABASE_URL INSTANCE_ID LEASE SEND_TIMEOUT
"""

from __future__ import annotations

import asyncio
import logging
import sys

from bot.adapter import create_adapter
from bot.outbox_sender import OutboxSender, SendLimits
from bot.settings import load_settings
from storage.database import Database


async def serve(database_url: str, instance_id: str, lease: float, send_timeout: float) -> None:
    """Send the outbox until the process is killed."""
    database = Database(database_url)
    sender = OutboxSender(
        database=database,
        adapter=create_adapter(load_settings(env_file=None)),
        app_id="",
        limits=SendLimits(lease=lease, send_timeout=send_timeout, poll_interval=0.05),
        instance_id=instance_id,
    )
    try:
        await sender.run(asyncio.Event())
    finally:
        await database.dispose()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    database_url, instance_id, lease, send_timeout = argv
    asyncio.run(serve(database_url, instance_id, float(lease), float(send_timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
