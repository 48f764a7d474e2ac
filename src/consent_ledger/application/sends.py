"""The send log: every message sent, recorded in the person's record with its decision.

A send is decided and recorded in one attempt on the person's record: the record is
loaded, the send judged by every rule (consent, the service window, quiet hours, the
frequency limits over the sends already recorded), and the ``MessageSent`` event saved at
the record's next version. Two senders racing for the last place under a limit save at the
same version: one wins, the other loads the record again, sees the winner's send, and is
denied. Each message id is recorded once, kept only as a keyed hash, in the same
transaction as the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consent_ledger.application.recording import Recorded
from consent_ledger.model.consent_record import ConsentRecord
from consent_ledger.model.sends import SendFacts

if TYPE_CHECKING:
    from collections.abc import Callable

    from consent_ledger.application.books import Books
    from consent_ledger.application.catalogue import Catalogue
    from consent_ledger.application.decisions import SendingDecisions
    from consent_ledger.model.commands import RecordSend
    from consent_ledger.model.taxonomy import TemplateCategory
    from consent_ledger.sending.eligibility import Decision


@dataclass(frozen=True)
class SendOutcome:
    """What recording a send did: the decision it rests on, and the event (if recorded).

    ``recorded`` is None when the send was only asked for if allowed and was denied, or
    when the message was recorded before (``duplicate``: then ``earlier`` is that event).
    """

    decision: Decision | None
    recorded: Recorded | None
    duplicate: bool = False
    earlier: ConsentRecord.MessageSent | None = None


class SendLog:
    """Records sends, each with the decision it rested on, once per message id."""

    def __init__(
        self, books: Books, catalogue: Callable[[], Catalogue], decisions: SendingDecisions
    ) -> None:
        """Work on ``books``; templates' categories from the catalogue; rules from ``decisions``."""
        self._books = books
        self._catalogue = catalogue
        self._decisions = decisions

    def record_send(self, command: RecordSend, *, only_if_allowed: bool = False) -> SendOutcome:
        """Decide the send by what the ledger knows and record it with that decision.

        ``only_if_allowed``: record it only if it is allowed (a send reserved before it is
        made: ``check --record``); a send already made is recorded whatever the decision,
        as the evidence of what happened.

        Raises:
            BusinessNotFoundError: the business is not registered.
            InvalidInputError: the template's category is not recorded for the send's time.
            ConcurrentUpdateError: other writers kept winning until the deadline.
        """
        self._catalogue().business(command.business_id)
        template = self._template_category(command)
        key = self._books.signal_key(f"sent:{command.message_id}")

        def attempt() -> SendOutcome:
            if self._books.recorder.is_ingested(key):
                return self._earlier(command, key.hex())
            record, new_subject = self._books.load_or_start(command.business_id, command.identifier)
            decision = self._decide(record if new_subject is None else None, command, template)
            if only_if_allowed and not decision.allowed:
                return SendOutcome(decision, None)
            record.record_send(
                _facts(command, decision, key.hex()), provenance=command.provenance()
            )
            self._books.save(
                record, new_subjects=[new_subject] if new_subject else [], signals=[key]
            )
            last = record.changes[-1]
            recorded = Recorded(
                subject_id=record.id,
                version=record.version,
                event_type=type(last).__name__,
                recorded_at=last.timestamp,
                new_subject=new_subject is not None,
            )
            return SendOutcome(decision, recorded)

        what = f"the consent record of {command.identifier}"
        return self._books.until_saved(what, attempt, patient=True)

    def _decide(
        self,
        record: ConsentRecord | None,
        command: RecordSend,
        template: TemplateCategory | str | None,
    ) -> Decision:
        return self._decisions.decide_on_record(
            record,
            command.identifier,
            business_id=command.business_id,
            category=command.category,
            channel=command.channel,
            sender=command.sender,
            template_category=template,
            policy=command.policy,
            at=command.occurred_at,
        )

    def _template_category(self, command: RecordSend) -> TemplateCategory | str | None:
        """The template category of the send: the template's, in force when it was sent."""
        if command.template_name is None:
            return command.template_category
        template = (command.template_name, command.template_language or "")
        return self._catalogue().category_of_send(
            command.business_id, template, command.occurred_at
        )

    def _earlier(self, command: RecordSend, message: str) -> SendOutcome:
        """The outcome of a message recorded before: that event, nothing new."""
        subject_id = self._books.find_subject(command.business_id, command.identifier)
        record = None if subject_id is None else self._books.consent_record(subject_id)
        earlier = next(
            (
                change
                for change in (record.changes if record is not None else [])
                if isinstance(change, ConsentRecord.MessageSent) and change.message == message
            ),
            None,
        )
        return SendOutcome(None, None, duplicate=True, earlier=earlier)


def _facts(command: RecordSend, decision: Decision, message: str) -> SendFacts:
    request = decision.request
    return SendFacts(
        message=message,
        channel=request.channel,
        category=request.category,
        sender=request.sender,
        template_name=command.template_name,
        template_language=command.template_language,
        template_category=request.template_category,
        policy=decision.policy,
        allowed=decision.allowed,
        reason=str(decision.reason),
        rests_on=decision.event_version,
    )
