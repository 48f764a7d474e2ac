"""Signals from outside (webhook items): each taken at most once, and people's identifiers linked.

A platform delivers the same item more than once, and names one person by several
identifiers (a phone number, a WhatsApp id, a business-scoped user id). The ledger keeps
only a keyed hash of each item it took, written in the same transaction as what the item
recorded, and links the identifiers an item names to the one person they find.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consent_ledger.exceptions import IdentityConflictError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from consent_ledger.application.books import Books
    from consent_ledger.application.catalogue import Catalogue
    from consent_ledger.application.recording import Recorded, Recording
    from consent_ledger.model.commands import (
        Evidence,
        OptIn,
        OptOut,
        RecordPlatformPreference,
        RecordSignal,
    )
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.values import Provenance


class Signals:
    """Takes each external signal once and keeps one person one subject."""

    def __init__(self, books: Books, catalogue: Catalogue, recording: Recording) -> None:
        """Work on ``books``; record consent through ``recording``."""
        self._books = books
        self._catalogue = catalogue
        self._recording = recording

    def record_once(
        self, command: OptIn | OptOut | RecordPlatformPreference | RecordSignal, *, signal: str
    ) -> Recorded | None:
        """Record ``command`` for an external signal (a webhook item), at most once.

        ``signal`` names the signal (a WhatsApp message id, say); the ledger keeps only a
        keyed hash of it, written in the same transaction as the events, so a signal
        replayed (a webhook delivered twice) records nothing. Returns None then.

        Raises:
            NoticeNotFoundError: as :meth:`Recording.opt_in`.
            NoticeRuleError: as :meth:`Recording.opt_in`.
        """
        key = self._books.signal_key(signal)
        if self._books.recorder.is_ingested(key):
            return None
        change = self._recording.change_of(command)
        return self._recording.record_once(command, change, signal=key)

    def note_once(self, signal: str) -> bool:
        """Remember a signal that records no event (a HELP reply, a delivery report).

        Returns False when the signal was seen before.

        Raises:
            LedgerBusyError: the database stayed locked by other writers.
        """
        key = self._books.signal_key(signal)
        return self._books.until_saved(
            "a webhook item", lambda: self._books.recorder.mark_ingested(key), conflicts=False
        )

    def link_identifiers(
        self,
        business_id: str,
        identifiers: Sequence[Identifier],
        *,
        provenance: Provenance,
        evidence: Evidence | None = None,
    ) -> list[Identifier]:
        """Make every one of ``identifiers`` find the person some of them already find.

        Each identifier not yet linked gets an ``IdentifierLinked`` event (sealed, with the
        evidence) and a lookup, in one transaction. Returns the identifiers linked now;
        none when nobody is known by any of them.

        Raises:
            IdentityConflictError: they already find two different people (never merged
                automatically: a person decides that).
        """
        self._catalogue.business(business_id)

        def attempt() -> list[Identifier]:
            person, missing = self._unlinked(business_id, identifiers)
            if person is None or not missing:
                return []
            self._link(person, missing, provenance=provenance, evidence=evidence)
            return [identifier for identifier, _ in missing]

        return self._books.until_saved(f"the consent record of {identifiers[0]}", attempt)

    def _unlinked(
        self, business_id: str, identifiers: Sequence[Identifier]
    ) -> tuple[UUID | None, list[tuple[Identifier, bytes]]]:
        """The one person the identifiers find (if any), and those that do not find them."""
        found = {
            identifier: (lookup, self._books.recorder.find_subject(lookup))
            for identifier in identifiers
            for lookup in [self._books.lookup(business_id, identifier)]
        }
        people = {subject for _, subject in found.values() if subject is not None}
        if len(people) > 1:
            named = ", ".join(str(identifier) for identifier in identifiers)
            msg = f"{named} already belong to {len(people)} different people: not linked"
            raise IdentityConflictError(msg)
        missing = [(i, lookup) for i, (lookup, subject) in found.items() if subject is None]
        return (next(iter(people)) if people else None), missing

    def _link(
        self,
        subject_id: UUID,
        missing: list[tuple[Identifier, bytes]],
        *,
        provenance: Provenance,
        evidence: Evidence | None,
    ) -> None:
        record = self._books.consent_record(subject_id)
        data_key = self._books.data_key(subject_id)
        seal = self._books.sealer(record)
        for identifier, _ in missing:
            record.link_identifier(
                identifier.kind,
                data_key.seal(identifier.value, version=record.version + 1, purpose="identifier"),
                provenance=provenance,
                evidence=seal(evidence, "evidence"),
            )
        self._books.save(record, links=[(lookup, subject_id) for _, lookup in missing])
