"""Database tables: the roster, cases, audits and their answers, bot state and the outbox.

Records fall under UK GDPR and the Caldicott principles, so we keep the minimum: a case
reference, never case content; staff identity only as far as routing and reporting need.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_json(row: SQLModel) -> dict[str, Any]:
    """Return a row's values as JSON, its fields in the order its model declares them."""
    # model_dump follows the order the ORM happened to set the attributes in, which follows
    # memory addresses and so changed whenever the program's imports did.
    values: dict[str, Any] = row.model_dump(mode="json")
    declared = [name for name in type(row).model_fields if name in values]
    others = sorted(name for name in values if name not in type(row).model_fields)
    return {name: values[name] for name in [*declared, *others]}


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and always read them back aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _created() -> Any:
    return Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)


def _when(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class AuditStatus(StrEnum):
    REQUESTED = "requested"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    # A history entry only: an audit not submitted by its due date is marked overdue (and
    # keeps its status, so it can still be completed; the record shows it was late).
    OVERDUE = "overdue"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Staff(SQLModel, table=True):
    """A member of Adult Social Care staff on the audit roster."""

    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column=Column(String(254), unique=True, nullable=False))
    aad_object_id: str | None = Field(
        default=None, sa_column=Column(String(64), unique=True, nullable=True)
    )
    name: str = Field(sa_column=Column(String(200), nullable=False))
    role_code: str = Field(sa_column=Column(String(8), nullable=False))
    team: str = Field(sa_column=Column(String(120), nullable=False, index=True))
    supervisor_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    active: bool = Field(default=True, nullable=False)
    # On leave up to and including this day: skipped by the monthly dispatch.
    on_leave_until: date | None = None
    created_at: datetime = _created()
    updated_at: datetime = _created()


class TeamsConversation(SQLModel, table=True):
    """What the bot needs to message a person proactively: their personal-chat reference."""

    __tablename__ = "teams_conversation"

    id: int | None = Field(default=None, primary_key=True)
    aad_object_id: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    teams_user_id: str = Field(sa_column=Column(String(256), nullable=False))
    conversation_id: str = Field(sa_column=Column(String(512), nullable=False))
    service_url: str = Field(sa_column=Column(String(512), nullable=False))
    tenant_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    channel_id: str = Field(sa_column=Column(String(32), nullable=False))
    bot_id: str = Field(sa_column=Column(String(256), nullable=False))
    installed: bool = Field(default=True, nullable=False)
    updated_at: datetime = _created()


class InstallState(StrEnum):
    INSTALLED = "installed"
    PENDING = "pending"  # tried, and will be tried again at `retry_at`
    REFUSED = "refused"  # Graph refused it (policy, permission, no licence): `reason` says why


class TeamsAppInstall(SQLModel, table=True):
    """Where installing the personal app for a person through Graph got to."""

    __tablename__ = "teams_app_install"

    aad_object_id: str = Field(sa_column=Column(String(64), primary_key=True))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    # Graph's status and its error's message, for a refusal or the latest failure.
    status: int = Field(default=0, nullable=False)
    reason: str = Field(default="", sa_column=Column(String(300), nullable=False))
    attempts: int = Field(default=0, nullable=False)
    tried_at: datetime = _created()
    retry_at: datetime | None = _when()


class CaseRecord(SQLModel, table=True):
    """A case on the council's case system, known only by its reference."""

    __tablename__ = "case_record"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(sa_column=Column(String(40), unique=True, nullable=False))
    team: str = Field(sa_column=Column(String(120), nullable=False, index=True))
    allocated_worker_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    status: str = Field(sa_column=Column(String(10), nullable=False))
    closed_on: date | None = None
    added_by_auditor: bool = Field(default=False, nullable=False)
    updated_at: datetime = _created()


