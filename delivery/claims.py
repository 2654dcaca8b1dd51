"""The outbox messages one sender holds: each claim's lease, its renewal, and the fence.

A sender writes its id and a lease into the rows it claims, so no other sender takes them,
and while it runs a heartbeat renews every claim it holds (by default an 11 s lease, renewed
every second). A sender that dies (kill -9, a power cut) stops renewing: its claims lapse
within a lease of its last heartbeat, and another sender takes the messages over. A living
sender starts a send only while its claim, as last confirmed by the database, is sure to
outlast the send with a margin; if it cannot renew in time it stops sending those messages
(it fences itself off) rather than risk sending one that another sender has claimed since.
This module keeps the sender's own account of its claims; the rows are `storage.outbox`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from delivery.limits import Monotonic, Sleep, first_of


class Claims:
    """The outbox messages this sender holds, and until when each claim is sure to last.

    A claim is sure until `lease` after the moment its claim or last renewal was *sent* to
    the database (this process's monotonic clock): the row's `claimed_until` is at least
    that, so while it has not passed no other sender can have taken the message.
    """

    def __init__(self, lease: float, monotonic: Monotonic, sleep: Sleep) -> None:
        self._lease = lease
        self._monotonic = monotonic
        self._sleep = sleep
        self._sure_until: dict[int, float] = {}
        self._renewed = asyncio.Event()

    def took(self, message_ids: Sequence[int], *, since: float) -> None:
        """Hold these messages, claimed by a statement sent at `since`."""
        for message_id in message_ids:
            self._sure_until[message_id] = since + self._lease

    def renewed(self, message_ids: set[int], *, asked: Sequence[int], since: float) -> list[int]:
        """Extend the claims renewed by a statement sent at `since`; return those lost."""
        renewed_until = since + self._lease
        lost = []
        for message_id in asked:
            until = self._sure_until.get(message_id)
            # Recorded meanwhile (gone), or claimed afresh after the renewal was sent (a
            # later, surer claim): this renewal says nothing about it.
            if until is None or until > renewed_until:
                continue
            if message_id in message_ids:
                self._sure_until[message_id] = renewed_until
            else:
                del self._sure_until[message_id]
                lost.append(message_id)
        self._renewed.set()
        self._renewed = asyncio.Event()
        return lost

    def drop(self, message_ids: Sequence[int]) -> None:
        """Forget messages recorded, deferred or given back: no longer held."""
        for message_id in message_ids:
            self._sure_until.pop(message_id, None)

    def held(self) -> list[int]:
        """Return the ids of the messages held."""
        return list(self._sure_until)

    def left(self, message_id: int) -> float | None:
        """Return the seconds the claim on a message is sure to last, None if not held."""
        until = self._sure_until.get(message_id)
        return None if until is None else until - self._monotonic()

    async def next_renewal(self, at_most: float) -> None:
        """Wait until the next renewal, or `at_most` seconds."""
        await first_of(self._renewed, self._sleep(max(0.0, at_most)))
