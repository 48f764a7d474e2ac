"""Recording consent: opt-ins, confirmations, opt-outs, category changes, platform stops.

Each command becomes a :data:`Change` to the person's record (what the record is told, with
its personal data sealed for the event it takes next); :meth:`Recording.record` loads the
record, applies the change and saves it, again on fresh state when another writer won.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consent_ledger.exceptions import KeyMaterialError
from consent_ledger.model.commands import (
    ChangeCategories,
    ConfirmOptIn,
    OptIn,
    OptOut,
    RecordPlatformPreference,
    RecordSignal,
)
from consent_ledger.model.consent_record import ConsentRecord

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from consent_ledger.application.books import Books, Seal
    from consent_ledger.application.catalogue import Catalogue
    from consent_ledger.model.commands import ConsentCommand

Change = Callable[[ConsentRecord, "Seal"], None]
"""What a command does to a person's record, given a way to seal personal data."""


@dataclass(frozen=True)
class Recorded:
    """What a consent command wrote: the subject, the event and when it was recorded."""

    subject_id: UUID
    version: int
    event_type: str
    recorded_at: datetime
    new_subject: bool
    left_out: tuple[str, ...] = ()
    """Personal data not recorded because the person's data key is gone ("reason", ...)."""


class Recording:
    """Records what people decide about their consent, one event on their record each."""

    def __init__(self, books: Books, catalogue: Catalogue) -> None:
        """Work on ``books``; find notices and businesses in ``catalogue``."""
        self._books = books
        self._catalogue = catalogue

    def opt_in(self, command: OptIn) -> Recorded:
        """Record an opt-in, backed by the notice the person saw.

        Raises:
            NoticeNotFoundError: the notice (version) was never published.
            NoticeRuleError: the notice does not cover the channel or categories.
        """
        return self.record(command, self.change_of(command))

    def confirm_opt_in(self, command: ConfirmOptIn) -> Recorded:
        """Record the confirmation of an opt-in that awaited it (double opt-in).

        Raises:
            SubjectNotFoundError: the person has no consent record.
            ConsentRuleError: nothing awaited confirmation.
        """
        return self.record(command, self.change_of(command))

    def opt_out(self, command: OptOut) -> Recorded:
        """Record an opt-out. Never refused: a person with no record gets one."""
        return self.record(command, self.change_of(command))

    def record_platform_preference(self, command: RecordPlatformPreference) -> Recorded:
        """Record a marketing stop (or resume) the person made on WhatsApp. Never refused."""
        return self.record(command, self.change_of(command))

    def change_categories(self, command: ChangeCategories) -> Recorded:
        """Record a change that grants some categories and withdraws others.

        Raises:
            NoticeNotFoundError: the notice (version) was never published.
            NoticeRuleError: categories are granted without a notice that covers them.
            ConsentRuleError: nothing changes, or a category is granted and withdrawn.
        """
        return self.record(command, self.change_of(command))

    def change_of(self, command: ConsentCommand) -> Change:
        """What ``command`` does to a person's record.

        Raises:
            NoticeNotFoundError: the notice an opt-in or a change names was never published.
            SubjectNotFoundError: a confirmation names a person with no record.
            UnknownCategoryError: a category is none of the business's.
            CategoryRuleError: a category granted was retired, or is for other channels.
        """
        self._catalogue.check_categories_of(command)
        if isinstance(command, OptIn):
            return self._opting_in(command)
        if isinstance(command, OptOut):
            return _opting_out(command)
        if isinstance(command, ChangeCategories):
            return self._changing(command)
        if isinstance(command, ConfirmOptIn):
            return self._confirming(command)
        if isinstance(command, RecordPlatformPreference):
            return _preferring(command)
        if isinstance(command, RecordSignal):
            return _signalling(command)
        msg = f"not a consent command: {type(command).__name__}"
        raise TypeError(msg)

    def record(self, command: ConsentCommand, change: Change) -> Recorded:
        """Apply ``change`` to the person's record and save it, retrying lost races."""
        recorded = self.record_once(command, change, signal=None)
        assert recorded is not None  # noqa: S101 (only a signal already seen gives None)
        return recorded

    def record_once(
        self, command: ConsentCommand, change: Change, *, signal: bytes | None
    ) -> Recorded | None:
        """:meth:`record`, at most once for ``signal`` (a keyed hash): None if seen before.

        The signal is stored in the same transaction as the event, so a writer that loses
        the race to record the same signal finds it on its next attempt and stops. A
        withdrawal is never given up on for losing races: it tries again until it lands
        (within :data:`~consent_ledger.application.books.WITHDRAWAL_DEADLINE_SECONDS`).
        """
        self._catalogue.business(command.business_id)

        def attempt() -> Recorded | None:
            if signal is not None and self._books.recorder.is_ingested(signal):
                return None
            record, new_subject = self._books.load_or_start(command.business_id, command.identifier)
            seal, left_out = self._sealer(command, record)
            change(record, seal)
            self._books.save(
                record,
                new_subjects=[new_subject] if new_subject else [],
                signals=[signal] if signal is not None else [],
            )
            return _recorded(record, new_subject=new_subject is not None, left_out=left_out)

        return self._books.until_saved(
            f"the consent record of {command.identifier}", attempt, patient=_withdraws(command)
        )

    def _sealer(self, command: ConsentCommand, record: ConsentRecord) -> tuple[Seal, list[str]]:
        """How the change seals personal data, and what it left out for want of a key.

        A withdrawal is never refused: when the person's data key is gone (erased, or
        damaged), an opt-out or a marketing stop is recorded without its personal data
        (reason, evidence), and the purposes left out are listed. Anything else fails.
        """
        left_out: list[str] = []
        try:
            return self._books.sealer(record), left_out
        except KeyMaterialError:
            if not _withdraws(command):
                raise

        def leave_out(value: object, purpose: str) -> None:
            if value is not None:
                left_out.append(purpose)

        return leave_out, left_out

    def _opting_in(self, command: OptIn) -> Change:
        notice = self._catalogue.get_notice(command.business_id, *command.notice)

        def change(record: ConsentRecord, seal: Seal) -> None:
            record.opt_in(
                notice,
                channel=command.channel,
                categories=command.categories,
                sender=command.sender,
                provenance=command.provenance(),
                expires_at=command.expires_at,
                awaiting_confirmation=command.awaiting_confirmation,
                legal_basis=command.legal_basis,
                jurisdiction=command.jurisdiction,
                evidence=seal(command.evidence, "evidence"),
            )

        return change

    def _changing(self, command: ChangeCategories) -> Change:
        notice = (
            self._catalogue.get_notice(command.business_id, *command.notice)
            if command.notice
            else None
        )

        def change(record: ConsentRecord, seal: Seal) -> None:
            record.change_categories(
                notice,
                channel=command.channel,
                granted=command.grant,
                withdrawn=command.withdraw,
                sender=command.sender,
                provenance=command.provenance(),
                expires_at=command.expires_at,
                legal_basis=command.legal_basis,
                jurisdiction=command.jurisdiction,
                evidence=seal(command.evidence, "evidence"),
            )

        return change

    def _confirming(self, command: ConfirmOptIn) -> Change:
        self._books.require_subject(command.business_id, command.identifier)

        def change(record: ConsentRecord, seal: Seal) -> None:
            record.confirm_opt_in(
                channel=command.channel,
                categories=command.categories,
                sender=command.sender,
                provenance=command.provenance(),
                evidence=seal(command.evidence, "evidence"),
            )

        return change


