"""A month's moderation sample as one moderator sees it now: who holds each audit, what is left.

After a moderation is submitted on its own card, the sample card it was claimed from (another
message, further up the same chat) is brought up to date with one Connector call (a PUT), the
only call a moderation makes. Its `refresh` does not make that call needless: Teams asks for a
refresh when the card comes into view, and the moderator is looking at the chat as they submit,
so without the PUT the sample card would offer Moderate for the finished audit until they came
back to the chat; and clients that do not honour `refresh` (the Agents Playground among them)
never ask. The PUT is kept, and it is only a courtesy: the moderation is committed before it,
the invoke is answered with the moderated card whatever it does, and a failure is logged with
the error's kind only (a Connector error can echo the card, names and evidence included).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext

from cards.common import Element, teams_id
from cards.cycle_cards import SampleEntry, moderation_sample_card
from dialogs.turn import card_update
from practice.calendar import moderation_until
from practice.framework import Framework
from practice.month import Month
from scheduler.jobs import Cycle, open_sample_months, sample_entries
from storage import moderation as moderation_store
from storage.database import Database
from storage.models import Staff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Samples:
    """The moderation samples of the months still open, as cards for one moderator."""

    database: Database
    framework: Framework
    zone: ZoneInfo

    async def open_cards(self, moderator: Staff, today: date) -> list[Element]:
        """Return a sample card for each month whose moderation is still open."""
        cycle = Cycle(database=self.database, framework=self.framework, zone=self.zone)
        cards = []
        async with self.database.session() as session:
            for month in await open_sample_months(session, today):
                entries = await sample_entries(session, cycle, month, moderator)
                cards.append(self._card(month, entries, moderator))
        return cards

    async def card_of_month(self, moderator: Staff, month: str) -> Element:
        """Return one month's sample card as it stands now."""
        cycle = Cycle(database=self.database, framework=self.framework, zone=self.zone)
        async with self.database.session() as session:
            entries = await sample_entries(session, cycle, month, moderator)
        return self._card(month, entries, moderator)

    async def card_holding(self, moderator: Staff, audit_id: int) -> Element | None:
        """Return the sample card that holds this audit, as it stands now; None if none does."""
        async with self.database.session() as session:
            sample = await moderation_store.sample_of(session=session, audit_id=audit_id)
        if sample is None:
            return None
        return await self.card_of_month(moderator, sample.month)

    async def moderated(self, audit_id: int) -> bool:
        """Return whether the moderation of this audit is submitted."""
        async with self.database.session() as session:
            moderation = await moderation_store.moderation_of(session=session, audit_id=audit_id)
        return moderation is not None and moderation.submitted_at is not None

    async def update_in_chat(
        self, context: TurnContext, moderator: Staff, audit_id: int, card_id: str
    ) -> None:
        """Show the sample card holding this audit as it now stands, in place of an earlier one."""
        card = await self.card_holding(moderator, audit_id)
        if card is None:
            return
        try:
            await context.update_activity(card_update(card_id, card))
        except Exception as error:  # the claim or moderation stands; the old card only lags
            log.warning(
                "could not bring the moderation sample card of audit %s up to date: %s",
                audit_id, type(error).__name__,
            )  # fmt: skip

    @staticmethod
    def _card(month: str, entries: list[SampleEntry], moderator: Staff) -> Element:
        sample_month = Month.parse(month)
        return moderation_sample_card(
            month_label=sample_month.label,
            until=moderation_until(sample_month.year, sample_month.number),
            entries=entries,
            moderator_name=moderator.name,
            month=month,
            refresh_for=teams_id(moderator.aad_object_id),
        )
