"""The activity handler: who is talking, what they asked for, and which dialog answers."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from botbuilder.core import ActivityHandler, ConversationState, InvokeResponse, TurnContext
from botbuilder.dialogs import Dialog, DialogContext, DialogSet
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ResourceResponse

from bot.board_pack_chat import BoardPackChat
from bot.card_actions import (
    card_action_of,
    card_response,
    empty_response,
    error_response,
    is_refresh,
)
from bot.commands import (
    Command,
    clean_command,
    parse_command,
)
from bot.limits import MessageRateLimit, OneTurnAtATime, RepeatedPresses, press_of
from bot.links import LinkMaker
from bot.moderation_samples import Samples
from bot.refresh import CardRefresh
from bot.report_chat import ReportChat
from cards.audit_cards import notice_card
from cards.cycle_cards import new_audit_card
from cards.help_cards import help_card, my_audits_card
from cards.submissions import (
    AuditRefresh,
    BoardPackAnswer,
    CardSubmission,
    ClaimModeration,
    DownloadAudit,
    ModerationAnswer,
    NewAudit,
    OpenAudit,
    OpenModeration,
    RunCommand,
    SampleRefresh,
    SubmissionError,
    parse_submission,
)
from cards.views import list_entry
from dialogs.audit_dialog import AuditDialog
from dialogs.moderation_dialog import ModerationDialog, is_moderator
from dialogs.turn import (
    ANSWER_KEY,
    MODERATION_KEY,
    STAFF_KEY,
    card_in_place,
    card_message,
    is_card_action,
    show_in_place,
)
from practice.audit_steps import AuditKind
from practice.framework import Framework
from practice.month import TEN_YEARS
from practice.working_days import last_working_day
from reports.service import ReportService
from storage import audits as audit_store
from storage import outbox, roster
from storage.database import Database
from storage.models import AuditRequest, AuditStatus, Staff

log = logging.getLogger(__name__)

# Submitted audits stay on someone's list this long.
RECENTLY_SUBMITTED = timedelta(days=45)


def _chat_reference(activity: Activity) -> roster.ChatReference:
    """Return the chat this activity came from, as storage keeps it to message the person later."""
    # The parts of botbuilder's `TurnContext.get_conversation_reference` a later message needs.
    conversation = activity.conversation
    return roster.ChatReference(
        teams_user_id=activity.from_property.id if activity.from_property else None,
        conversation_id=conversation.id if conversation else None,
        service_url=activity.service_url,
        channel_id=activity.channel_id,
        bot_id=activity.recipient.id if activity.recipient else None,
        tenant_id=getattr(conversation, "tenant_id", None),
    )


class AuditBot(ActivityHandler):  # type: ignore[misc]
    """Routes Teams activities from the audit roster to commands and the audit dialog."""

    def __init__(
        self,
        *,
        database: Database,
        framework: Framework,
        conversation_state: ConversationState,
        zone: ZoneInfo,
        support_contact: str,
        clock: Callable[[], datetime],
        links: LinkMaker | None = None,
        rate_limit: MessageRateLimit | None = None,
        on_rate_limited: Callable[[], None] | None = None,
        reports: ReportService | None = None,
        longest_report: int = TEN_YEARS,
    ) -> None:
        super().__init__()
        self._reports = reports or ReportService(
            database=database, framework=framework, zone=zone, clock=clock
        )
        self._longest_report = longest_report
        self._rate_limit = rate_limit or MessageRateLimit(20, 10)
        self._presses = RepeatedPresses()
        self._one_turn_at_a_time = OneTurnAtATime()
        self._on_rate_limited = on_rate_limited or (lambda: None)
        self._links = links or LinkMaker(
            public_url="http://localhost:3978",
            secret=secrets.token_urlsafe(32),
            minutes=15,
            clock=clock,
        )
        self._database = database
        self._framework = framework
        self._conversation_state = conversation_state
        self._zone = zone
        self._support_contact = support_contact
        self._clock = clock
        self._dialogs = DialogSet(conversation_state.create_property("DialogState"))
        self._audit_dialog = AuditDialog(
            database=database, framework=framework, zone=zone, clock=clock
        )
        self._moderation_dialog = ModerationDialog(
            database=database, framework=framework, zone=zone, clock=clock
        )
        self._samples = Samples(database=database, framework=framework, zone=zone)
        self._refresh = CardRefresh(database, framework, zone, self._samples)
        self._dialogs.add(self._audit_dialog)
        self._dialogs.add(self._moderation_dialog)
        self._report_chat = ReportChat(
            database=database, framework=framework, reports=self._reports, links=self._links,
            longest_report=longest_report,
        )  # fmt: skip
        self._board_pack = BoardPackChat(
            database=database, framework=framework, zone=zone, clock=clock, links=self._links
        )

    async def on_turn(self, turn_context: TurnContext) -> None:
        """Handle the turn (within each person's message limit), then save the dialog state."""
        activity = turn_context.activity
        # A press of a card's button counts as a message; Teams' own `refresh` does not.
        pressed = is_card_action(turn_context) and not is_refresh(activity)
        if activity.type == ActivityTypes.message or pressed:
            sender = activity.from_property
            person = (sender.aad_object_id or sender.id or "") if sender else ""
            allowed, tell = self._rate_limit.allow(person)
            if not allowed:
                self._on_rate_limited()
                log.info("a person went over the message limit; message dropped")
                slow_down = (
                    "You are sending messages faster than I can keep up with. Please wait "
                    "a few seconds and try again; nothing you saved is lost."
                )
                if pressed:  # the card stays as it is, with what was typed on it
                    answer = error_response(slow_down)
                    await turn_context.send_activity(
                        Activity(type=ActivityTypes.invoke_response, value=answer)
                    )
                elif tell:
                    await turn_context.send_activity(slow_down)
                return
            # A press answered in place is not repeated: the card pressed is already replaced.
            repeatable = not pressed and activity.value is not None
            if repeatable and not self._presses.allow(press_of(activity)):
                log.info("a repeated press of one card was dropped")
                return
        chat = activity.conversation.id if activity.conversation else ""
        async with self._one_turn_at_a_time.turn(str(chat or "")):
            await super().on_turn(turn_context)
            await self._conversation_state.save_changes(turn_context)

    # -- installation -------------------------------------------------------------------

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        """Remember how to reach the person, and greet them."""
        if turn_context.activity.conversation.conversation_type not in (None, "personal"):
            await turn_context.send_activity(
                "I work in a personal chat only. Open me from the Apps list to do your audits."
            )
            return
        staff = await self._remember_chat_then_identify(turn_context)
        if staff is None:
            await turn_context.send_activity(self._refusal())
            return
        outstanding = await self._outstanding(staff)
        await turn_context.send_activity(
            card_message(await self._help_card(staff, greeting=True, outstanding=len(outstanding)))
        )
        if not await self._wake_waiting(staff) and outstanding:
            await self._send_audit_list(turn_context, staff)

    async def _wake_waiting(self, staff: Staff) -> int:
        """Hand the messages queued before the person had the app to the sender; count them.

        The sender delivers each once, in order, within Teams' limits: sent from this turn,
        more than a few would trip the chat's rate limit.
        """
        assert staff.id is not None
        async with self._database.session() as session:
            waiting = await outbox.wake(session=session, recipient_id=staff.id)
        if waiting:
            log.info("staff %s has the app now; %d waiting messages go out", staff.id, waiting)
        return waiting

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        """Stop messaging someone who removed the app."""
        aad_id = turn_context.activity.from_property.aad_object_id
        if aad_id:
            async with self._database.session() as session:
                await roster.forget_installation(session=session, aad_object_id=aad_id)
            log.info("app removed by a user; proactive messages to them stop")

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        """Answer a button pressed on a card with the card that takes its place; refuse others.

        botbuilder would answer an invoke it has no handler for with 501, a server error.
        """
        if is_card_action(turn_context):
            return await self._on_card_action(turn_context)
        log.info("refused an invoke activity (%s)", str(turn_context.activity.name)[:60])
        return InvokeResponse(status=400, body={"error": "this bot does not handle invokes"})

    async def _on_card_action(self, turn_context: TurnContext) -> InvokeResponse:
        """Do what an `Action.Execute` button asks, answered in place: no call to Teams."""
        pressed = card_action_of(turn_context.activity)
        if pressed is None:
            log.info("refused a card action that could not be read")
            return error_response("That card sent something I can't read.")
        staff = await self._identify_then_remember_new_chat(turn_context)
        if staff is None:
            return card_response(notice_card(self._refusal()))
        turn_context.turn_state[STAFF_KEY] = staff
        try:
            submission = parse_submission(pressed.data)
        except SubmissionError as error:
            log.info("refused a card action that could not be read")
            return error_response(str(error))
        if isinstance(submission, AuditRefresh | SampleRefresh):
            card = await self._refresh.card(staff, submission)
            return card_response(card) if card else error_response("That card is not yours.")
        await self._on_submission(await self._dialogs.create_context(turn_context), submission)
        card = card_in_place(turn_context)
        return card_response(card) if card is not None else empty_response()

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        """Store the conversation reference when the bot joins a personal chat."""
        if turn_context.activity.conversation.conversation_type not in (None, "personal"):
            return
        bot_id = turn_context.activity.recipient.id
        if any(member.id == bot_id for member in members_added):
            await self._remember_chat_then_identify(turn_context)

    # -- messages -------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        """Answer a typed command or a card submit from someone on the roster."""
        staff = await self._identify_then_remember_new_chat(turn_context)
        if staff is None:
            await turn_context.send_activity(self._refusal())
            return
        turn_context.turn_state[STAFF_KEY] = staff
        dialog_context = await self._dialogs.create_context(turn_context)
        value = turn_context.activity.value
        if value is not None:
            await self._on_card_submit(dialog_context, value)
            return
        await self._run(dialog_context, staff, parse_command(turn_context.activity.text))

    async def _on_card_submit(self, dialog_context: DialogContext, value: object) -> None:
        try:
            submission = parse_submission(value)
        except SubmissionError as error:
            log.info("refused a card submit that could not be read")
            await dialog_context.context.send_activity(str(error))
            return
        await self._on_submission(dialog_context, submission)

    async def _on_submission(
        self, dialog_context: DialogContext, submission: CardSubmission
    ) -> None:
        context = dialog_context.context
        staff: Staff = context.turn_state[STAFF_KEY]
        if isinstance(submission, RunCommand):
            await self._run(dialog_context, staff, Command(submission.command))
        elif isinstance(submission, OpenAudit):
            await dialog_context.cancel_all_dialogs()
            await dialog_context.begin_dialog(
                self._audit_dialog.id, {"audit_id": submission.audit_id}
            )
        elif isinstance(submission, NewAudit):
            await self._start_new_audit(dialog_context, staff, submission)
        elif isinstance(submission, DownloadAudit):
            await self._report_chat.send_download_links(context, staff, submission.audit_id)
        elif isinstance(submission, BoardPackAnswer):
            await self._board_pack.answer(context, staff, submission)
        elif isinstance(submission, ClaimModeration | OpenModeration | ModerationAnswer):
            context.turn_state[MODERATION_KEY] = submission
            # The sample card whose Claim or Moderate was pressed, shown afresh afterwards so
            # it never offers what can no longer be done.
            sample_card: str | None = None
            if self._in(dialog_context, self._moderation_dialog) and isinstance(
                submission, ModerationAnswer
            ):
                if submission.nav == "submit":
                    sample_card = dialog_context.active_dialog.state.get("sample_card")
                await dialog_context.continue_dialog()
                if sample_card and not await self._samples.moderated(submission.audit_id):
                    sample_card = None  # not submitted (something was missing): nothing new
            else:
                if not isinstance(submission, ModerationAnswer):
                    sample_card = context.activity.reply_to_id
                await dialog_context.cancel_all_dialogs()
                await dialog_context.begin_dialog(
                    self._moderation_dialog.id, {"action": submission, "sample_card": sample_card}
                )
            if sample_card and is_moderator(self._framework, staff):
                if is_card_action(context) and sample_card == context.activity.reply_to_id:
                    # The sample card pressed comes back showing who now holds each audit.
                    card = await self._samples.card_holding(staff, submission.audit_id)
                    if card is not None:
                        show_in_place(context, card)
                else:
                    await self._samples.update_in_chat(
                        context, staff, submission.audit_id, sample_card
                    )
        elif isinstance(submission, AuditRefresh | SampleRefresh):
            log.info("a card's refresh came as a message; nothing to do")
        else:
            context.turn_state[ANSWER_KEY] = submission
            if self._in_audit(dialog_context):
                await dialog_context.continue_dialog()
            else:
                await dialog_context.begin_dialog(
                    self._audit_dialog.id,
                    {"audit_id": submission.audit_id, "answer": submission},
                )

    async def _run(self, dialog_context: DialogContext, staff: Staff, command: Command) -> None:
        context = dialog_context.context
        if command is Command.MY_AUDITS:
            await self._send_audit_list(context, staff)
        elif command is Command.RESUME:
            await self._resume(dialog_context, staff)
        elif command is Command.NEW_AUDIT:
            await context.send_activity(card_message(self._new_audit_card()))
        elif command is Command.MODERATION:
            await self._send_moderation_samples(context, staff)
        elif command is Command.REPORT:
            await self._report_chat.send_report_summary(context, staff)
        elif command is Command.BOARD_PACK:
            await self._board_pack.open(context, staff, clean_command(context.activity.text))
        elif command is Command.CANCEL:
            if self._in_audit(dialog_context):
                await self._audit_dialog.stop(dialog_context)
                await dialog_context.cancel_all_dialogs()
                await context.send_activity(
                    "Stopped. Your answers so far are saved: type **resume** to carry on."
                )
            elif dialog_context.active_dialog is not None:
                await dialog_context.cancel_all_dialogs()
                await context.send_activity(
                    "Stopped. Your claim and the views you saved are kept: type **moderation** "
                    "to carry on."
                )
            else:
                await context.send_activity(
                    "There is nothing to cancel. Type **my audits** to see your audits."
                )
        elif command is Command.UNKNOWN and self._in_audit(dialog_context):
            # A short hint, not the help card: "the latest card" must stay the audit's.
            await context.send_activity(
                "Sorry, I didn't understand that. You are in the middle of an audit: answer on "
                "its latest card (type **resume** to see it again), or type **cancel** to stop; "
                "your answers are kept."
            )
        elif command is Command.UNKNOWN and self._in(dialog_context, self._moderation_dialog):
            await context.send_activity(
                "Sorry, I didn't understand that. You are moderating an audit: use its "
                "moderation card (type **moderation** to see the sample), or type **cancel**; "
                "your claim and saved views are kept."
            )
        else:
            if command is Command.UNKNOWN:
                await context.send_activity("Sorry, I didn't understand that.")
            outstanding = await self._outstanding(staff)
            help_ = await self._help_card(staff, greeting=False, outstanding=len(outstanding))
            await context.send_activity(card_message(help_))

    async def _help_card(
        self, staff: Staff, *, greeting: bool, outstanding: int
    ) -> dict[str, object]:
        """Return the help card listing the commands this person may use."""
        return help_card(
            name=staff.name, greeting=greeting, outstanding=outstanding,
            moderator=is_moderator(self._framework, staff),
            prepares_pack=await self._board_pack.owns(staff),
        )  # fmt: skip

    def _new_audit_card(self, problems: list[str] | None = None) -> dict[str, object]:
        return new_audit_card(
            standards=[(s.number, s.title) for s in self._framework.standards], problems=problems
        )

    async def _start_new_audit(
        self, dialog_context: DialogContext, staff: Staff, submission: NewAudit
    ) -> None:
        context = dialog_context.context
        standard = (
            self._framework.standard(int(submission.standard))
            if submission.standard.isdigit()
            else None
        )
        problems = []
        if standard is None:
            problems.append("Choose the practice standard to audit.")
        elif standard.subject == "supervision" and submission.what == "other":
            problems.append(
                "An extra supervision audit is of your own supervision records; choose the first "
                "option."
            )
        if problems or standard is None:
            await context.send_activity(card_message(self._new_audit_card(problems)))
            return
        today = self._clock().astimezone(self._zone).date()
        kind = AuditKind.SELF if submission.what != "other" else AuditKind.SAMPLED
        async with self._database.session() as session:
            audit = await audit_store.create_audit_request(
                session=session,
                auditor=staff,
                standard=standard,
                kind=kind,
                month=f"{today:%Y-%m}",
                due_on=last_working_day(today.year, today.month),
                framework_version=self._framework.version,
                subject=staff if kind is AuditKind.SELF else None,
                note="voluntary",
                voluntary=True,
            )
        log.info("staff %s started voluntary audit %s", staff.id, audit.id)
        await dialog_context.cancel_all_dialogs()
        await dialog_context.begin_dialog(self._audit_dialog.id, {"audit_id": audit.id})

    async def _send_moderation_samples(self, context: TurnContext, staff: Staff) -> None:
        if not is_moderator(self._framework, staff):
            await context.send_activity(
                "Moderation is done by moderators (Learning and Development Advanced "
                "Practitioners). Type **my audits** to see your audits."
            )
            return
        today = self._clock().astimezone(self._zone).date()
        cards = await self._samples.open_cards(staff, today)
        for card in cards:
            await context.send_activity(card_message(card))
        if not cards:
            await context.send_activity("There are no audits to moderate at the moment.")

    async def _resume(self, dialog_context: DialogContext, staff: Staff) -> None:
        audit_id: int | None = None
        if self._in_audit(dialog_context):
            audit_id = dialog_context.active_dialog.state.get("audit_id")
        if audit_id is None:
            outstanding = await self._outstanding(staff)
            started = [a for a in outstanding if a.status == AuditStatus.IN_PROGRESS]
            pick = max(started, key=lambda a: a.updated_at) if started else None
            pick = pick or (outstanding[0] if outstanding else None)
            audit_id = pick.id if pick else None
        if audit_id is None:
            await dialog_context.context.send_activity(
                "You have no audits to carry on with. Type **my audits** to see your audits."
            )
            return
        await dialog_context.cancel_all_dialogs()
        await dialog_context.begin_dialog(self._audit_dialog.id, {"audit_id": audit_id})

    async def _send_audit_list(self, context: TurnContext, staff: Staff) -> ResourceResponse | None:
        assert staff.id is not None
        since = self._clock() - RECENTLY_SUBMITTED
        entries = []
        async with self._database.session() as session:
            for audit in await audit_store.audits_of_auditor(
                session=session, auditor_id=staff.id, submitted_since=since
            ):
                standard = self._framework.standard(audit.standard)
                assert audit.id is not None
                detail = await audit_store.audit_detail(session=session, audit_id=audit.id)
                if standard is None or detail is None:
                    continue
                entries.append(list_entry(detail, standard, self._framework, self._zone))
        return await context.send_activity(card_message(my_audits_card(entries)))

    # -- identity ------------------------------------------------------------------------

    def _in_audit(self, dialog_context: DialogContext) -> bool:
        return self._in(dialog_context, self._audit_dialog)

    @staticmethod
    def _in(dialog_context: DialogContext, dialog: Dialog) -> bool:
        active = dialog_context.active_dialog
        return active is not None and active.id == dialog.id

    async def _outstanding(self, staff: Staff) -> list[AuditRequest]:
        assert staff.id is not None
        async with self._database.session() as session:
            return await audit_store.audits_of_auditor(session=session, auditor_id=staff.id)

    async def _identify_then_remember_new_chat(self, turn_context: TurnContext) -> Staff | None:
        """Return the active member of staff sending this, storing their chat if it is new."""
        activity = turn_context.activity
        aad_id = activity.from_property.aad_object_id if activity.from_property else None
        if not aad_id:
            return None
        # One query and one transaction: every message needs the person and their chat.
        async with self._database.session() as session:
            staff, stored = await roster.staff_and_conversation_by_aad_id(
                session=session, aad_object_id=aad_id
            )
            if staff is None or not staff.active:
                log.info("refused a user who is not an active member of the roster")
                return None
            if (
                stored is not None
                and stored.conversation_id == activity.conversation.id
                and stored.service_url == activity.service_url
            ):
                return staff
            if activity.conversation.conversation_type not in (None, "personal"):
                return staff
            assert staff.aad_object_id is not None
            if not await roster.remember_conversation(
                session=session,
                aad_object_id=staff.aad_object_id,
                reference=_chat_reference(activity),
            ):
                log.info("an activity's conversation reference was incomplete; not stored")
            elif stored is None:
                # Writing before Teams told us of the installation: what waited for it goes.
                assert staff.id is not None
                await outbox.wake(session=session, recipient_id=staff.id)
        return staff

    async def _remember_chat_then_identify(self, turn_context: TurnContext) -> Staff | None:
        """Store this chat (on installation), then return its active member of staff, if any."""
        aad_id = turn_context.activity.from_property.aad_object_id
        if not aad_id:
            return None
        reference = _chat_reference(turn_context.activity)
        async with self._database.session() as session:
            if not await roster.remember_conversation(
                session=session, aad_object_id=aad_id, reference=reference
            ):
                log.info("an activity's conversation reference was incomplete; not stored")
            staff = await roster.staff_by_aad_id(session=session, aad_object_id=aad_id)
        return staff if staff is not None and staff.active else None

    def _refusal(self) -> str:
        return (
            "I can't find you on the Adult Social Care audit roster, so I can't give you audits "
            f"or show you any. If you think you should be on it, please contact "
            f"{self._support_contact}."
        )
