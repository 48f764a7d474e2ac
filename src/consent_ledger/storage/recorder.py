"""What the ledger needs of a recorder, besides the event log.

Besides the event log, a ledger keeps three small mutable tables, in the same database:

* ``ledger_meta``: the ledger's id, format and key check;
* ``subject_keys``: each subject's data key, wrapped by the master key (deleting a row
  forgets the person);
* ``subject_lookup``: keyed HMAC of (business, identifier) -> subject id.

A new subject's key and lookup rows are written in the same transaction as its first
events, so a subject never exists half-made, and two writers that start the same new
subject at once collide on the lookup key: one wins, the other retries and finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from uuid import UUID


@dataclass(frozen=True)
class NewSubject:
    """The rows a new subject needs beside its first events."""

    subject_id: UUID
    lookup: bytes
    wrapped_key: bytes


class LedgerRecorder(Protocol):
    """What the ledger needs from a recorder beyond the event log."""

    def select_meta(self) -> dict[str, str]:
        """The ledger's metadata."""

    def write_meta(self, values: Mapping[str, str]) -> None:
        """Add or replace metadata."""

    def find_subject(self, lookup: bytes) -> UUID | None:
        """The subject found under a lookup key, if any."""

    def select_wrapped_key(self, subject_id: UUID) -> bytes | None:
        """A subject's wrapped data key, or None if it was never made or was destroyed."""

    def select_wrapped_keys(self, subject_ids: Sequence[str]) -> dict[str, bytes]:
        """The wrapped data keys of many subjects (those that have one).

        Subjects are named, and keys returned, by their ids as 32 hex digits (``UUID.hex``).
        """

    def select_lookups(self, subject_ids: Sequence[str]) -> list[tuple[bytes, str]]:
        """The (lookup, str(uuid)) pairs under which these subjects are found."""

    def create_signals_table(self) -> None:
        """Create the table of ingested signals if this ledger predates it."""

    def is_ingested(self, signal: bytes) -> bool:
        """Whether a signal (by its keyed hash) was ingested before."""

    def mark_ingested(self, signal: bytes) -> bool:
        """Remember a signal that records no event; False if it was ingested before."""

    def select_stream_rows(self, stream_id: UUID) -> list[tuple[int, str, int, str, bytes]]:
        """One stream's stored events in order, as (position, id, version, topic, state)."""

    def select_rows_by_stream(
        self, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        """Up to ``limit`` stored events after (stream id, version) ``after``, in stream order."""

    def select_lookups_between(self, low: str | None, high: str | None) -> list[tuple[bytes, str]]:
        """The (lookup, str(uuid)) pairs of subjects with ids in (``low``, ``high``]."""

    def select_lookup_subjects(self, lookups: Sequence[bytes]) -> dict[bytes, str]:
        """Who each of ``lookups`` finds (those that find anyone), as str(uuid)."""

    def select_stream_starts(self, stream_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """The position and topic of each stream's first event (of those that exist)."""


def now_text() -> str:
    """The current time as stored in text columns."""
    return datetime.now(UTC).isoformat()