class AuditRequest(SQLModel, table=True):
    """One audit asked of one auditor for one month and standard, and its progress."""

    __tablename__ = "audit_request"
    __table_args__ = (Index("ix_audit_request_auditor_status", "auditor_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    month: str = Field(sa_column=Column(String(7), nullable=False, index=True))
    standard: int = Field(nullable=False)
    kind: str = Field(sa_column=Column(String(10), nullable=False))
    framework_version: str = Field(sa_column=Column(String(40), nullable=False))
    auditor_id: int = Field(foreign_key="staff.id", nullable=False)
    case_id: int | None = Field(default=None, foreign_key="case_record.id", index=True)
    subject_worker_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    status: str = Field(sa_column=Column(String(12), nullable=False))
    due_on: date = Field(nullable=False)
    # Asked for by the monthly dispatch (its key makes a re-run create nothing twice), or
    # started by the auditor themself ("new audit"), which reports count as voluntary.
    dispatch_key: str | None = Field(
        default=None, sa_column=Column(String(120), unique=True, nullable=True)
    )
    voluntary: bool = Field(default=False, nullable=False)
    # One of the audits the Board added to the month, as the timetable said when it was
    # requested (or imported): a later timetable change does not relabel past months.
    additional: bool = Field(default=False, nullable=False)
    # The team whose practice was audited (the case's, else the audited worker's), kept as
    # it was at the time so reports by team do not shift when people move.
    team: str = Field(default="", sa_column=Column(String(120), nullable=False, index=True))
    # "bot" for audits done here; "import" for audits loaded from earlier forms.
    source: str = Field(default="bot", sa_column=Column(String(10), nullable=False))
    requested_at: datetime = _created()
    started_at: datetime | None = _when()
    submitted_at: datetime | None = _when()
    overdue_at: datetime | None = _when()
    # When the evidence and feedback text were erased under the retention rule.
    purged_at: datetime | None = _when()
    case_confirmed_at: datetime | None = _when()
    # The step whose card is live, and a counter bumped for every card sent, so that an
    # old or replayed card is recognised as stale and changes nothing.
    current_step: str = Field(default="case", sa_column=Column(String(40), nullable=False))
    card_seq: int = Field(default=0, nullable=False)
    live_card_activity_id: str | None = Field(
        default=None, sa_column=Column(String(256), nullable=True)
    )
    updated_at: datetime = _created()


class CriterionRating(SQLModel, table=True):
    """The auditor's rating of one criterion, with the evidence for it."""

    __tablename__ = "criterion_rating"
    __table_args__ = (UniqueConstraint("audit_id", "criterion_id"),)

    id: int | None = Field(default=None, primary_key=True)
    audit_id: int = Field(foreign_key="audit_request.id", nullable=False, index=True)
    criterion_id: str = Field(sa_column=Column(String(8), nullable=False))
    # None while only a draft (evidence typed, no rating chosen yet) has been saved.
    rating: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    evidence: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_at: datetime = _created()


class FeedbackCall(SQLModel, table=True):
    """Whether the person, carer or representative gave feedback, and what they said."""

    __tablename__ = "feedback_call"

    audit_id: int = Field(foreign_key="audit_request.id", primary_key=True)
    # Comma-separated: person, carer, representative. Empty when nobody was contacted.
    contacted: str = Field(default="", sa_column=Column(String(64), nullable=False))
    what_they_said: str = Field(default="", sa_column=Column(Text, nullable=False))
    no_contact_reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    suitable_for_report: bool = Field(default=False, nullable=False)
    complete: bool = Field(default=False, nullable=False)
    updated_at: datetime = _created()


class WorkerInvolvement(SQLModel, table=True):
    """How the allocated (or most recent) worker was involved in the audit."""

    __tablename__ = "worker_involvement"

    audit_id: int = Field(foreign_key="audit_request.id", primary_key=True)
    # joint_in_person, joint_teams, feedback_arranged or not_involved; empty in a draft.
    how: str = Field(default="", sa_column=Column(String(20), nullable=False))
    feedback_on: date | None = None
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    complete: bool = Field(default=False, nullable=False)
    updated_at: datetime = _created()


class AuditStatusChange(SQLModel, table=True):
    """One entry of an audit's status history."""

    __tablename__ = "audit_status_change"

    id: int | None = Field(default=None, primary_key=True)
    audit_id: int = Field(foreign_key="audit_request.id", nullable=False, index=True)
    status: str = Field(sa_column=Column(String(12), nullable=False))
    changed_at: datetime = _created()
    changed_by_id: int | None = Field(default=None, foreign_key="staff.id")
    note: str = Field(default="", sa_column=Column(String(200), nullable=False))


class BotStateItem(SQLModel, table=True):
    """One botbuilder state document (conversation or user state) with its e-tag version."""

    __tablename__ = "bot_state"

    key: str = Field(sa_column=Column(String(1024), primary_key=True))
    document: str = Field(sa_column=Column(Text, nullable=False))
    version: int = Field(default=1, nullable=False)
    updated_at: datetime = _created()


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent, or to be tried again after a failure
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # blocked or removed the app, or gave up after retries


class OutboxMessage(SQLModel, table=True):
    """A proactive message waiting to be sent, or sent; the key makes each send happen once."""

    __tablename__ = "outbox_message"
    # Claiming looks for a person's earlier pending messages once per candidate: without
    # this, PostgreSQL (with statistics not yet caught up after a month is queued) ANDs the
    # recipient's index with every pending row's, for each candidate, and a claim of 50
    # took 3-7 s with 10,000 pending (bench/cluster.py).
    __table_args__ = (Index("ix_outbox_message_status_recipient", "status", "recipient_id"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    recipient_id: int = Field(foreign_key="staff.id", nullable=False, index=True)
    purpose: str = Field(sa_column=Column(String(40), nullable=False))
    period: str = Field(sa_column=Column(String(7), nullable=False, index=True))
    audit_id: int | None = Field(default=None, foreign_key="audit_request.id")
    activity: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    attempts: int = Field(default=0, nullable=False)
    last_error: str = Field(default="", sa_column=Column(String(300), nullable=False))
    sent_activity_id: str | None = Field(default=None, sa_column=Column(String(256)))
    # Not before this time (a retry's back-off, or Teams' Retry-After).
    next_attempt_at: datetime | None = _when()
    # A sender that claimed the message holds it until this time; after a crash the claim
    # lapses and another sender (or the restarted one) picks the message up again.
    claimed_until: datetime | None = _when()
    claimed_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = _created()
    sent_at: datetime | None = _when()


class JobRun(SQLModel, table=True):
    """One run of a scheduled job for one period; the unique key makes each run happen once."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(sa_column=Column(String(40), nullable=False))
    period: str = Field(sa_column=Column(String(20), nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))  # running, done, failed
    seed: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    instance: str = Field(default="", sa_column=Column(String(64), nullable=False))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))
    started_at: datetime = _created()
    finished_at: datetime | None = _when()


class ModerationSample(SQLModel, table=True):
    """A completed audit drawn for moderation in the first two weeks of the following month."""

    __tablename__ = "moderation_sample"

    audit_id: int = Field(foreign_key="audit_request.id", primary_key=True)
    month: str = Field(sa_column=Column(String(7), nullable=False, index=True))
    sampled_at: datetime = _created()


class Moderation(SQLModel, table=True):
    """A moderator's claim on a sampled audit, and their moderation of it."""

    __tablename__ = "moderation"

    # One row per audit: the primary key is what makes the first claim win.
    audit_id: int = Field(foreign_key="moderation_sample.audit_id", primary_key=True)
    moderator_id: int = Field(foreign_key="staff.id", nullable=False, index=True)
    claimed_at: datetime = _created()
    overall_comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    submitted_at: datetime | None = _when()
    card_seq: int = Field(default=0, nullable=False)


class ModerationRating(SQLModel, table=True):
    """The moderator's view of one criterion: agreement, or their own rating and why."""

    __tablename__ = "moderation_rating"
    __table_args__ = (UniqueConstraint("audit_id", "criterion_id"),)

    id: int | None = Field(default=None, primary_key=True)
    audit_id: int = Field(foreign_key="moderation.audit_id", nullable=False, index=True)
    criterion_id: str = Field(sa_column=Column(String(8), nullable=False))
    agrees: bool | None = None
    rating: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))


class LearningActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CLOSED = "closed"


class LearningAction(SQLModel, table=True):
    """An action the Practice Quality Board logged from the audits, tracked until closed."""

    __tablename__ = "learning_action"

    id: int | None = Field(default=None, primary_key=True)
    # A standard's number ("4") or a theme in words ("Mental capacity").
    theme: str = Field(sa_column=Column(String(120), nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    owner: str = Field(sa_column=Column(String(200), nullable=False))
    due_on: date | None = None
    status: str = Field(sa_column=Column(String(12), nullable=False, index=True))
    logged_on: date = Field(nullable=False)
    closed_on: date | None = None
    updated_at: datetime = _created()


class AccessLogEntry(SQLModel, table=True):
    """Who opened which audit or report, when and how (UK GDPR: accountability)."""

    __tablename__ = "access_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False, index=True)
    # None for an administrator at the command line (who is the server's user).
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    action: str = Field(sa_column=Column(String(40), nullable=False))
    target: str = Field(sa_column=Column(String(120), nullable=False))
    via: str = Field(sa_column=Column(String(20), nullable=False))


class DirectorySync(SQLModel, table=True):
    """Where the last roster sync from a directory got to: Graph's link to the changes since."""

    __tablename__ = "directory_sync"

    # What was read, e.g. "graph-users": one row per delta query the bot follows.
    source: str = Field(sa_column=Column(String(40), primary_key=True))
    delta_link: str = Field(sa_column=Column(Text, nullable=False))
    synced_at: datetime = _created()


class DirectoryHeld(SQLModel, table=True):
    """A person in the roster's groups a sync could not place, as the directory last described them.

    An unmapped department or job title, or a disabled account new to the roster: the record
    is weighed again at each sync (after the delta link has moved past it), so a fixed mapping
    file or an enabled account places the person without reading them again.
    """

    __tablename__ = "directory_held"

    source: str = Field(sa_column=Column(String(40), primary_key=True))
    aad_object_id: str = Field(sa_column=Column(String(64), primary_key=True))
    # The properties read (`directory.roster_diff.DirectoryUser.as_record`), as JSON.
    record: str = Field(sa_column=Column(Text, nullable=False))
    held_at: datetime = _created()


class BoardPack(SQLModel, table=True):
    """One published version of the Board's pack for a month, frozen as it was published."""

    __tablename__ = "board_pack"
    __table_args__ = (UniqueConstraint("month", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    month: str = Field(sa_column=Column(String(7), nullable=False, index=True))
    version: int = Field(nullable=False)
    # Why this version was published (the first says "first publication").
    reason: str = Field(sa_column=Column(Text, nullable=False))
    # The figures, chosen quotes, summary, commentary and actions (`reports.tabular`'s JSON
    # with the pack's words), and the page rendered from them: later imports, late
    # submissions or a retention purge change neither.
    content: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    published_by: str = Field(sa_column=Column(String(254), nullable=False))
    published_at: datetime = _created()


class BoardPackDraft(SQLModel, table=True):
    """The Board's pack for a month as its owners prepare it in Teams, before publishing."""

    __tablename__ = "board_pack_draft"

    id: int | None = Field(default=None, primary_key=True)
    month: str = Field(sa_column=Column(String(7), nullable=False, unique=True))
    # JSON: the audits whose quotes are chosen, in order; commentary by standard number;
    # the learning actions shown (null: every action the report shows).
    quote_ids: str = Field(sa_column=Column(Text, nullable=False))
    summary: str = Field(sa_column=Column(Text, nullable=False))
    commentary: str = Field(sa_column=Column(Text, nullable=False))
    action_ids: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_by_id: int | None = Field(default=None)
    updated_at: datetime = _created()


class SendLeader(SQLModel, table=True):
    """Which instance sends the outbox now: a lease that its holder renews while it lives.

    One row per role (only "outbox" today). The holder renews `until` every heartbeat; once it
    has passed, any instance may take the role, and `term` counts each change of holder.
    """

    __tablename__ = "send_leader"

    role: str = Field(sa_column=Column(String(20), primary_key=True))
    holder: str = Field(sa_column=Column(String(64), nullable=False))
    until: datetime = Field(sa_type=UTCDateTime, nullable=False)
    since: datetime = Field(sa_type=UTCDateTime, nullable=False)
    term: int = Field(default=0, nullable=False)


class SendMember(SQLModel, table=True):
    """One living instance and its share of Teams' budget for answers to people."""

    __tablename__ = "send_member"

    instance: str = Field(sa_column=Column(String(64), primary_key=True))
    seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    # The requests per second it allows its answers to people (`delivery.leader`): the
    # sending instance leaves the others' shares free.
    share: float = Field(default=0.0, nullable=False)


# -- report tallies: what the Board's reports count, kept as audits are submitted ----------
# A whole-council or team report over years reads these few thousand rows instead of every
# rating. storage/report_tally.py keeps them in the same transaction as the writes they count.


class TalliedAudits(SQLModel, table=True):
    """Completed audits counted by month, standard, kind, team and whether they were rated."""

    __tablename__ = "tallied_audits"

    month: str = Field(sa_column=Column(String(7), primary_key=True))
    standard: int = Field(primary_key=True)
    additional: bool = Field(primary_key=True)
    voluntary: bool = Field(primary_key=True)
    kind: str = Field(sa_column=Column(String(10), primary_key=True))
    team: str = Field(sa_column=Column(String(120), primary_key=True))
    rated: bool = Field(primary_key=True)  # with at least one criterion rated
    audits: int = Field(nullable=False)


class TalliedRatings(SQLModel, table=True):
    """Ratings of completed requested audits counted by month, standard and criterion."""

    __tablename__ = "tallied_ratings"

    month: str = Field(sa_column=Column(String(7), primary_key=True))
    standard: int = Field(primary_key=True)
    additional: bool = Field(primary_key=True)
    criterion_id: str = Field(sa_column=Column(String(8), primary_key=True))
    rating: str = Field(sa_column=Column(String(16), primary_key=True))
    answers: int = Field(nullable=False)


class TalliedTeamRatings(SQLModel, table=True):
    """The same by team too, for teams' reports (a whole-council one reads the smaller one)."""

    __tablename__ = "tallied_team_ratings"

    team: str = Field(sa_column=Column(String(120), primary_key=True))
    month: str = Field(sa_column=Column(String(7), primary_key=True))
    standard: int = Field(primary_key=True)
    additional: bool = Field(primary_key=True)
    criterion_id: str = Field(sa_column=Column(String(8), primary_key=True))
    rating: str = Field(sa_column=Column(String(16), primary_key=True))
    answers: int = Field(nullable=False)


class TalliedModeratedCriteria(SQLModel, table=True):
    """Moderated pairs of ratings counted by month, team, criterion and the two ratings."""

    __tablename__ = "tallied_moderated_criteria"

    month: str = Field(sa_column=Column(String(7), primary_key=True))
    team: str = Field(sa_column=Column(String(120), primary_key=True))
    criterion_id: str = Field(sa_column=Column(String(8), primary_key=True))
    auditor_rating: str = Field(sa_column=Column(String(16), primary_key=True))
    moderator_rating: str = Field(sa_column=Column(String(16), primary_key=True))
    pairs: int = Field(nullable=False)


class TalliedModeratedAuditors(SQLModel, table=True):
    """Moderated pairs of ratings counted by month, team, auditor and the two ratings."""

    __tablename__ = "tallied_moderated_auditors"

    month: str = Field(sa_column=Column(String(7), primary_key=True))
    team: str = Field(sa_column=Column(String(120), primary_key=True))
    auditor_id: int = Field(primary_key=True)
    auditor_rating: str = Field(sa_column=Column(String(16), primary_key=True))
    moderator_rating: str = Field(sa_column=Column(String(16), primary_key=True))
    pairs: int = Field(nullable=False)
