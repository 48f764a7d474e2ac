"""Derived state, checked against the log: the ledger's lookups and the views decisions read.

A send-time check does not read the log: it finds the person and their consent in the
consent-status view. An opt-out finds the person through the ledger's lookups
(``subject_lookup``). Signed checkpoints prove the log; nothing proved these, so a row
edited or deleted behind the ledger's back changed decisions unnoticed. :func:`check_derived`
reads the log once more, one stream (one person) at a time, and compares:

* the ledger's lookups: every identifier a person's record names (registered or linked)
  must find that person, and every lookup must find a person whose identifier it is. A
  lookup is a keyed hash of an identifier sealed under the person's data key, so this
  needs the master key; a person whose data key is gone (erased) is skipped: their
  identifiers cannot be read, and whether their lookups remain (an opt-out still lands on
  the erased record) or are gone (a new record would start) changes no decision, since
  an erased person is never sent to. A lookup of anyone else's identifier that finds an
  erased person is still caught, from that person's side.
* each view given, through a :class:`ViewCheck` (the views live in the projections
  package, which the core does not import), up to the position the view has reached: a
  view behind the log is not damaged, it has yet to catch up.

Memory stays flat: the log is read in pages of whole streams, in stream-id order (the
events table's primary key), and each page is compared before the next is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

from eventsourcing.persistence import StoredEvent

from consent_ledger.model.consent_record import ConsentRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from consent_ledger.privacy.keys import KeyRing
    from consent_ledger.storage.log import EventLog, StoredRow
    from consent_ledger.storage.recorder import LedgerRecorder

PAGE_ROWS = 5_000
"""Events read at a time (a page holds whole streams: more, if a stream is longer)."""
REPORTED = 100
"""Disagreements kept for the report; any more are counted."""
REGISTERED = ConsentRecord.SubjectRegistered.TOPIC
LINKED = ConsentRecord.IdentifierLinked.TOPIC


@dataclass(frozen=True, slots=True)
class Stream:
    """One stream of the log (a person's record, a notice, ...), its events as stored."""

    stream_id: str
    rows: list[StoredRow]

    @property
    def is_consent_record(self) -> bool:
        """Whether the stream is a person's consent record (it starts by registering them)."""
        return self.rows[0][2] == 1 and self.rows[0][3] == REGISTERED


@dataclass(frozen=True, slots=True)
class NamedLookup:
    """A lookup a person's record calls for: the keyed hash of one of their identifiers."""

    lookup: bytes
    position: int
    """The position of the event that named the identifier (registered or linked)."""


class StreamPage:
    """Whole streams of the log, in id order, as one step of the comparison.

    The page covers the stream ids in (``low``, ``high``] (None: that end is open), so a
    row of derived state keyed by a stream id belongs to exactly one page.
    """

    def __init__(
        self,
        streams: list[Stream],
        low: str | None,
        high: str | None,
        log: EventLog,
        *,
        decode_all: bool = False,
    ) -> None:
        """Hold ``streams`` (ids in (``low``, ``high``]) of ``log``.

        ``decode_all``: every event will be decoded (views are checked), so readers that
        need only some of a stream's events take them from :meth:`decoded` too.
        """
        self.streams = streams
        self.low = low
        self.high = high
        self.decode_all = decode_all
        self._log = log
        self._decoded: dict[str, list[object]] = {}
        self.lookups: dict[str, list[NamedLookup]] = {}
        """Per person whose data key opens: the lookups their record calls for."""
        self.erased: set[str] = set()
        """The people of the page whose data key is gone."""

    @property
    def events(self) -> int:
        """How many events the page holds."""
        return sum(len(stream.rows) for stream in self.streams)

    def decoded(self, stream: Stream) -> list[object]:
        """The stream's events as domain events (decoded once, whoever asks first)."""
        events = self._decoded.get(stream.stream_id)
        if events is None:
            events = self._decoded[stream.stream_id] = decode(self._log, stream.rows)
        return events


class UndecodableEventError(Exception):
    """A stored event that does not decode: the log changed where no checkpoint covers it."""


def decode(log: EventLog, rows: Iterable[StoredRow]) -> list[object]:
    """Stored events as domain events (upcast, as every reader of the log sees them).

    Raises:
        UndecodableEventError: an event does not decode (it is named by its position).
    """
    to_event = log.mapper.to_domain_event
    events: list[object] = []
    for position, i, v, t, s in rows:
        try:
            events.append(
                to_event(StoredEvent(originator_id=i, originator_version=v, topic=t, state=s))
            )
        except Exception as e:  # noqa: BLE001 (whatever the bytes break, it is a finding)
            raise UndecodableEventError(undecodable(position, e)) from None
    return events


def undecodable(position: int, error: Exception) -> str:
    """What verify says of an event that does not decode."""
    return (
        f"position {position}: the stored event does not decode ({type(error).__name__}): "
        "the log was changed where no checkpoint covers it"
    )


class ViewCheck(Protocol):
    """One view's comparison with the log (the projections package's ``view_checks``)."""

    @property
    def name(self) -> str:
        """The view's name."""

    @property
    def position(self) -> int:
        """The log position the view is compared up to (where it had caught up to)."""

    def check(self, page: StreamPage) -> Iterable[str]:
        """Where the view disagrees with the page's events, one message each."""

    def finish(self) -> Iterable[str]:
        """Where the view disagrees once every page was seen (rows no stream accounts for)."""


@dataclass(frozen=True)
class DerivedReport:
    """What :func:`check_derived` compared, and every disagreement it found."""

    people: int = 0
    """Consent records whose lookups were checked."""
    erased: int = 0
    """Consent records skipped because their data key is gone."""
    views: tuple[tuple[str, int], ...] = ()
    """Each view checked, with the position it was checked up to."""
    problems: tuple[str, ...] = ()
    """The disagreements, up to :data:`REPORTED` of them."""
    unreported: int = 0
    """Disagreements found beyond those listed."""

    @property
    def ok(self) -> bool:
        """Whether everything derived agrees with the log."""
        return not self.problems


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    unreported: int = 0

    def extend(self, problems: Iterable[str]) -> None:
        for problem in problems:
            if len(self.problems) < REPORTED:
                self.problems.append(problem)
            else:
                self.unreported += 1


def check_derived(
    log: EventLog,
    keyring: KeyRing,
    views: Sequence[ViewCheck] = (),
    *,
    progress: Callable[[int], None] | None = None,
) -> DerivedReport:
    """Compare the ledger's lookups, and each of ``views``, with the log.

    ``keyring``: the ledger's keys (lookups are keyed hashes of sealed identifiers).
    ``progress`` is called with the events read per page.
    """
    from consent_ledger.evidence.lookups import LookupCheck  # noqa: PLC0415 (it imports this)

    lookups = LookupCheck(cast("LedgerRecorder", log.recorder), keyring, log)
    found = _Findings()
    whole = True  # every page compared: what no page accounts for can be counted
    for page in stream_pages(log, decode_all=bool(views)):
        try:
            found.extend(lookups.check(page))
            for view in views:
                found.extend(view.check(page))
        except UndecodableEventError as e:  # nothing on the page can be compared
            found.extend([str(e)])
            whole = False
        if progress is not None:
            progress(page.events)
    for view in views if whole else ():
        found.extend(view.finish())
    return DerivedReport(
        people=lookups.people,
        erased=lookups.erased,
        views=tuple((view.name, view.position) for view in views),
        problems=tuple(found.problems),
        unreported=found.unreported,
    )


def stream_pages(
    log: EventLog, size: int = PAGE_ROWS, *, decode_all: bool = False
) -> Iterator[StreamPage]:
    """The log as pages of whole streams, in stream-id order, covering every stream id."""
    pending: list[StoredRow] = []
    low: str | None = None
    after: tuple[str, int] | None = None
    while rows := log.read_by_stream(after, size):
        after = (rows[-1][1], rows[-1][2])
        pending += rows
        last = rows[-1][1]  # its stream may go on in the next read: hold it back
        whole = [row for row in pending if row[1] != last]
        if whole:
            pending = pending[len(whole) :]
            high = whole[-1][1]
            yield StreamPage(streams_of(whole), low, high, log, decode_all=decode_all)
            low = high
    yield StreamPage(streams_of(pending), low, None, log, decode_all=decode_all)


def streams_of(rows: list[StoredRow]) -> list[Stream]:
    """Rows in stream order, as streams."""
    streams: list[Stream] = []
    for row in rows:
        if not streams or streams[-1].stream_id != row[1]:
            streams.append(Stream(row[1], []))
        streams[-1].rows.append(row)
    return streams
