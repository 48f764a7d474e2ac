"""The ledger's append-only log, for readers that need no key: views, replays, verifiers.

Events hold personal data only sealed, so the whole log can be read, replayed and
projected without the master key. Positions are the log's notification ids: they only
grow, may have gaps (PostgreSQL sequences), and order events as they were committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypeAlias, cast

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.utils import Environment

from consent_ledger.exceptions import NotALedgerError
from consent_ledger.storage.mapper import OrjsonTranscoder, PydanticMapper
from consent_ledger.storage.sqlite import SQLiteLedgerRecorder
from consent_ledger.storage.stores import PostgresStore, Store, parse_store

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path
    from types import TracebackType
    from uuid import UUID

    from eventsourcing.persistence import Notification

    from consent_ledger.storage.recorder import LedgerRecorder

APP_NAME = "ConsentLedger"


BEFORE_ALL = -(2**63)
"""A position below every position: reading after it reads rows slipped in at 0 or below."""

StoredRow: TypeAlias = tuple[int, str, int, str, bytes]
"""An event as stored: (position, stream id, stream version, topic, state bytes)."""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event at its position in the log."""

    position: int
    event: Any


class EventLog:
    """Reads a ledger's log in order, decoding events; writes nothing."""

    def __init__(self, store: Store, recorder: ApplicationRecorder, factory: Any = None) -> None:
        """Read the log of ``store`` through ``recorder``; prefer :meth:`open`."""
        self.store = store
        self.recorder = recorder
        self.mapper = PydanticMapper(transcoder=OrjsonTranscoder())
        self._factory = factory
        self._ledger_id: str | None = None

    @classmethod
    def open(cls, db: str | Path) -> EventLog:
        """Open the log of the ledger at ``db`` for reading.

        Raises:
            LedgerNotFoundError: there is no ledger at ``db``.
            NotALedgerError: ``db`` holds something else.
        """
        store = parse_store(db)
        store.check_is_ledger()
        factory = InfrastructureFactory.construct(Environment(APP_NAME, store.env(create=False)))
        return cls(store, factory.application_recorder(), factory)

    @property
    def ledger_id(self) -> str:
        """The id of the ledger this log belongs to."""
        if self._ledger_id is None:
            meta = cast("LedgerRecorder", self.recorder).select_meta()
            if "ledger_id" not in meta:
                msg = f"{self.store} is not a consent ledger"
                raise NotALedgerError(msg)
            self._ledger_id = meta["ledger_id"]
        return self._ledger_id

    @property
    def is_postgres(self) -> bool:
        """Whether the log is in PostgreSQL (where readers can wait for notifications)."""
        return isinstance(self.store, PostgresStore)

    def head(self) -> int:
        """The position of the last event, 0 for an empty log."""
        return self.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` events after position ``after``, in order, decoded."""
        to_event = self.mapper.to_domain_event
        return [LoggedEvent(n.id, to_event(n)) for n in self.read_raw(after, limit)]

    def read_raw(self, after: int, limit: int) -> Sequence[Notification]:
        """Up to ``limit`` stored events after position ``after``, in order, as stored."""
        if isinstance(self.recorder, SQLiteLedgerRecorder):
            return self.recorder.select_log(after, limit)
        return self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    def read_stored(self, after: int, limit: int) -> list[StoredRow]:
        """Up to ``limit`` events after position ``after`` exactly as stored, not decoded.

        What tamper evidence hashes and exports copy: no model is built, so this reads
        hundreds of thousands of events a second.
        """
        if isinstance(self.recorder, SQLiteLedgerRecorder):
            return self.recorder.select_rows(after, limit)
        return [
            (n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
            for n in self.read_raw(after, limit)
        ]

    def read_by_stream(self, after: tuple[str, int] | None, limit: int) -> list[StoredRow]:
        """Up to ``limit`` events exactly as stored, in stream order, after ``after``.

        Streams come in id order, each in version order; ``after`` is the (stream id,
        version) of the last event read (None: from the start). What verify reads to
        compare derived state with the log one stream (one person) at a time.
        """
        return cast("LedgerRecorder", self.recorder).select_rows_by_stream(after, limit)

    def read_stream(self, stream_id: UUID) -> list[StoredRow]:
        """One stream's events (a person's consent record, a notice...) exactly as stored."""
        return cast("LedgerRecorder", self.recorder).select_stream_rows(stream_id)

    def lookups(self, subject_ids: Sequence[str]) -> list[tuple[bytes, str]]:
        """The keyed-HMAC lookups under which subjects are found, as (lookup, str(uuid)).

        Not part of the log: the ledger's lookup index, which views may copy (it reveals
        nobody without the master key) so that a check needs one round trip.
        """
        return cast("LedgerRecorder", self.recorder).select_lookups(subject_ids)

    def __iter__(self) -> Iterator[LoggedEvent]:
        """Every event, in order, read in pages."""
        after = 0
        while page := self.read(after, 1000):
            yield from page
            after = page[-1].position

    def close(self) -> None:
        """Release the log's connections."""
        if self._factory is not None:
            self._factory.close()

    def __enter__(self) -> Self:
        """Use the log in a ``with`` block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the log."""
        self.close()


READ_PAGE = 10_000
"""Stored events read at a time by :func:`stored_events`."""
_STREAM_TYPES: dict[str, tuple[str, str]] = {}  # topic -> (stream type, event type)


def stored_events(
    log: EventLog, positions: Iterable[int] | None = None, *, page: int = READ_PAGE
) -> Iterator[StoredRow]:
    """Every stored event in log order, or only those at ``positions`` (ascending).

    Reads a page at a time and keeps nothing else: selected positions are walked in step
    with the log.
    """
    wanted = iter(positions) if positions is not None else None
    next_wanted = next(wanted, None) if wanted is not None else None
    after = BEFORE_ALL
    while rows := log.read_stored(after, page):
        after = rows[-1][0]
        if wanted is None:
            yield from rows
            continue
        for row in rows:
            while next_wanted is not None and next_wanted < row[0]:
                next_wanted = next(wanted, None)
            if next_wanted is None:
                return
            if next_wanted == row[0]:
                yield row


def event_types(topic: str) -> tuple[str, str]:
    """(stream type, event type) of a topic such as ``consent-ledger:ConsentRecord.OptedIn``."""
    names = _STREAM_TYPES.get(topic)
    if names is None:
        qualified = topic.rsplit(":", 1)[-1]
        stream, _, event = qualified.rpartition(".")
        names = _STREAM_TYPES[topic] = (stream or qualified, event)
    return names
