"""The consent status view: each person's current consent, one row per channel/category/sender.

Rows hold *base* states (what the events say, with their expiry): whether a grant has
expired is decided when the view is read, so rows never go stale with time. Beside the
rows a person's events name, the view keeps the stand-in rows (``"*"`` channel or category,
every sender) that answer exactly for anything they do not name
(:func:`~consent_ledger.model.status.answer_states`). Each subject
also keeps its effects, so a late (backdated) event is folded in the right place, and its
sealed identifier (ciphertext only), so an audience can be addressed without the log.

It answers "who may receive category X now" (:meth:`ConsentStatusView.audience`) and serves
the send-time check as a :class:`~consent_ledger.sending.eligibility.ConsentSource`.
"""

from __future__ import annotations

import base64
import functools
from collections import defaultdict
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from consent_ledger.projections.sends import decode_sends, no_sends, send_window, sent_json
from consent_ledger.projections.status_rows import (
    answer_of,
    platform_of,
    platform_row,
    status_row,
)
from consent_ledger.projections.views import View

from consent_ledger.model.status import (
    END_OF_TIME,
    ConsentState,
    Effect,
    PlatformState,
    State,
    answer_states,
    platform_states,
    visible,
)
from consent_ledger.sending.eligibility import Candidate, CandidatePage

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

    from consent_ledger.model.consent_record import ConsentRecord
    from consent_ledger.model.sends import SentMessage
    from consent_ledger.storage.log import EventLog, LoggedEvent
    from consent_ledger.storage.view_database import Cursor

CHUNK = 500  # parameters per IN (...) list
_STATUS_COLUMNS = (
    "subject_id, channel, category, sender, business_id, state, since, expires_at, notice_id, "
    "notice_version, notice_hash, notice_business_name, notice_language, event_version, "
    "event_type"
)


