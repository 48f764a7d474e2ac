"""The audit log view: one row per event of the whole ledger, ready for an auditor's questions.

"Every opt-out in October", "every opt-in collected by the web form under notice v2",
"everything recorded yesterday": rows carry the event's type, when it occurred and when it
was recorded, business, channel, categories, method, actor and notice, indexed by time and
by category. Rows hold no personal data: subjects appear by id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from consent_ledger.projections.views import View, parse_timestamp

from consent_ledger.model.plain import utc_text

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from consent_ledger.projections.audit_rows import Stream

    from consent_ledger.storage.log import EventLog, LoggedEvent
    from consent_ledger.storage.view_database import Cursor

COLUMNS = (  # the audit log's columns, in order: its rows as the CLI writes them
    "position",
    "stream_type",
    "stream_id",
    "stream_version",
    "event_type",
    "business_id",
    "subject_id",
    "channel",
    "sender",
    "granted",
    "withdrawn",
    "confirmed",
    "method",
    "collection_point",
    "actor",
    "notice_id",
    "notice_version",
    "occurred_at",
    "recorded_at",
)


EVENT_TYPES = (
    # ConsentRecord
    "SubjectRegistered",
    "OptedIn",
    "OptInConfirmed",
    "OptedOut",
    "CategoriesChanged",
    "PlatformMarketingStopped",
    "PlatformMarketingResumed",
    "SignalReceived",
    "IdentifierLinked",
    "MessageSent",
    # Business, Notice and Template (each begins with its own Registered)
    "Registered",
    "NoticeAdded",
    "CategoryDefined",
    "CategoryRetired",
    "VersionPublished",
    "CategoryChanged",
    "CategoryChangeAnnounced",
)
"""Every ``event_type`` the audit log shows: the names of the stored event classes."""


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One event as the audit log shows it."""

    position: int
    stream_type: str
    stream_id: UUID
    stream_version: int
    event_type: str
    business_id: str | None
    subject_id: UUID | None
    channel: str | None
    sender: str | None
    granted: tuple[str, ...]
    withdrawn: tuple[str, ...]
    confirmed: tuple[str, ...]
    method: str | None
    collection_point: str | None
    actor: str | None
    notice_id: str | None
    notice_version: int | None
    occurred_at: datetime | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters; each one left as None does not filter."""

    business_id: str | None = None
    event_types: tuple[str, ...] | None = None
    subject_id: UUID | None = None
    channel: str | None = None
    category: str | None = None
    method: str | None = None
    notice_id: str | None = None
    notice_version: int | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    stream_types: tuple[str, ...] | None = None
    limit: int | None = None


class AuditLogView(View):
    """Every event, one row each, indexed for time-range and category queries."""

    name = "audit-log"
    schema_version = 3  # 3: template events name their business

    def __init__(self, database: Any) -> None:
        """Attach to ``database``; see :class:`~projections.views.View`."""
        self.rows = database.table("audit_log")
        self.categories = database.table("audit_log_categories")
        super().__init__(database)

    def create_statements(self) -> list[str]:
        """The rows, a category index table, and indexes by time."""
        return [
            (
                f"CREATE TABLE IF NOT EXISTS {self.rows} (position BIGINT PRIMARY KEY, "
                "stream_type TEXT NOT NULL, stream_id TEXT NOT NULL, "
                "stream_version INTEGER NOT NULL, "
                "event_type TEXT NOT NULL, business_id TEXT, subject_id TEXT, channel TEXT, "
                "sender TEXT, granted TEXT NOT NULL, withdrawn TEXT NOT NULL, "
                "confirmed TEXT NOT NULL, method TEXT, collection_point TEXT, actor TEXT, "
                "notice_id TEXT, notice_version INTEGER, occurred_at TEXT, "
                "recorded_at TEXT NOT NULL)"
            ),
            (
                f"CREATE INDEX IF NOT EXISTS audit_log_occurred ON {self.rows} "
                "(business_id, occurred_at)"
            ),
            (
                f"CREATE INDEX IF NOT EXISTS audit_log_recorded ON {self.rows} "
                "(business_id, recorded_at)"
            ),
            (
                f"CREATE INDEX IF NOT EXISTS audit_log_type ON {self.rows} "
                "(business_id, event_type, occurred_at)"
            ),
            (
                # A stream's events in order: a subject's history (a subject's stream id is
                # its subject id), and the first event that gives a stream its business.
                f"CREATE INDEX IF NOT EXISTS audit_log_stream ON {self.rows} "
                "(stream_id, stream_version)"
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {self.categories} (category TEXT NOT NULL, "
                "position BIGINT NOT NULL, PRIMARY KEY (category, position))"
                + self.database.clustered
            ),
        ]

    def table_names(self) -> list[str]:
        """Everything a rebuild empties."""
        return [self.rows, self.categories]

    def apply(self, cursor: Cursor, events: Sequence[LoggedEvent], log: EventLog) -> None:
        """One row per event, and one category row per category it names."""
        # Imported here, with the event classes it reads: a process that only queries the
        # view, or catches it up with nothing new, loads none of them.
        from consent_ledger.projections.audit_rows import event_row  # noqa: PLC0415

        del log  # every fact the audit log shows is in the events
        stream_ids = [str(e.event.originator_id) for e in events]
        streams = self._stream_context(cursor, events, stream_ids)
        rows = [
            event_row(e.position, e.event, stream_id, streams[stream_id])
            for e, stream_id in zip(events, stream_ids, strict=True)
        ]
        cursor.execute_many(
            f"INSERT INTO {self.rows} ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(COLUMNS))})",
            rows,
        )
        categories = {
            (category, row[0])
            for row in rows
            for column in (row[9], row[10], row[11])
            for category in column.split()
        }
        if categories:
            cursor.execute_many(
                f"INSERT INTO {self.categories} (category, position) VALUES (?, ?)",
                sorted(categories),
            )

    def _stream_context(
        self, cursor: Cursor, events: Sequence[LoggedEvent], stream_ids: list[str]
    ) -> dict[str, Stream]:
        """Per stream id: the business (and notice) its first event named."""
        from consent_ledger.projections.audit_rows import Stream, first_named  # noqa: PLC0415

        streams: dict[str, Stream] = {}
        for logged, stream_id in zip(events, stream_ids, strict=True):
            if logged.event.originator_version == 1:
                streams[stream_id] = first_named(logged.event)
        missing = sorted(set(stream_ids) - streams.keys())
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            rows = cursor.execute(
                f"SELECT stream_id, business_id, notice_id FROM {self.rows} "
                f"WHERE stream_id IN ({', '.join('?' * len(chunk))}) AND stream_version = 1",
                chunk,
            )
            for stream_id, business_id, notice_id in rows:
                streams[stream_id] = Stream(business_id, notice_id)
        for stream_id in missing:  # a stream whose first event the view never saw
            streams.setdefault(stream_id, Stream(None, None))
        return streams

    def query(self, query: AuditQuery, *, page: int = 10_000) -> Iterator[AuditRow]:
        """Rows matching every filter given, in log order, read a page at a time."""
        for rows in self._pages(", ".join(COLUMNS), query, page):
            yield from (_audit_row(row) for row in rows)

    def matching_positions(self, query: AuditQuery, *, page: int = 50_000) -> Iterator[int]:
        """The log positions of the events matching every filter given, ascending."""
        for rows in self._pages("position", query, page):
            yield from (int(row[0]) for row in rows)

    def _pages(self, columns: str, query: AuditQuery, page: int) -> Iterator[list[tuple[Any, ...]]]:
        """Matching rows in pages (keyset on position): memory stays flat."""
        where, params = self._where(query)
        remaining = query.limit
        after = None
        while remaining is None or remaining > 0:
            size = page if remaining is None else min(page, remaining)
            clauses = [*where, "position > ?"] if after is not None else where
            sql = f"SELECT {columns} FROM {self.rows}"
            if clauses:
                sql += " WHERE " + " AND ".join(clauses)
            sql += f" ORDER BY position LIMIT {int(size)}"
            rows = self.database.query(sql, [*params, after] if after is not None else params)
            if not rows:
                return
            yield rows
            after = rows[-1][0]
            remaining = None if remaining is None else remaining - len(rows)

    def _where(self, query: AuditQuery) -> tuple[list[str], list[Any]]:
        where, params = [], []
        filters: list[tuple[str, Any]] = [
            ("business_id = ?", query.business_id),
            # A subject's stream id is its subject id: this reads the stream index.
            ("stream_id = ? AND subject_id IS NOT NULL", _text(query.subject_id)),
            ("channel = ?", query.channel),
            ("method = ?", query.method),
            ("notice_id = ?", query.notice_id),
            ("notice_version = ?", query.notice_version),
            ("occurred_at >= ?", _stamp(query.occurred_from)),
            ("occurred_at < ?", _stamp(query.occurred_to)),
            ("recorded_at >= ?", _stamp(query.recorded_from)),
            ("recorded_at < ?", _stamp(query.recorded_to)),
        ]
        for clause, value in filters:
            if value is not None:
                where.append(clause)
                params.append(value)
        if query.event_types:
            where.append(f"event_type IN ({', '.join('?' * len(query.event_types))})")
            params.extend(query.event_types)
        if query.category is not None:
            where.append(f"position IN (SELECT position FROM {self.categories} WHERE category = ?)")
            params.append(query.category)
        if query.stream_types:
            where.append(f"stream_type IN ({', '.join('?' * len(query.stream_types))})")
            params.extend(query.stream_types)
        return where, params

    def count(self) -> int:
        """How many events the view holds."""
        return int(self.database.query(f"SELECT COUNT(*) FROM {self.rows}")[0][0])

    def business_ids(self) -> list[str]:
        """The businesses registered in the log, in the order they were."""
        rows = self.database.query(
            f"SELECT business_id FROM {self.rows} WHERE stream_type = 'Business' "
            "AND stream_version = 1 ORDER BY position"
        )
        return [str(row[0]) for row in rows]

    def categories_defined(self, business_id: str | None = None) -> dict[str, bool]:
        """The categories businesses defined (one business's, or all), each with whether retired.

        In the order defined; a name two businesses defined is retired if either retired it.
        """
        sql = (
            f"SELECT event_type, granted, withdrawn FROM {self.rows} WHERE stream_type = "
            "'Business' AND event_type IN ('CategoryDefined', 'CategoryRetired')"
        )
        params = []
        if business_id is not None:
            sql += " AND business_id = ?"
            params.append(business_id)
        defined: dict[str, bool] = {}
        rows = self.database.query(f"{sql} ORDER BY position", params)
        for event_type, granted, withdrawn in rows:
            if event_type == "CategoryDefined":
                defined.setdefault(str(granted), False)
            else:
                defined[str(withdrawn)] = True
        return defined

    def notice_versions(self, business_id: str | None = None) -> dict[str, int]:
        """The latest version published of each notice, by id: one business's, or all."""
        sql = (
            f"SELECT notice_id, MAX(notice_version) FROM {self.rows} "
            "WHERE event_type = 'VersionPublished' AND stream_type = 'Notice'"
        )
        params = []
        if business_id is not None:
            sql += " AND business_id = ?"
            params.append(business_id)
        rows = self.database.query(f"{sql} GROUP BY notice_id ORDER BY notice_id", params)
        return {str(notice_id): int(version) for notice_id, version in rows}


def _text(subject_id: UUID | None) -> str | None:
    return str(subject_id) if subject_id is not None else None


def _stamp(moment: datetime | None) -> str | None:
    return utc_text(moment) if moment is not None else None


def _audit_row(row: tuple[Any, ...]) -> AuditRow:
    (
        position,
        stream_type,
        stream_id,
        stream_version,
        event_type,
        business_id,
        subject_id,
        channel,
        sender,
        granted,
        withdrawn,
        confirmed,
        method,
        collection_point,
        actor,
        notice_id,
        notice_version,
        occurred_at,
        recorded_at,
    ) = row
    return AuditRow(
        position=position,
        stream_type=stream_type,
        stream_id=UUID(stream_id),
        stream_version=stream_version,
        event_type=event_type,
        business_id=business_id,
        subject_id=UUID(subject_id) if subject_id else None,
        channel=channel,
        sender=sender,
        granted=tuple(granted.split()),
        withdrawn=tuple(withdrawn.split()),
        confirmed=tuple(confirmed.split()),
        method=method,
        collection_point=collection_point,
        actor=actor,
        notice_id=notice_id,
        notice_version=notice_version,
        occurred_at=parse_timestamp(occurred_at) if occurred_at else None,
        recorded_at=parse_timestamp(recorded_at),
    )
