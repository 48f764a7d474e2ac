"""The consent status view: each person's current consent, one row per channel/category/sender.

Rows hold *base* states (what the events say, with their expiry): whether a grant has
expired is decided when the view is read, so rows never go stale with time. Beside the
rows a person's events name, the view keeps the stand-in rows (``"*"`` channel or category,
every sender) that answer exactly for anything they do not name
(:func:`~consent_ledger.status.answer_states`). Each subject
also keeps its effects, so a late (backdated) event is folded in the right place, and its
sealed identifier (ciphertext only), so an audience can be addressed without the log.

It answers "who may receive category X now" (:meth:`ConsentStatusView.audience`) and serves
the send-time check as a :class:`~consent_ledger.eligibility.ConsentSource`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from consent_ledger.projections.views import View, parse_timestamp, timestamp

from consent_ledger.domain import ConsentRecord
from consent_ledger.eligibility import Candidate
from consent_ledger.identifiers import IdentifierKind
from consent_ledger.status import (
    END_OF_TIME,
    EVERY,
    ConsentState,
    Effect,
    PlatformState,
    State,
    answer_states,
    most_specific,
    platform_states,
    visible,
)
from consent_ledger.values import NoticeRef, Sealed

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from consent_ledger.projections.database import Cursor

    from consent_ledger.log import LoggedEvent

CHUNK = 500  # parameters per IN (...) list
ANY_SENDER = ""  # how a row for every sender is keyed (NULL cannot be part of a key)
_STATUS_COLUMNS = (
    "subject_id, channel, category, sender, business_id, state, since, expires_at, notice_id, "
    "notice_version, notice_hash, notice_business_name, notice_language, event_version, "
    "event_type"
)


class ConsentStatusView(View):
    """Current consent per (business, subject, channel, category, sender)."""

    name = "consent-status"
    schema_version = 1

    def __init__(self, database: Any) -> None:
        """Attach to ``database``; see :class:`~projections.views.View`."""
        self.subjects = database.table("consent_subjects")
        self.status = database.table("consent_status")
        self.platform_table = database.table("consent_platform")
        super().__init__(database)

    def create_statements(self) -> list[str]:
        """The view's tables and the index audiences are read through."""
        return [
            (
                f"CREATE TABLE IF NOT EXISTS {self.subjects} (subject_id TEXT PRIMARY KEY, "
                "business_id TEXT NOT NULL, identifier_kind TEXT NOT NULL, "
                "identifier TEXT NOT NULL, effects TEXT NOT NULL)"
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {self.status} (subject_id TEXT NOT NULL, "
                "channel TEXT NOT NULL, category TEXT NOT NULL, sender TEXT NOT NULL, "
                "business_id TEXT NOT NULL, state TEXT NOT NULL, since TEXT NOT NULL, "
                "expires_at TEXT, notice_id TEXT, notice_version INTEGER, notice_hash TEXT, "
                "notice_business_name TEXT, notice_language TEXT, event_version INTEGER NOT NULL, "
                "event_type TEXT NOT NULL, PRIMARY KEY (subject_id, channel, category, sender))"
            ),
            (
                f"CREATE INDEX IF NOT EXISTS consent_status_audience ON {self.status} "
                "(business_id, channel, category, state)"
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {self.platform_table} (subject_id TEXT NOT NULL, "
                "sender TEXT NOT NULL, stopped INTEGER NOT NULL, since TEXT NOT NULL, "
                "event_version INTEGER NOT NULL, event_type TEXT NOT NULL, "
                "PRIMARY KEY (subject_id, sender))"
            ),
        ]

    def table_names(self) -> list[str]:
        """Everything a rebuild empties."""
        return [self.subjects, self.status, self.platform_table]

    # Writing.

    def apply(self, cursor: Cursor, events: Sequence[LoggedEvent]) -> None:
        """New subjects, and the refolded rows of every subject whose consent changed."""
        registered: list[tuple[str, str, str, str, str]] = []
        changes: dict[str, list[Effect]] = defaultdict(list)
        for logged in events:
            event = logged.event
            if isinstance(event, ConsentRecord.SubjectRegistered):
                sealed = orjson.dumps(event.identifier.model_dump()).decode()
                subject = str(event.originator_id)
                registered.append((subject, event.business_id, event.identifier_kind, sealed, "[]"))
            elif isinstance(event, ConsentRecord.Change):
                changes[str(event.originator_id)].extend(event.effects())
        if registered:
            cursor.execute_many(
                f"INSERT INTO {self.subjects} (subject_id, business_id, identifier_kind, "
                "identifier, effects) VALUES (?, ?, ?, ?, ?)",
                registered,
            )
        if changes:
            self._refold(cursor, changes)

    def _refold(self, cursor: Cursor, changes: dict[str, list[Effect]]) -> None:
        known = self._load_effects(cursor, list(changes))
        effects_rows, status_rows, platform_rows = [], [], []
        for subject, new in changes.items():
            business_id, effects = known[subject]
            effects.extend(new)
            effects_rows.append((_dump_effects(effects), subject))
            seen = visible(effects, END_OF_TIME, END_OF_TIME)
            status_rows += [_status_row(subject, business_id, s) for s in answer_states(seen)]
            platform_rows += [_platform_row(subject, p) for p in platform_states(seen)]
        subjects = list(changes)
        cursor.execute_many(
            f"UPDATE {self.subjects} SET effects = ? WHERE subject_id = ?", effects_rows
        )
        for table, rows, width in (
            (self.status, status_rows, 15),
            (self.platform_table, platform_rows, 6),
        ):
            for chunk in _chunks(subjects):
                marks = ", ".join("?" * len(chunk))
                cursor.execute(f"DELETE FROM {table} WHERE subject_id IN ({marks})", chunk)
            if rows:
                marks = ", ".join("?" * width)
                cursor.execute_many(f"INSERT INTO {table} VALUES ({marks})", rows)

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
            f"SELECT {_STATUS_COLUMNS} FROM {self.status} WHERE subject_id = ? "
            "AND channel IN (?, ?) AND category IN (?, ?) AND sender IN (?, ?)",
            (str(subject_id), channel, EVERY, category, EVERY, sender or ANY_SENDER, ANY_SENDER),
        )
        state = most_specific(_state(row) for row in rows)
        if state is None:
            return None
        return replace(state, channel=channel, category=category, sender=sender)

    def platform(self, subject_id: UUID) -> list[PlatformState]:
        """The latest marketing stop or resume per sender."""
        rows = self.database.query(
            f"SELECT subject_id, sender, stopped, since, event_version, event_type "
            f"FROM {self.platform_table} WHERE subject_id = ?",
            (str(subject_id),),
        )
        return [_platform(row) for row in rows]

    def states(self, subject_id: UUID) -> list[ConsentState]:
        """Every base state of a person, ordered by channel, category and sender."""
        rows = self.database.query(
            f"SELECT {_STATUS_COLUMNS} FROM {self.status} WHERE subject_id = ? "
            "ORDER BY channel, category, sender",
            (str(subject_id),),
        )
        return [_state(row) for row in rows]

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
        """
        stops = self._platform_by_subject()
        rows = self.database.query(
            f"SELECT s.identifier_kind, s.identifier, {_prefixed('c.')} "
            f"FROM {self.status} c JOIN {self.subjects} s ON s.subject_id = c.subject_id "
            "WHERE c.business_id = ? AND c.channel = ? AND c.category = ? "
            "AND c.sender IN (?, ?) ORDER BY c.subject_id",
            (business_id, channel, category, sender or ANY_SENDER, ANY_SENDER),
        )
        for subject, group in _by_subject(rows):
            kind, sealed, *best = min(group, key=lambda row: row[5] == ANY_SENDER)
            state = _state(tuple(best))
            if state.state is State.GRANTED:
                yield Candidate(
                    subject_id=UUID(subject),
                    identifier_kind=IdentifierKind(kind),
                    identifier=Sealed.model_validate_json(sealed),
                    state=state,
                    marketing=stops.get(subject, []),
                )

    def _platform_by_subject(self) -> dict[str, list[PlatformState]]:
        rows = self.database.query(
            f"SELECT subject_id, sender, stopped, since, event_version, event_type "
            f"FROM {self.platform_table}"
        )
        by_subject: dict[str, list[PlatformState]] = defaultdict(list)
        for row in rows:
            by_subject[row[0]].append(_platform(row))
        return by_subject


def _prefixed(prefix: str) -> str:
    return ", ".join(prefix + column.strip() for column in _STATUS_COLUMNS.split(","))


def _by_subject(rows: list[tuple[Any, ...]]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    group: list[tuple[Any, ...]] = []
    for row in rows:
        if group and row[2] != group[0][2]:
            yield group[0][2], group
            group = []
        group.append(row)
    if group:
        yield group[0][2], group


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _dump_effects(effects: list[Effect]) -> str:
    return orjson.dumps([e.to_json() for e in effects]).decode()


def _status_row(subject: str, business_id: str, state: ConsentState) -> tuple[Any, ...]:
    notice = state.notice
    return (
        subject,
        str(state.channel),
        state.category,
        state.sender or ANY_SENDER,
        business_id,
        str(state.state),
        timestamp(state.since),
        timestamp(state.expires_at) if state.expires_at else None,
        notice.notice_id if notice else None,
        notice.version if notice else None,
        notice.content_hash if notice else None,
        notice.business_name if notice else None,
        notice.language if notice else None,
        state.event_version,
        state.event_type,
    )


def _state(row: tuple[Any, ...]) -> ConsentState:
    (
        _,
        channel,
        category,
        sender,
        _,
        state,
        since,
        expires_at,
        notice_id,
        notice_version,
        notice_hash,
        business_name,
        language,
        event_version,
        event_type,
    ) = row
    notice = None
    if notice_id is not None:
        notice = NoticeRef(
            notice_id=notice_id,
            version=notice_version,
            content_hash=notice_hash,
            business_name=business_name,
            language=language,
        )
    return ConsentState(
        channel=channel,
        category=category,
        sender=sender or None,
        state=State(state),
        since=parse_timestamp(since),
        expires_at=parse_timestamp(expires_at) if expires_at else None,
        notice=notice,
        event_version=event_version,
        event_type=event_type,
    )


def _platform_row(subject: str, state: PlatformState) -> tuple[Any, ...]:
    return (
        subject,
        state.sender or ANY_SENDER,
        int(state.stopped),
        timestamp(state.since),
        state.event_version,
        state.event_type,
    )


def _platform(row: tuple[Any, ...]) -> PlatformState:
    _, sender, stopped, since, event_version, event_type = row
    return PlatformState(
        sender=sender or None,
        stopped=bool(stopped),
        since=parse_timestamp(since),
        event_version=event_version,
        event_type=event_type,
    )