class ConsentStatusView(View):
    """Current consent per (business, subject, channel, category, sender)."""

    name = "consent-status"
    schema_version = 3  # 2: pending opt-ins expire, a confirmation grants a lapsed key; 3: sends

    def __init__(self, database: Any) -> None:
        """Attach to ``database``; see :class:`~projections.views.View`."""
        self.subjects = database.table("consent_subjects")
        self.status = database.table("consent_status")
        self.platform_table = database.table("consent_platform")
        self.lookups = database.table("consent_lookups")
        # A check's question: who a lookup finds, and all their rows, in one read.
        self._by_lookup = (
            f"SELECT s.subject_id, s.answers, s.sends FROM {self.lookups} l "
            f"JOIN {self.subjects} s ON s.subject_id = l.subject_id WHERE l.lookup = ?"
        )
        super().__init__(database)

    def create_statements(self) -> list[str]:
        """The view's tables and the index audiences are read through."""
        return [
            (
                f"CREATE TABLE IF NOT EXISTS {self.subjects} (subject_id TEXT PRIMARY KEY, "
                "business_id TEXT NOT NULL, identifier_kind TEXT NOT NULL, "
                f"identifier_nonce {self.database.binary} NOT NULL, "
                f"identifier_ct {self.database.binary} NOT NULL, "
                # effects: to refold; answers: the person's status and platform rows as
                # JSON, what a send-time check reads; sends: their sends of the last 31
                # days (as JSON), what frequency limits count.
                "effects TEXT NOT NULL, answers TEXT NOT NULL, "
                "sends TEXT NOT NULL DEFAULT '[]')"  # wide rows: not clustered
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {self.status} (subject_id TEXT NOT NULL, "
                "channel TEXT NOT NULL, category TEXT NOT NULL, sender TEXT NOT NULL, "
                "business_id TEXT NOT NULL, state TEXT NOT NULL, since TEXT NOT NULL, "
                "expires_at TEXT, notice_id TEXT, notice_version INTEGER, notice_hash TEXT, "
                "notice_business_name TEXT, notice_language TEXT, event_version INTEGER NOT NULL, "
                "event_type TEXT NOT NULL, PRIMARY KEY (subject_id, channel, category, sender))"
                + self.database.clustered
            ),
            (
                # Covering: an audience is read from the index alone, row by row.
                f"CREATE INDEX IF NOT EXISTS consent_status_audience ON {self.status} "
                "(business_id, channel, category, state, sender, subject_id, since, expires_at, "
                "notice_id, notice_version, event_version, event_type)"
            ),
            (
                # Lookups (keyed HMACs of identifiers, copied from the ledger's index: they
                # reveal nobody without the master key), so a check finds a person here.
                # Narrow rows: their keys are random, so this tree takes random inserts.
                f"CREATE TABLE IF NOT EXISTS {self.lookups} ("
                f"lookup {self.database.binary} PRIMARY KEY, subject_id TEXT NOT NULL)"
                + self.database.clustered
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {self.platform_table} (subject_id TEXT NOT NULL, "
                "sender TEXT NOT NULL, stopped INTEGER NOT NULL, since TEXT NOT NULL, "
                "event_version INTEGER NOT NULL, event_type TEXT NOT NULL, "
                "PRIMARY KEY (subject_id, sender))" + self.database.clustered
            ),
        ]

    def table_names(self) -> list[str]:
        """Everything a rebuild empties."""
        return [self.subjects, self.status, self.platform_table, self.lookups]

    # Writing.

    def apply(self, cursor: Cursor, events: Sequence[LoggedEvent], log: EventLog) -> None:
        """New subjects with their rows, and the refolded rows of known subjects that changed.

        A subject registered in this batch needs no reading back: its effects are all here,
        so it is written once. Known subjects are read, refolded and rewritten.
        """
        batch = _Batch.of(events)
        new, changes, linked, sent = batch.new, batch.changes, batch.linked, batch.sent
        folded = _Folded()
        if new:
            self._insert_subjects(cursor, new, folded)
            self._keep_sends(cursor, {s: sent.pop(s) for s in new if s in sent}, known=False)
        if sent:
            self._keep_sends(cursor, sent, known=True)
        if new or linked:
            cursor.execute_many(
                f"INSERT INTO {self.lookups} (lookup, subject_id) VALUES (?, ?) "
                "ON CONFLICT (lookup) DO NOTHING",
                log.lookups(list(new.keys() | linked)),
            )
        if changes:
            self._refold_known(cursor, changes, folded)
        if folded.status:
            cursor.execute_many(
                f"INSERT INTO {self.status} VALUES ({', '.join('?' * 15)})", folded.status
            )
        if folded.platform:
            cursor.execute_many(
                f"INSERT INTO {self.platform_table} VALUES ({', '.join('?' * 6)})", folded.platform
            )

    def _insert_subjects(
        self, cursor: Cursor, new: dict[str, _NewSubject], folded: _Folded
    ) -> None:
        rows = []
        for subject, registered in new.items():
            event = registered.event
            answers = folded.add(subject, event.business_id, registered.effects)
            rows.append(
                (
                    subject,
                    event.business_id,
                    str(event.identifier_kind),
                    base64.b64decode(event.identifier.nonce),
                    base64.b64decode(event.identifier.ct),
                    _dump(registered.effects),
                    answers,
                )
            )
        cursor.execute_many(
            f"INSERT INTO {self.subjects} (subject_id, business_id, identifier_kind, "
            "identifier_nonce, identifier_ct, effects, answers) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _keep_sends(self, cursor: Cursor, sent: dict[str, list[list[Any]]], *, known: bool) -> None:
        """Add the batch's sends to what each person's row keeps (the last 31 days of them)."""
        if not sent:
            return
        kept: dict[str, list[list[Any]]] = {}
        if known:
            for chunk in _chunks(list(sent)):
                marks = ", ".join("?" * len(chunk))
                rows = cursor.execute(
                    f"SELECT subject_id, sends FROM {self.subjects} WHERE subject_id IN ({marks})",
                    chunk,
                )
                kept.update((subject, orjson.loads(sends)) for subject, sends in rows)
        cursor.execute_many(
            f"UPDATE {self.subjects} SET sends = ? WHERE subject_id = ?",
            [
                (orjson.dumps(send_window(kept.get(subject, []) + sends)).decode(), subject)
                for subject, sends in sent.items()
            ],
        )

    def _refold_known(
        self, cursor: Cursor, changes: dict[str, list[Effect]], folded: _Folded
    ) -> None:
        known = self._load_effects(cursor, list(changes))
        updates = []
        for subject, effects in changes.items():
            business_id, before = known[subject]
            answers = folded.add(subject, business_id, before + effects)
            updates.append((_dump(before + effects), answers, subject))
        cursor.execute_many(
            f"UPDATE {self.subjects} SET effects = ?, answers = ? WHERE subject_id = ?", updates
        )
        for table in (self.status, self.platform_table):
            for chunk in _chunks(list(changes)):
                marks = ", ".join("?" * len(chunk))
                cursor.execute(f"DELETE FROM {table} WHERE subject_id IN ({marks})", chunk)

    def _load_effects(
        self, cursor: Cursor, subjects: list[str]
    ) -> dict[str, tuple[str, list[Effect]]]:
        known: dict[str, tuple[str, list[Effect]]] = {}
        for chunk in _chunks(subjects):
            marks = ", ".join("?" * len(chunk))
            rows = cursor.execute(
                f"SELECT subject_id, business_id, effects FROM {self.subjects} "
                f"WHERE subject_id IN ({marks})",
                chunk,
            )
            for subject, business_id, effects in rows:
                known[subject] = (business_id, [Effect.from_json(e) for e in orjson.loads(effects)])
        return known

    # Reading: the send-time check's consent source.

    def consent(
        self, subject_id: UUID, channel: str, category: str, sender: str | None
    ) -> ConsentState | None:
        """The base state for one channel, category and sender, exactly as the record says."""
        rows = self.database.query(
            f"SELECT {_STATUS_COLUMNS} FROM {self.status} WHERE subject_id = ?",
            (str(subject_id),),
        )
        return answer_of(rows, (channel, category, sender))

    def consent_by_lookup(
        self, lookup: bytes, channel: str, category: str, sender: str | None
    ) -> tuple[
        UUID | None, ConsentState | None, list[PlatformState], Callable[[], list[SentMessage]]
    ]:
        """A check's question in one read: who a lookup finds, their base state, their stops.

        And their recent sends, decoded only if asked for. Returns (None, None, [], ...)
        when the view knows nobody under ``lookup``.
        """
        rows = self.database.query(self._by_lookup, (lookup,))
        if not rows:
            return None, None, [], no_sends
        subject, answers, sends = rows[0]
        consent, platform = orjson.loads(answers)
        state = answer_of(consent, (channel, category, sender))
        return (
            UUID(subject),
            state,
            [platform_of(row) for row in platform],
            functools.partial(decode_sends, sends),  # read only by a policy that limits sends
        )

    def sends(self, subject_id: UUID) -> list[SentMessage]:
        """The person's sends the view keeps (the last 31 days of them), oldest first."""
        rows = self.database.query(
            f"SELECT sends FROM {self.subjects} WHERE subject_id = ?", (str(subject_id),)
        )
        return decode_sends(rows[0][0]) if rows else []

    def platform(self, subject_id: UUID) -> list[PlatformState]:
        """The latest marketing stop or resume per sender."""
        rows = self.database.query(
            f"SELECT subject_id, sender, stopped, since, event_version, event_type "
            f"FROM {self.platform_table} WHERE subject_id = ?",
            (str(subject_id),),
        )
        return [platform_of(row) for row in rows]

    def subject_ids(self) -> list[UUID]:
        """Every person the view knows."""
        rows = self.database.query(f"SELECT subject_id FROM {self.subjects} ORDER BY subject_id")
        return [UUID(row[0]) for row in rows]

    def audience(
        self, business_id: str, channel: str, category: str, sender: str | None
    ) -> Iterator[Candidate]:
        """Everyone whose base consent to ``category`` is granted, towards ``sender``.

        A sender's own row, where a person has one, decides for that sender; otherwise the
        row for every sender does. Expiry and policy are the caller's to apply.
        :meth:`audience_pages` gives the same a page at a time, in columns.
        """
        pages = self.audience_pages(business_id, channel, category, sender)
        return (candidate for page in pages for candidate in page.candidates())

    def audience_pages(
        self, business_id: str, channel: str, category: str, sender: str | None
    ) -> Generator[CandidatePage, None, None]:
        """:meth:`audience`, a page at a time (memory stays flat), each page in columns."""
        if sender:  # each person's own row for the sender sorts before the every-sender row
            where = "AND c.sender IN (?, '') ORDER BY c.subject_id, c.sender DESC"
            params: tuple[str, ...] = (business_id, channel, category, sender)
        else:
            where = "AND c.sender = '' AND c.state = 'granted' ORDER BY c.subject_id"
            params = (business_id, channel, category)
        # Columns in Candidate's order, then the state.
        pages = self.database.pages(
            "SELECT c.subject_id, s.identifier_kind, s.identifier_nonce, s.identifier_ct, "
            "c.since, c.expires_at, c.notice_id || '@' || CAST(c.notice_version AS TEXT), "
            f"c.event_version, c.event_type, c.state FROM {self.status} c "
            f"JOIN {self.subjects} s ON s.subject_id = c.subject_id "
            f"WHERE c.business_id = ? AND c.channel = ? AND c.category = ? {where}",
            params,
        )
        previous = None  # the last person of the page before
        for page in pages:
            rows = page
            if sender:  # a person's first row decides (their own sender's, if they have one)
                before = [previous, *(row[0] for row in page)]  # each row's predecessor
                firsts = [row for row, last in zip(page, before, strict=False) if row[0] != last]
                rows = [row for row in firsts if row[9] == State.GRANTED]
                previous = page[-1][0]
            if rows:
                yield self._page(rows)

    def _page(self, rows: list[tuple[Any, ...]]) -> CandidatePage:
        """Rows of the audience query as a page, with the people's marketing stops."""
        columns = list(zip(*rows, strict=True))
        subject_ids = columns[0]
        # People come in id order: a page's stops are those in its id range.
        stops = self._stops_between(subject_ids[0], subject_ids[-1])
        marketing = tuple(stops.get(subject, ()) for subject in subject_ids)
        return CandidatePage._make((*columns[:9], marketing))

    def _stops_between(self, first: str, last: str) -> dict[str, tuple[PlatformState, ...]]:
        """The marketing stops and resumes of the people with ids from ``first`` to ``last``."""
        rows = self.database.query(
            f"SELECT subject_id, sender, stopped, since, event_version, event_type "
            f"FROM {self.platform_table} WHERE subject_id BETWEEN ? AND ?",
            (first, last),
        )
        by_subject: dict[str, list[PlatformState]] = defaultdict(list)
        for row in rows:
            by_subject[row[0]].append(platform_of(row))
        return {subject: tuple(states) for subject, states in by_subject.items()}


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _dump(effects: list[Effect]) -> str:
    return orjson.dumps([e.to_json() for e in effects]).decode()


class _NewSubject:
    """A subject registered in the batch being applied, and its effects so far."""

    __slots__ = ("effects", "event")

    def __init__(self, event: ConsentRecord.SubjectRegistered, effects: list[Effect]) -> None:
        self.event = event
        self.effects = effects


class _Batch:
    """A batch of events, sorted out: new people, consent changes, links, sends."""

    __slots__ = ("changes", "linked", "new", "sent")

    def __init__(self) -> None:
        self.new: dict[str, _NewSubject] = {}
        self.changes: dict[str, list[Effect]] = defaultdict(list)
        self.linked: set[str] = set()  # known by another identifier now: copy its lookups
        self.sent: dict[str, list[list[Any]]] = defaultdict(list)  # sends change no consent

    @classmethod
    def of(cls, events: Sequence[LoggedEvent]) -> _Batch:
        """Sort out the events of a batch."""
        # Imported here: a check that finds the view caught up never loads the events.
        from consent_ledger.model.consent_record import ConsentRecord  # noqa: PLC0415

        batch = cls()
        for logged in events:
            event = logged.event
            subject = str(event.originator_id)
            if isinstance(event, ConsentRecord.SubjectRegistered):
                batch.new[subject] = _NewSubject(event, [])
            elif isinstance(event, ConsentRecord.IdentifierLinked):
                batch.linked.add(subject)
            elif isinstance(event, ConsentRecord.MessageSent):
                batch.sent[subject].append(sent_json(event))
            elif isinstance(event, ConsentRecord.Change):
                new = batch.new.get(subject)
                effects = new.effects if new is not None else batch.changes[subject]
                effects.extend(event.effects())
        return batch


class _Folded:
    """The rows of the subjects a batch touched, folded from their effects."""

    def __init__(self) -> None:
        self.status: list[tuple[Any, ...]] = []
        self.platform: list[tuple[Any, ...]] = []

    def add(self, subject: str, business_id: str, effects: list[Effect]) -> str:
        """Fold a subject's rows in; return them as the JSON a check reads."""
        seen = visible(effects, END_OF_TIME, END_OF_TIME)
        status = [status_row(subject, business_id, s) for s in answer_states(seen)]
        platform = [platform_row(subject, p) for p in platform_states(seen)]
        self.status += status
        self.platform += platform
        return orjson.dumps([status, platform]).decode()
