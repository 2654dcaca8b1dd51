"""Let long work say how far it has got, without knowing who, if anyone, is watching."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told, now and then, that `done` of `total` items of a stage are done."""

    def __call__(self, stage: str, done: int, total: int) -> None: ...


def no_progress(stage: str, done: int, total: int) -> None:
    """Ignore progress (the default: jobs run by the scheduler have no one watching)."""
