"""Queries about one person: who they are to the ledger, their status and their history."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consent_ledger.exceptions import NoticeNotFoundError
from consent_ledger.model.consent_record import ConsentRecord
from consent_ledger.model.history import SubjectHistory, SubjectStatus, history_entry
from consent_ledger.model.identifiers import as_identifier

if TYPE_CHECKING:
    from uuid import UUID

    from consent_ledger.application.books import Books
    from consent_ledger.application.catalogue import Catalogue
    from consent_ledger.model.history import HistoryEntry
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.values import NoticeRef, Sealed


class Queries:
    """Answers what the ledger knows of one person, personal data opened for the caller."""

    def __init__(self, books: Books, catalogue: Catalogue) -> None:
        """Read ``books``; find the notices history entries name in ``catalogue``."""
        self._books = books
        self._catalogue = catalogue

    def find_subject(self, identifier: Identifier | str, *, business_id: str) -> UUID | None:
        """The id of the person's consent record with a business, if they have one."""
        return self._books.find_subject(business_id, as_identifier(identifier))

    def get_status(
        self,
        identifier: Identifier | str,
        *,
        business_id: str,
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> SubjectStatus:
        """A person's consent per channel, category and sender.

        ``at`` is the moment asked about (default now): events that occurred by then count,
        even if recorded later. ``known_at`` limits the events to those recorded by then
        (default: everything recorded so far); ``known_at=T, at=T`` gives what the ledger
        would have answered at T.

        Raises:
            SubjectNotFoundError: the person has no consent record with the business.
        """
        person = as_identifier(identifier)
        record = self._books.consent_record(self._books.require_subject(business_id, person))
        now = datetime.now(UTC)
        at = at or (known_at if known_at is not None and known_at < now else now)
        known_at = known_at or now
        return SubjectStatus(
            subject_id=record.id,
            business_id=record.business_id,
            identifier=str(person),
            at=at,
            known_at=known_at,
            consents=record.status(at, known_at),
            platform=record.platform(at, known_at),
        )

    def reveal_identifier(self, subject_id: UUID) -> str | None:
        """The identifier a person was first recorded under, opened with the master key.

        None when the person is unknown or erased (their data key destroyed).
        """
        data_key = self._books.find_data_key(subject_id)
        first = next(iter(self._books.events(subject_id, lte=1)), None)
        if data_key is None or not isinstance(first, ConsentRecord.SubjectRegistered):
            return None
        value: str = data_key.open(first.identifier, version=1, purpose="identifier")
        return value

    def get_history(self, identifier: Identifier | str, *, business_id: str) -> SubjectHistory:
        """Every event of a person's consent record, oldest first, personal data opened.

        Raises:
            SubjectNotFoundError: the person has no consent record with the business.
        """
        subject_id = self._books.require_subject(business_id, as_identifier(identifier))
        data_key = self._books.find_data_key(subject_id)

        def unseal(sealed: Sealed | None, version: int, purpose: str) -> Any:
            if sealed is None or data_key is None:
                return None
            return data_key.open(sealed, version=version, purpose=purpose)

        events = list(self._books.events(subject_id))
        entries = self._with_notice_times(
            [history_entry(event, unseal) for event in events], business_id
        )
        registered = events[0] if events else None
        return SubjectHistory(
            subject_id=subject_id,
            business_id=business_id,
            identifier=entries[0].identifier if entries else None,
            entries=entries,
            identifier_kind=str(registered.identifier_kind)
            if isinstance(registered, ConsentRecord.SubjectRegistered)
            else None,
        )

    def _with_notice_times(
        self, entries: list[HistoryEntry], business_id: str
    ) -> list[HistoryEntry]:
        """The entries, each naming a notice with the time that notice version was published."""
        published: dict[NoticeRef, datetime] = {}
        for ref in {entry.notice for entry in entries if entry.notice}:
            with contextlib.suppress(NoticeNotFoundError):  # a notice gone is shown as such
                notice = self._catalogue.get_notice(business_id, ref.notice_id, ref.version)
                published[ref] = notice.published_at
        return [
            dataclasses.replace(entry, notice_published_at=published.get(entry.notice))
            if entry.notice
            else entry
            for entry in entries
        ]
