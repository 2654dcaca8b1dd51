"""A month's moderation sample as one moderator sees it now: who holds each audit, what is left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from cards.common import Element
from cards.cycle_cards import SampleEntry, moderation_sample_card
from practice.calendar import moderation_until
from practice.framework import Framework
from practice.month import Month
from scheduler.jobs import Cycle, open_sample_months, sample_entries
from storage import moderation as moderation_store
from storage.database import Database
from storage.models import Staff


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

    @staticmethod
    def _card(month: str, entries: list[SampleEntry], moderator: Staff) -> Element:
        sample_month = Month.parse(month)
        return moderation_sample_card(
            month_label=sample_month.label,
            until=moderation_until(sample_month.year, sample_month.number),
            entries=entries,
            moderator_name=moderator.name,
        )
