"""Prometheus metrics for /metrics: turns and their latency, the outbox, throttling, jobs."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_OUTCOMES = ("done", "nothing_due", "failed")
OUTBOX_STATES = ("pending", "retrying", "sent", "undeliverable")
# What became of an answer's try (delivery.answers.TeamsAdapter.on_answer).
ANSWER_OUTCOMES = ("sent", "retried", "queued", "failed", "not_updated")


class Metrics:
    """The bot's metrics, in a registry of its own (so each app and test has fresh ones)."""

    def __init__(self, *, jobs: Sequence[str] = (), send_outcomes: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "pqf_turns", "Activities handled, by type and outcome", ["activity_type", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.turn_seconds = Histogram(
            "pqf_turn_seconds", "Time from receiving an activity to answering it",
            ["activity_type"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.refused = Counter(
            "pqf_requests_refused", "Requests refused before the bot saw them, by reason",
            ["reason"], registry=self.registry,
        )  # fmt: skip
        self.rate_limited = Counter(
            "pqf_messages_rate_limited", "Messages dropped by the per-person limit",
            registry=self.registry,
        )  # fmt: skip
        self.outbox = Gauge(
            "pqf_outbox_messages", "Outbox messages by state (read from the database)", ["state"],
            registry=self.registry,
        )  # fmt: skip
        self.send_attempts = Counter(
            "pqf_outbox_send_attempts", "Attempts to send an outbox message, by outcome",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.answers = Counter(
            "pqf_answers", "Tries to answer people or update their cards in a turn, by fate",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.throttled = Counter(
            "pqf_teams_throttled", "429 answers received from Teams", registry=self.registry
        )
        self.send_leader = Gauge(
            "pqf_send_leader", "1 while this instance sends the outbox", registry=self.registry
        )
        self.send_rate = Gauge(
            "pqf_send_rate",
            "Requests/s this instance may make to Teams now (the outbox's rate while it sends, "
            "else its answers' share)",
            registry=self.registry,
        )
        self.send_rate_now = Gauge(
            "pqf_send_rate_now",
            "Requests/s the outbox may make just now: pqf_send_rate, lowered for a while when "
            "Teams refuses a rising share with 429",
            registry=self.registry,
        )
        self.job_runs = Counter(
            "pqf_scheduler_runs", "Scheduled job runs, by job and outcome", ["job", "outcome"],
            registry=self.registry,
        )  # fmt: skip

        # Series that exist from the start read 0 rather than being absent, so rates and
        # alerts work before the first send or job run.
        for outcome in send_outcomes:
            self.send_attempts.labels(outcome)
        for job in jobs:
            for outcome in JOB_OUTCOMES:
                self.job_runs.labels(job, outcome)
        for state in OUTBOX_STATES:
            self.outbox.labels(state)
        for outcome in ANSWER_OUTCOMES:
            self.answers.labels(outcome)

    def render(self) -> bytes:
        """Return the metrics in Prometheus' text format."""
        return generate_latest(self.registry)
