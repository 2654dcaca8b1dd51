"""Drawing the moderation sample: the percentage, the moderators' minimum, every team first."""

from __future__ import annotations

from practice.moderation import CompletedAudit, draw_sample, sample_size


def test_sample_size() -> None:
    assert sample_size(180, 10, 4) == 18
    assert sample_size(12, 10, 2) == 2  # 1.2 rounds up to 2, and the moderators want 2
    assert sample_size(30, 10, 6) == 6  # at least the moderators' quota
    assert sample_size(3, 10, 6) == 3  # never more than there are
    assert sample_size(0, 10, 6) == 0


def test_every_team_is_represented_where_possible() -> None:
    completed = [CompletedAudit(i, f"Team {i % 12}") for i in range(1, 181)]
    chosen = draw_sample(completed, percent=10, minimum=4, seed="2023-09")
    assert len(chosen) == 18
    teams = {f"Team {i % 12}" for i in chosen}
    assert len(teams) == 12
    assert len(set(chosen)) == 18


def test_more_teams_than_places_still_fills_the_sample() -> None:
    completed = [CompletedAudit(i, f"Team {i}") for i in range(1, 41)]
    chosen = draw_sample(completed, percent=10, minimum=2, seed="s")
    assert len(chosen) == 4
    assert len({f"Team {i}" for i in chosen}) == 4


def test_the_draw_repeats_from_its_seed() -> None:
    completed = [CompletedAudit(i, f"Team {i % 5}") for i in range(1, 101)]
    assert draw_sample(completed, percent=10, minimum=2, seed="a") == draw_sample(
        completed, percent=10, minimum=2, seed="a"
    )
    assert draw_sample(completed, percent=10, minimum=2, seed="a") != draw_sample(
        completed, percent=10, minimum=2, seed="b"
    )
