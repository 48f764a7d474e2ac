"""The ledger's books: what every application service shares, written once.

Loading an aggregate, finding a person by an identifier, opening their data key, sealing
personal data for the event a record takes next, and saving again when another writer won
the race: the services call these and hold no copy of their own.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from uuid_utils.compat import uuid7

from consent_ledger.exceptions import (
    ConcurrentUpdateError,
    KeyMaterialError,
    LedgerBusyError,
    SubjectNotFoundError,
)
from consent_ledger.privacy.keys import DataKeyCache
from consent_ledger.storage.busy import BUSY_ERRORS, is_busy
from consent_ledger.storage.recorder import NewSubject

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from uuid import UUID

    from eventsourcing.application import Application

    # Imported where used: a check that reads a view never loads a record, nor pydantic.
    from consent_ledger.model.aggregate import Aggregate
    from consent_ledger.model.consent_record import ConsentRecord
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.values import Sealed
    from consent_ledger.privacy.keys import DataKey, KeyRing
    from consent_ledger.storage.recorder import LedgerRecorder

    Seal = Callable[[Any, str], Sealed | None]
    """Seals a value for a purpose ("evidence", "reason"), for the event a record takes next."""

MAX_ATTEMPTS = 10
"""Attempts a command makes before it gives up on a record other writers keep changing."""
WITHDRAWAL_DEADLINE_SECONDS = 30.0
"""How long a withdrawal (opt-out, marketing stop) keeps trying, however many races it loses.

