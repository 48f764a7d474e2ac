"""The ledger's lookups (``subject_lookup``), checked against the identifiers records name.

A person is found by a keyed hash (:meth:`KeyRing.lookup
<consent_ledger.privacy.keys.KeyRing.lookup>`) of each identifier their record names: the
one they were registered under and each one linked later, all sealed with their data key.
So the check opens each person's identifiers with the master key and hashes them again;
people whose data key is gone are skipped (see :mod:`consent_ledger.evidence.derived`).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

import orjson

from consent_ledger.evidence.derived import (
    LINKED,
    PAGE_ROWS,
    REGISTERED,
    NamedLookup,
    StreamPage,
    UndecodableEventError,
    decode,
    streams_of,
    undecodable,
)
from consent_ledger.exceptions import KeyMaterialError
from consent_ledger.model.consent_record import ConsentRecord
from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.model.values import Sealed

if TYPE_CHECKING:
    from consent_ledger.evidence.derived import Stream
    from consent_ledger.privacy.keys import KeyRing
    from consent_ledger.storage.log import EventLog, StoredRow
    from consent_ledger.storage.recorder import LedgerRecorder


class _Sealed(NamedTuple):
    """One identifier a record names, as stored: sealed for the event that names it."""

    position: int
    version: int
    kind: str
    nonce: str
    ct: str


class _Record(NamedTuple):
    """A person whose key opens, with the identifiers their record names."""

    subject: str
    wrapped: bytes
    business_id: str
    identifiers: list[_Sealed]


class LookupCheck:
    """The ledger's lookups against the identifiers the records name, a page at a time."""

    def __init__(self, recorder: LedgerRecorder, keyring: KeyRing, log: EventLog) -> None:
        """Read lookups and keys through ``recorder``, hash with ``keyring``, read ``log``."""
        self.recorder = recorder
        self.keyring = keyring
        self.log = log
        self.people = 0
        self.erased = 0

    def check(self, page: StreamPage) -> list[str]:
        """Name the page's lookups (for the views' checks too), then compare the ledger's."""
        problems = self._name(page)
        stored = self.recorder.select_lookups_between(page.low, page.high)
        problems += self._compare(page, stored)
        if problems:  # a person registered or linked while this page was read?
            problems = self._recheck(page)
        return problems

    def _name(self, page: StreamPage) -> list[str]:
        """Work out the lookups each person of the page calls for (page.lookups, .erased)."""
        streams = [stream for stream in page.streams if stream.is_consent_record]
        keys = self.recorder.select_wrapped_keys([s.stream_id.replace("-", "") for s in streams])
        records = []
        for stream in streams:
            wrapped = keys.get(stream.stream_id.replace("-", ""))
            if wrapped is None:
                page.erased.add(stream.stream_id)
            else:
                records.append(self._record(page, stream, wrapped))
        self.erased += len(streams) - len(records)
        self.people += len(records)
        return self._open(page, records)

    def _record(self, page: StreamPage, stream: Stream, wrapped: bytes) -> _Record:
        """The identifiers a record names, from the page's decoded events if it has them."""
        if page.decode_all:
            events = page.decoded(stream)
            named = [_named(row[0], event) for row, event in zip(stream.rows, events, strict=True)]
        else:  # decoding every event is most of what this would cost: read these two kinds
            named = [_stored_named(self.log, row) for row in stream.rows]
        business_id = ""
        identifiers = []
        for business, sealed in filter(None, named):
            business_id = business or business_id
            identifiers.append(sealed)
        return _Record(stream.stream_id, wrapped, business_id, identifiers)

    def _open(self, page: StreamPage, records: list[_Record]) -> list[str]:
        """Open every identifier (all at once, where that works) and hash it as a lookup."""
        first = [(r, i) for r in records for i in r.identifiers[:1] if i.version == 1]
        try:
            values = self.keyring.open_identifiers(
                [r.subject.replace("-", "") for r, _ in first],
                [r.wrapped for r, _ in first],
                [base64.b64decode(i.nonce) for _, i in first],
                [base64.b64decode(i.ct) for _, i in first],
            )
        except KeyMaterialError:  # one does not open: one by one, to name it
            values = None
        opened = {(r.subject, i.version): v for (r, i), v in zip(first, values or (), strict=False)}
        problems = []
        for record in records:
            try:
                page.lookups[record.subject] = [
                    self._lookup(record, sealed, opened.get((record.subject, sealed.version)))
                    for sealed in record.identifiers
                ]
            except KeyMaterialError as e:
                problems.append(f"subject_keys: subject {record.subject}: {e}")
        return problems

    def _lookup(self, record: _Record, sealed: _Sealed, value: str | None) -> NamedLookup:
        if value is None:
            data_key = self.keyring.unwrap(UUID(record.subject), record.wrapped)
            value = data_key.open(
                Sealed(nonce=sealed.nonce, ct=sealed.ct),
                version=sealed.version,
                purpose="identifier",
            )
        identifier = Identifier(IdentifierKind(sealed.kind), str(value))
        return NamedLookup(self.keyring.lookup(record.business_id, identifier), sealed.position)

    def _compare(self, page: StreamPage, stored: list[tuple[bytes, str]]) -> list[str]:
        """The page's lookups as the ledger keeps them, against those the records call for."""
        records = {s.stream_id for s in page.streams if s.is_consent_record}
        owners: dict[bytes, set[str]] = {}  # a lookup: whose records name it (one, unless...)
        for subject, lookups in page.lookups.items():
            for each in lookups:
                owners.setdefault(each.lookup, set()).add(subject)
        problems = []
        for lookup, subject in stored:
            if subject not in records:
                problems.append(
                    f"subject_lookup: a lookup finds subject {subject}, which the log has no "
                    "record of"
                )
            elif subject in page.lookups and lookup not in owners:  # (owned: named below)
                problems.append(
                    f"subject_lookup: subject {subject} is found by a lookup that none of its "
                    "identifiers hashes to"
                )
        held = set(stored)
        missing = [
            (subject, each)
            for subject, lookups in page.lookups.items()
            for each in lookups
            if (each.lookup, subject) not in held
        ]
        finds = self.recorder.select_lookup_subjects([each.lookup for _, each in missing])
        for subject, each in missing:
            what = (
                f"subject_lookup: the identifier of subject {subject} recorded at position "
                f"{each.position}"
            )
            if each.lookup in finds:
                problems.append(f"{what} finds subject {finds[each.lookup]} instead")
            else:
                problems.append(
                    f"{what} has no lookup (the person's next opt-out would start a new record)"
                )
        return problems

    def _recheck(self, page: StreamPage) -> list[str]:
        """The same comparison on the page's streams read again: what persists is damage.

        A writer that registers or links a person commits the event and the lookup
        together; if it did so between reading the page and reading its lookups, the
        lookup is there before its event was read.
        """
        rows: list[StoredRow] = []
        after = (page.low, 2**62) if page.low is not None else None
        while batch := self.log.read_by_stream(after, PAGE_ROWS):
            rows += [row for row in batch if page.high is None or row[1] <= page.high]
            if page.high is not None and batch[-1][1] >= page.high:
                break
            after = (batch[-1][1], batch[-1][2])
        fresh = StreamPage(streams_of(rows), page.low, page.high, self.log)
        people, erased = self.people, self.erased
        again = self._name(fresh)
        again += self._compare(fresh, self.recorder.select_lookups_between(page.low, page.high))
        self.people, self.erased = people, erased
        return again