def _withdraws(command: ConsentCommand) -> bool:
    """Whether ``command`` is a withdrawal (an opt-out, a marketing stop): never refused."""
    return isinstance(command, OptOut | RecordPlatformPreference)


def _opting_out(command: OptOut) -> Change:
    def change(record: ConsentRecord, seal: Seal) -> None:
        record.opt_out(
            channel=command.channel,
            categories=command.categories,
            sender=command.sender,
            provenance=command.provenance(),
            reason=seal(command.reason, "reason"),
            evidence=seal(command.evidence, "evidence"),
        )

    return change


def _signalling(command: RecordSignal) -> Change:
    def change(record: ConsentRecord, seal: Seal) -> None:
        record.receive_signal(
            command.signal,
            detail=command.detail,
            code=command.code,
            sender=command.sender,
            provenance=command.provenance(),
            evidence=seal(command.evidence, "evidence"),
        )

    return change


def _preferring(command: RecordPlatformPreference) -> Change:
    def change(record: ConsentRecord, seal: Seal) -> None:
        record.record_platform_preference(
            stopped=command.stopped,
            sender=command.sender,
            provenance=command.provenance(),
            evidence=seal(command.evidence, "evidence"),
        )

    return change


def _recorded(record: ConsentRecord, *, new_subject: bool, left_out: list[str]) -> Recorded:
    last = record.changes[-1]
    return Recorded(
        subject_id=record.id,
        version=record.version,
        event_type=type(last).__name__,
        recorded_at=last.timestamp,
        new_subject=new_subject,
        left_out=tuple(left_out),
    )