An opt-out is never given up on for losing races: it tries again until it lands, and
only a store that stays locked or contended this long (plus at most one lock wait of
the attempt under way) makes it fail, with nothing recorded.
"""
BACKOFF_SECONDS = 0.002  # doubled after each lost race, with jitter, up to 0.25 s

TAggregate = TypeVar("TAggregate", bound="Aggregate")
T = TypeVar("T")


class Books:
    """A ledger's event store and keys, as its services use them."""

    def __init__(self, app: Application[UUID], keyring: KeyRing) -> None:
        """Keep the application (repository, save, recorder) and the ledger's key ring."""
        self._app = app
        self.keyring = keyring
        self._data_keys = DataKeyCache()
        self._signals_ready = False

    @property
    def recorder(self) -> LedgerRecorder:
        """The recorder, with the ledger's key and lookup tables."""
        return cast("LedgerRecorder", self._app.recorder)

    # Aggregates.

    def find(self, cls: type[TAggregate], aggregate_id: UUID) -> TAggregate | None:
        """The aggregate stored under ``aggregate_id``, if any.

        Raises:
            TypeError: the id belongs to an aggregate of another kind.
        """
        try:
            aggregate: object = self._app.repository.get(aggregate_id, projector_func=_replay)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            msg = f"aggregate {aggregate_id} is a {type(aggregate).__name__}, not a {cls.__name__}"
            raise TypeError(msg)
        return aggregate

    def consent_record(self, subject_id: UUID) -> ConsentRecord:
        """A person's consent record.

        Raises:
            SubjectNotFoundError: there is none under ``subject_id``.
        """
        from consent_ledger.model.consent_record import ConsentRecord  # noqa: PLC0415 (see the imports)

        record = self.find(ConsentRecord, subject_id)
        if record is None:
            msg = f"no consent record {subject_id}"
            raise SubjectNotFoundError(msg)
        return record

    def events(self, subject_id: UUID, *, lte: int | None = None) -> Iterable[Any]:
        """A stream's events in order, up to version ``lte``."""
        return self._app.events.get(subject_id, lte=lte)

    def save(self, *aggregates: Aggregate, **rows: Any) -> None:
        """Store the aggregates' new events, with ``rows`` the recorder writes beside them.

        Raises:
            IntegrityError: another writer stored an event at the same version first.
        """
        self._app.save(*aggregates, **rows)

    def until_saved(
        self, what: str, attempt: Callable[[], T], *, patient: bool = False, conflicts: bool = True
    ) -> T:
        """Run ``attempt`` (load fresh state, change it, save) until its save wins.

        A save that loses a race with another writer raises ``IntegrityError``; one that
        found the database locked by other writers for longer than the lock timeout
        raises a busy ``OperationalError``. Either way nothing was written, and the
        attempt runs again on fresh state after a short, jittered wait, so no event is
        lost. Other errors are not retried.

        ``patient`` (withdrawals): keep trying for :data:`WITHDRAWAL_DEADLINE_SECONDS`
        rather than :data:`MAX_ATTEMPTS` times. ``conflicts=False``: an
        ``IntegrityError`` is not a lost race but an answer (a key taken already), and
        is raised at once; only a busy database is waited out.

        Raises:
            ConcurrentUpdateError: other writers won every attempt.
            LedgerBusyError: the last attempt found the database locked by other writers.
            IntegrityError: with ``conflicts=False``, as ``attempt`` raised it.
        """
        deadline = time.monotonic() + WITHDRAWAL_DEADLINE_SECONDS if patient else None
        attempts = 0
        while True:
            _back_off(attempts)
            attempts += 1
            try:
                return attempt()
            except IntegrityError:
                if not conflicts:
                    raise
                busy = False  # another writer got there first: start again from fresh state
            except BUSY_ERRORS as e:
                if not is_busy(e):
                    raise
                busy = True  # nothing was written: the lock may be free in a moment
            if (attempts >= MAX_ATTEMPTS) if deadline is None else time.monotonic() >= deadline:
                raise _gave_up(what, attempts, busy=busy) from None

    # People.

    def lookup(self, business_id: str, identifier: Identifier) -> bytes:
        """The keyed hash under which a business finds a person by ``identifier``."""
        return self.keyring.lookup(business_id, identifier)

    def find_subject(self, business_id: str, identifier: Identifier) -> UUID | None:
        """The id of the person's consent record with a business, if they have one."""
        return self.recorder.find_subject(self.lookup(business_id, identifier))

    def require_subject(self, business_id: str, identifier: Identifier) -> UUID:
        """The id of the person's consent record with a business.

        Raises:
            SubjectNotFoundError: the person has no consent record with the business.
        """
        subject_id = self.find_subject(business_id, identifier)
        if subject_id is None:
            msg = f"business {business_id!r} has no consent record for {identifier}"
            raise SubjectNotFoundError(msg)
        return subject_id

    def load_or_start(
        self, business_id: str, identifier: Identifier
    ) -> tuple[ConsentRecord, NewSubject | None]:
        """The person's record, or a new one (with the key and lookup rows to save with it)."""
        lookup = self.lookup(business_id, identifier)
        subject_id = self.recorder.find_subject(lookup)
        if subject_id is not None:
            return self.consent_record(subject_id), None
        subject_id = uuid7()
        data_key, wrapped = self.keyring.new_data_key(subject_id)
        self._data_keys.put(data_key)
        sealed = data_key.seal(identifier.value, version=1, purpose="identifier")
        from consent_ledger.model.consent_record import ConsentRecord  # noqa: PLC0415 (see the imports)

        record = ConsentRecord.register(subject_id, business_id, identifier.kind, sealed)
        return record, NewSubject(subject_id=subject_id, lookup=lookup, wrapped_key=wrapped)

    # Personal data.

    def data_key(self, subject_id: UUID) -> DataKey:
        """A person's data key.

        Raises:
            KeyMaterialError: the key is gone (the person's personal data was erased).
        """
        data_key = self.find_data_key(subject_id)
        if data_key is None:
            msg = f"the data key of subject {subject_id} is gone: its personal data was erased"
            raise KeyMaterialError(msg)
        return data_key

    def find_data_key(self, subject_id: UUID) -> DataKey | None:
        """A person's data key, or None when it is gone."""
        data_key = self._data_keys.get(subject_id)
        if data_key is None:
            wrapped = self.recorder.select_wrapped_key(subject_id)
            if wrapped is None:
                return None
            data_key = self.keyring.unwrap(subject_id, wrapped)
            self._data_keys.put(data_key)
        return data_key

    def sealer(self, record: ConsentRecord) -> Seal:
        """Seals values (a pydantic model as its JSON) for the event ``record`` takes next.

        Raises:
            KeyMaterialError: the person's data key is gone.
        """
        from pydantic import BaseModel  # noqa: PLC0415 (see the imports)

        key = self.data_key(record.id)

        def seal(value: Any, purpose: str) -> Sealed | None:
            if value is None:
                return None
            plain = (
                value.model_dump(mode="json", exclude_none=True)
                if isinstance(value, BaseModel)
                else value
            )
            return key.seal(plain, version=record.version + 1, purpose=purpose)

        return seal

    # Signals from outside.

    def signal_key(self, signal: str) -> bytes:
        """The keyed hash under which an external signal (a webhook item) is remembered."""
        if not self._signals_ready:  # ledgers made before signals were ingested lack it
            create = self.recorder.create_signals_table
            self.until_saved("the table of ingested signals", create, conflicts=False)
            self._signals_ready = True
        return self.keyring.signal_key(signal)


def _replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply each event to the aggregate, in order.

    eventsourcing's ``project_aggregate`` without its ``assert isinstance(event,
    CanMutateProtocol)``: a runtime-protocol check that costs about 40 µs an event on
    Python 3.11, most of loading a record. The events here are the domain's own, which
    all mutate.
    """
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _back_off(attempt: int) -> None:
    """Wait before retrying a lost race, so that racing writers spread out."""
    if attempt:
        time.sleep(random.uniform(0, min(0.25, BACKOFF_SECONDS * 2 ** min(attempt, 8))))  # noqa: S311


def _gave_up(what: str, attempts: int, *, busy: bool) -> ConcurrentUpdateError:
    """The error of a command that stopped trying: why, and that nothing was recorded."""
    if busy:
        msg = (
            f"the ledger was busy: its database stayed locked by other writers while "
            f"recording {what} ({attempts} attempts); nothing was recorded: run it again"
        )
        return LedgerBusyError(msg)
    msg = (
        f"{what} was changed by other writers {attempts} times while this command ran; "
        "nothing was recorded: run it again"
    )
    return ConcurrentUpdateError(msg)
