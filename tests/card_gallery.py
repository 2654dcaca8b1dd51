"""Every card the bot sends, filled with realistic worst-case content.

Long names, the framework's longest standard titles and criteria, evidence of the most the
bot accepts, full teams and many rows: what a card must still show whole on a phone. The
audit cards are made the way the bot makes them, from stored audits through
`cards.views`, so their labels are the real ones.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cards.audit_cards import (
    CaseChoice,
    case_card,
    criterion_card,
    feedback_card,
    involvement_card,
    replaced_card,
    request_card,
    step_done_card,
    submitted_card,
    summary_card,
)
from cards.board_pack_cards import (
    ActionChoice,
    QuoteChoice,
    StandardWords,
    UnsavedEntries,
    board_pack_card,
    pack_published_card,
    pack_version_card,
)
from cards.cycle_cards import (
    DIGEST_STATES,
    DigestRow,
    ModerationItem,
    SampleEntry,
    digest_card,
    moderated_card,
    moderation_card,
    moderation_sample_card,
    new_audit_card,
    outcome_card,
    reminder_card,
)
from cards.help_cards import help_card, my_audits_card
from cards.report_cards import download_card, report_summary_card
from cards.views import (
    audit_heading,
    involved_worker_label,
    list_entry,
    rating_choices,
    summary_items,
)
from practice.answers import INVOLVEMENT_OPTIONS, contact_options
from practice.audit_steps import AuditKind
from practice.framework import Framework, Standard
from practice.report_summary import BelowCriterion, OwnAudit
from storage.audits import AuditDetail
from storage.models import (
    AuditRequest,
    AuditStatus,
    CaseRecord,
    CriterionRating,
    FeedbackCall,
    Staff,
    WorkerInvolvement,
)

AUDITOR = "Christabel Featherstonehaugh-Montgomery"
WORKER = "Oluwaseun Adebayo-Williamson"
MODERATOR = "Bartholomew Okonkwo-Richardson"
LONDON = ZoneInfo("Europe/London")
TEAM = "South Somerset Adult Social Care Team"
CASE_REFERENCE = "4100107"
DUE = date(2026, 11, 30)
TODAY = date(2026, 11, 25)
SUBMITTED = date(2026, 11, 24)

EVIDENCE = (
    "The assessment records what matters to the person in their own words, including their "
    "wish to keep gardening with their neighbour and to stay in touch with their church "
    "community. The worker visited twice, spoke with the person's daughter by telephone, and "
    "recorded the outcomes agreed at each visit. Risks around falls on the stairs were "
    "discussed openly, with the person's own view of the risk recorded alongside the "
    "occupational therapist's recommendations. The support plan is proportionate to the "
    "presenting circumstances and was shared with the person and their daughter afterwards. "
)
LONG_EVIDENCE = (EVIDENCE * 8)[:4000]
WHAT_THEY_SAID = (
    "Her daughter said the worker listened carefully, explained the options without rushing "
    "them, and kept the family informed when the care agency changed. She would have liked "
    "the written plan sooner, because the family had to chase it twice before it arrived. "
) * 3
PROBLEMS = [
    "Add the evidence for this rating: what in the record shows it?",
    "The evidence is 4,012 characters long; the most is 4,000.",
]


def _longest_title(framework: Framework) -> Standard:
    return max(framework.standards, key=lambda s: len(s.title))


def _most_criteria(framework: Framework) -> Standard:
    return max(
        (s for s in framework.standards if s.subject == "case"),
        key=lambda s: (len(s.criteria), max(len(c.text) for c in s.criteria)),
    )


def _supervision(framework: Framework) -> Standard:
    return next(s for s in framework.standards if s.subject == "supervision")


def _person(person_id: int, name: str, role: str = "SW") -> Staff:
    return Staff(
        id=person_id,
        email=f"person{person_id}@somerset.example",
        name=name,
        role_code=role,
        team=TEAM,
    )


def audit_detail(
    framework: Framework, standard: Standard, kind: AuditKind, *, submitted: bool
) -> AuditDetail:
    """Return an audit answered in full (evidence at its longest), as the database gives it."""
    auditor = _person(1, AUDITOR, "SVM")
    worker = _person(2, WORKER)
    audit = AuditRequest(
        id=4107,
        month="2026-11",
        standard=standard.number,
        kind=kind.value,
        framework_version=framework.version,
        auditor_id=1,
        case_id=9,
        subject_worker_id=2,
        status=AuditStatus.SUBMITTED if submitted else AuditStatus.IN_PROGRESS,
        due_on=DUE,
        team=TEAM,
        case_confirmed_at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
        submitted_at=datetime(2026, 11, 24, 15, 0, tzinfo=UTC) if submitted else None,
    )
    case = CaseRecord(
        id=9, reference=CASE_REFERENCE, team=TEAM, allocated_worker_id=2, status="open"
    )
    ratings = {
        c.id: CriterionRating(
            audit_id=4107,
            criterion_id=c.id,
            rating=("meets", "exceeds", "below", "not_applicable")[i % 4],
            evidence=LONG_EVIDENCE,
        )
        for i, c in enumerate(standard.criteria)
    }
    return AuditDetail(
        audit=audit,
        auditor=auditor,
        case=case if standard.subject == "case" else None,
        subject=worker,
        allocated_worker=worker,
        ratings=ratings,
        feedback=FeedbackCall(
            audit_id=4107,
            contacted=",".join(contact_options(standard)),
            what_they_said=WHAT_THEY_SAID,
            suitable_for_report=True,
            complete=True,
        ),
        involvement=WorkerInvolvement(
            audit_id=4107, how="feedback_arranged", feedback_on=date(2026, 12, 3), complete=True
        ),
    )


def phone_gallery(framework: Framework) -> dict[str, dict[str, Any]]:
    """Return one of every card the bot sends, in its fullest realistic form."""
    long_title = _longest_title(framework)
    most = _most_criteria(framework)
    supervision = _supervision(framework)
    scale = rating_choices(framework)

    peer = audit_detail(framework, most, AuditKind.PEER, submitted=False)
    peer_heading = audit_heading(peer, most)
    fresh = audit_detail(framework, most, AuditKind.PEER, submitted=False)
    fresh.audit.case_confirmed_at = None
    unanswered = replace(fresh, ratings={}, feedback=None, involvement=None)
    done = audit_detail(framework, most, AuditKind.PEER, submitted=True)
    done_items = summary_items(done, most, framework)
    sampled = audit_detail(framework, long_title, AuditKind.SAMPLED, submitted=False)
    sampled_heading = audit_heading(sampled, long_title)
    self_heading = audit_heading(
        audit_detail(framework, long_title, AuditKind.SELF, submitted=False), long_title
    )
    supervised = audit_detail(framework, supervision, AuditKind.SAMPLED, submitted=False)
    supervision_heading = audit_heading(supervised, supervision)
    longest_criterion = max(most.criteria, key=lambda c: len(c.text))
    entries = [
        list_entry(
            audit_detail(framework, s, kind, submitted=submitted),
            s,
            framework,
            LONDON,
        )
        for s, kind, submitted in (
            (long_title, AuditKind.SAMPLED, False),
            (long_title, AuditKind.SAMPLED, False),
            (most, AuditKind.PEER, False),
            (supervision, AuditKind.SAMPLED, False),
            (most, AuditKind.SELF, True),
        )
    ]
    names = [
        f"{first} {last}"
        for first, last in zip(
            ("Christabel", "Oluwaseun", "Bartholomew", "Anne-Marie", "Krzysztof", "Siobhán",
             "Maximilian", "Priyanka", "Alexandra", "Jean-Baptiste", "Margaret", "Mohammed"),
            ("Featherstonehaugh", "Adebayo-Williamson", "Okonkwo-Richardson", "Fitzgerald-Hughes",
             "Wiśniewski-Kowalczyk", "O'Shaughnessy", "Montgomery-Smythe", "Venkataraman",
             "Papadopoulou", "Delacroix-Martin", "Worthington-Price", "Abdirahman-Hassan"),
            strict=True,
        )
    ]  # fmt: skip
    states = list(DIGEST_STATES)
    digest_rows = [
        DigestRow(name, states[i % len(states)], "0 of 2 done" if i % 3 else "1 of 2 done")
        for i, name in enumerate(names)
    ]
    moderation_items = [
        ModerationItem(
            c.id,
            c.text,
            ("Meets", "Exceeds", "Below", "N/A")[i % 4],
            LONG_EVIDENCE,
            "agree" if i % 2 else "below",
            "" if i % 2 else "The evidence describes the visits but not the person's own view.",
        )
        for i, c in enumerate(most.criteria)
    ]
    sample = [
        SampleEntry(
            100 + i,
            f"Standard {long_title.number}: {long_title.title}",
            f"case 41001{i:02d}",
            TEAM,
            ("case audit", "self-audit", "peer audit")[i % 3],
            None if i % 3 == 0 else MODERATOR if i % 3 == 1 else names[i],
            i % 3 == 1,
            i % 3 != 0 and i % 4 == 3,
        )
        for i in range(10)
    ]
    return {
        "request_sampled": request_card(
            sampled_heading, what_people_can_expect=long_title.what_people_can_expect
        ),
        "request_self": request_card(
            self_heading, what_people_can_expect=long_title.what_people_can_expect
        ),
        "request_peer": request_card(peer_heading, what_people_can_expect=""),
        "request_supervision": request_card(
            supervision_heading, what_people_can_expect=supervision.what_people_can_expect
        ),
        "case_confirm": case_card(
            sampled_heading, seq=1, mode="confirm_case", allocated_worker=WORKER, team=TEAM,
            choices=[],
        ),
        "case_choose_own": case_card(
            self_heading, seq=1, mode="choose_own", allocated_worker=None, team=None,
            choices=[CaseChoice(f"41001{i:02d}", "open" if i % 2 else "closed on 14 October 2026")
                     for i in range(40)],
            problems=["Choose a case from the list, or type a case reference."],
        ),
        "case_choose_peer": case_card(
            peer_heading, seq=1, mode="choose_peer", allocated_worker=None, team=None, choices=[],
        ),
        "case_choose_any": case_card(
            sampled_heading, seq=1, mode="choose_any", allocated_worker=None, team=None,
            choices=[], typed_reference="4100107",
        ),
        "case_supervision": case_card(
            supervision_heading, seq=1, mode="confirm_supervision", allocated_worker=None,
            team=None, choices=[],
        ),
        "criterion": criterion_card(
            peer_heading, seq=2, step=f"criterion:{longest_criterion.id}",
            criterion_id=longest_criterion.id, criterion_text=longest_criterion.text,
            position=len(most.criteria), total=len(most.criteria), scale=scale,
            rating="not_applicable", evidence=LONG_EVIDENCE, max_length=framework.max_text_length,
            problems=PROBLEMS,
        ),
        "feedback": feedback_card(
            peer_heading, seq=3, options=contact_options(most), contacted=("person", "carer"),
            what_they_said=WHAT_THEY_SAID, suitable_for_report=True,
            max_length=framework.max_text_length, problems=PROBLEMS[:1],
        ),
        "feedback_supervision": feedback_card(
            supervision_heading, seq=3, options=contact_options(supervision),
            no_contact_reason="The member of staff is on long-term sick leave.",
            max_length=framework.max_text_length,
        ),
        "involvement": involvement_card(
            peer_heading, seq=4, worker_label=involved_worker_label(peer, most),
            options=INVOLVEMENT_OPTIONS, how="feedback_arranged", feedback_on="2026-12-03",
            reason=WHAT_THEY_SAID, max_length=framework.max_text_length, problems=PROBLEMS[:1],
        ),
        "summary": summary_card(
            peer_heading, seq=5, items=summary_items(peer, most, framework), problems=PROBLEMS,
        ),
        "summary_supervision": summary_card(
            supervision_heading, seq=5, items=summary_items(supervised, supervision, framework),
        ),
        "summary_unanswered": summary_card(
            peer_heading, seq=5, items=summary_items(unanswered, most, framework),
            problems=["Some answers are missing: use Change to complete them."],
        ),
        "submitted": submitted_card(
            audit_heading(done, most), items=done_items, submitted_on=SUBMITTED
        ),
        "step_done": step_done_card(
            peer_heading, label=f"Criterion {len(most.criteria)} of {len(most.criteria)}",
            outcome="Not applicable — saved",
        ),
        "replaced": replaced_card(sampled_heading),
        "welcome": help_card(name=AUDITOR, greeting=True, outstanding=6, moderator=True),
        "help": help_card(
            name=AUDITOR, greeting=False, outstanding=0, moderator=True, prepares_pack=True
        ),
        "my_audits": my_audits_card(entries),
        "my_audits_empty": my_audits_card([]),
        "new_audit": new_audit_card(
            standards=[(s.number, s.title) for s in framework.standards],
            problems=["Choose the practice standard to audit."],
        ),
        "reminder": reminder_card(entries=entries[:4], due_on=DUE, today=TODAY),
        "reminder_due_today": reminder_card(entries=entries[:1], due_on=DUE, today=DUE),
        "digest": digest_card(
            month_label="November 2026", due_on=DUE, today=TODAY, rows=digest_rows
        ),
        "outcome_worker": outcome_card(
            audit_heading(done, most), items=done_items, submitted_on=SUBMITTED,
            auditor_name=AUDITOR, for_supervisor=False,
        ),
        "outcome_supervisor": outcome_card(
            audit_heading(done, most), items=done_items, submitted_on=SUBMITTED,
            auditor_name=AUDITOR, for_supervisor=True,
        ),
        "moderation_sample": moderation_sample_card(
            month_label="November 2026", until=date(2026, 12, 14), entries=sample,
            moderator_name=MODERATOR,
        ),
        "moderation": moderation_card(
            audit_heading(done, most), seq=3, auditor_name=AUDITOR,
            ratings=[(r.code, r.label) for r in scale], items=moderation_items,
            overall_comment=WHAT_THEY_SAID, max_length=framework.max_text_length,
            problems=["Say why you differ on 3.2."],
        ),
        "moderated": moderated_card(
            audit_heading(done, most), moderator_name=MODERATOR, for_auditor=True,
            overall_comment=WHAT_THEY_SAID,
            lines=[(c.id, "Agreed" if i % 2 else "Moderator: Below (auditor: Exceeds)",
                    "" if i % 2 else "The evidence describes the visits but not the person's view.")
                   for i, c in enumerate(most.criteria)],
        ),
        "report_summary": report_summary_card(
            period="September 2026 to November 2026",
            scope="Your audits and your team's",
            completed=1234,
            completion="1,180 of 1,234 requested audits (95.6%), 42 of them late",
            below=[BelowCriterion(c.id, c.text, "16.3%", 1180) for c in most.criteria[-3:]],
            own=[
                OwnAudit(200 + i, f"Standard {long_title.number}: {long_title.title} · "
                         "November 2026", f"Your work, audited by {names[i]}",
                         "Meets 3, Exceeds 2, Below 1, N/A 1" if i % 3 else "not submitted yet",
                         i % 3 != 0)
                for i in range(10)
            ],
            report_url="https://pqf-bot.example.gov.uk/reports?t=" + "x" * 200,
            minutes=15,
        ),
        "download": download_card(
            title=f"Standard {long_title.number}: {long_title.title} · November 2026",
            html_url="https://pqf-bot.example.gov.uk/audits?t=" + "x" * 200,
            pdf_url="https://pqf-bot.example.gov.uk/audits.pdf?t=" + "x" * 200,
            minutes=15,
        ),
        **_board_pack_cards(framework),
    }  # fmt: skip


def _board_pack_cards(framework: Framework) -> dict[str, dict[str, Any]]:
    """The Board's pack cards: a full shortlist, every standard's commentary, many actions."""
    quotes = [
        QuoteChoice(100 + i, 1 + i % 10, TEAM, WHAT_THEY_SAID[: 400 + 20 * i], i % 4 != 0)
        for i in range(12)
    ]
    standards = [
        StandardWords(s.number, s.title, (EVIDENCE * 4)[:1500]) for s in framework.standards
    ]
    actions = [
        ActionChoice(
            i, framework.standards[i % 10].title, (EVIDENCE * 2)[:1000], AUDITOR, i % 2 == 0
        )
        for i in range(1, 9)
    ]
    common: dict[str, Any] = {
        "month": "2026-11",
        "month_label": "November 2026",
        "completed": 1234,
        "quotes": quotes,
        "summary": (EVIDENCE * 8)[:2000],
        "standards": standards,
        "actions": actions,
    }
    action_standards = [(s.number, s.title) for s in framework.standards]
    return {
        "board_pack": board_pack_card(
            **common, action_standards=action_standards, published_versions=0,
            notice="Saved at 14:05, with the new learning action.",
        ),
        # Each state a press answers in place: what to correct, kept as typed...
        "board_pack_republish": board_pack_card(
            **common, action_standards=action_standards, published_versions=3,
            problems=["Version 3 is published already: say why it is published again.",
                      "The commentary on standard 10 is 1,501 characters; shorten it to 1,500 "
                      "or fewer.",
                      "Name the new learning action's owner."],
            unsaved=UnsavedEntries(
                new_action_standard=str(framework.standards[-1].number),
                new_action_text=(EVIDENCE * 2)[:1000], reason=(EVIDENCE * 2)[:300],
            ),
        ),
        # ...a Publish on a card made before another version was published...
        "board_pack_out_of_date": board_pack_card(
            **common, action_standards=action_standards, published_versions=12,
            problems=["Version 12 was published at 14:05 on 23 November since that card was "
                      "made, so nothing was published or saved. This is the pack as it stands, "
                      "with what you typed; to publish it again, say why below."],
            unsaved=UnsavedEntries(reason=(EVIDENCE * 2)[:300]),
        ),
        # ...Preview: the same card, with the draft's links by the buttons...
        "board_pack_previewed": board_pack_card(
            **common, action_standards=action_standards, published_versions=3,
            notice="Saved at 14:05. Any owner can carry on from here.",
            unsaved=UnsavedEntries(reason=(EVIDENCE * 2)[:300]),
            draft_url="https://pqf-bot.example.gov.uk/packs/draft?t=" + "x" * 200,
            draft_pdf_url="https://pqf-bot.example.gov.uk/packs/draft.pdf?t=" + "x" * 200,
            minutes=15,
        ),
        "board_pack_empty": board_pack_card(
            month="2026-10", month_label="October 2026", completed=0, quotes=[], summary="",
            standards=[], actions=[], action_standards=action_standards, published_versions=0,
        ),
        # ...and Publish: the card becomes the version published.
        "board_pack_published": pack_version_card(
            month="2026-11", month_label="November 2026", version=12,
            reason=(EVIDENCE * 2)[:300], published_at="14:05", completed=1234, quotes=12,
            actions=8, told=1234,
            report_url="https://pqf-bot.example.gov.uk/reports?t=" + "x" * 200,
            pdf_url="https://pqf-bot.example.gov.uk/reports.pdf?t=" + "x" * 200, minutes=15,
        ),
        "board_pack_notice": pack_published_card(
            month="2026-11", month_label="November 2026", version=12,
            reason=(EVIDENCE * 2)[:300], completed=1234, quotes=12, actions=8,
            summary=(EVIDENCE * 8)[:2000],
        ),
    }  # fmt: skip