_Named = tuple[str | None, _Sealed] | None
"""What an event says of identifiers: the business (registrations) and the sealed one."""


def _named(position: int, event: object) -> _Named:
    """What a decoded event says of identifiers."""
    if not isinstance(event, ConsentRecord.SubjectRegistered | ConsentRecord.IdentifierLinked):
        return None
    business_id = getattr(event, "business_id", None)
    kind, sealed = str(event.identifier_kind), event.identifier
    return business_id, _Sealed(position, event.originator_version, kind, sealed.nonce, sealed.ct)


def _stored_named(log: EventLog, row: StoredRow) -> _Named:
    """What a stored event says of identifiers, read without decoding every event.

    Read with orjson when the event is of its class's current version (what the mapper
    would validate as it is), else decoded and upcast: a stream of thousands of events
    costs little more than its registration.
    """
    position, _, version, topic, data = row
    if topic not in (REGISTERED, LINKED):
        return None
    cls = ConsentRecord.SubjectRegistered if topic == REGISTERED else ConsentRecord.IdentifierLinked
    try:
        state = orjson.loads(data)
        if state.get("class_version") == cls.class_version:
            sealed = state["identifier"]
            kind, nonce, ct = state["identifier_kind"], sealed["nonce"], sealed["ct"]
            return state.get("business_id"), _Sealed(position, version, kind, nonce, ct)
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as e:
        raise UndecodableEventError(undecodable(position, e)) from None
    [event] = decode(log, [row])
    return _named(position, event)
