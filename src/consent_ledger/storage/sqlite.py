"""The SQLite recorder: the event log, plus the ledger's metadata, keys and lookups."""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


from consent_ledger.storage.recorder import now_text

if TYPE_CHECKING:
    from consent_ledger.storage.recorder import NewSubject


_DASHED_ID = (  # a stored 32-hex-digit id as str(UUID(...)) writes it (ids are stored lower case)
    "substr(originator_id, 1, 8) || '-' || substr(originator_id, 9, 4) || '-' || "
    "substr(originator_id, 13, 4) || '-' || substr(originator_id, 17, 4) || '-' || "
    "substr(originator_id, 21)"
)
_STORED_ROWS = f"SELECT rowid, {_DASHED_ID}, originator_version, topic, state FROM "  # noqa: S608
"""The start of every read of stored events as rows: (position, id, version, topic, state)."""


SQLITE_SIGNALS_TABLE = (  # webhook items already ingested, by keyed hash: exactly once
    "CREATE TABLE IF NOT EXISTS ingested_signals (signal_key BLOB PRIMARY KEY, "
    "recorded_at TEXT NOT NULL) WITHOUT ROWID"
)


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    """The SQLite event log, plus the ledger's metadata, subject keys and lookups.

    Point reads of lookups and keys, which every send-time check makes, go through one
    plain connection of their own: in WAL mode a lone SELECT sees a consistent snapshot,
    so it needs neither the pool nor a BEGIN/ROLLBACK round, which cost more than the read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Set up the recorder; the reading connection opens on first use."""
        super().__init__(*args, **kwargs)
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()

    def _reader_connection(self) -> sqlite3.Connection:
        """The reading connection (call with the reader lock held)."""
        if self._reader is None:
            self._reader = sqlite3.connect(
                self.datastore.pool.db_name, uri=True, check_same_thread=False
            )
            self._reader.execute(f"PRAGMA mmap_size={1 << 30}")  # random point reads
        return self._reader

    def _read_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        with self._reader_lock:
            row: tuple[Any, ...] | None = self._reader_connection().execute(sql, params).fetchone()
            return row

    def close_reader(self) -> None:
        """Close the reading connection (the pool closes with the application)."""
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def construct_create_table_statements(self) -> list[str]:
        """The event table's statements, and the ledger's own tables."""
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            (
                "CREATE TABLE IF NOT EXISTS subject_keys (subject_id TEXT PRIMARY KEY, "
                "wrapped_key BLOB NOT NULL, created_at TEXT NOT NULL)"
            ),
            (
                "CREATE TABLE IF NOT EXISTS subject_lookup (lookup BLOB PRIMARY KEY, "
                "subject_id TEXT NOT NULL) WITHOUT ROWID"
            ),
            "CREATE INDEX IF NOT EXISTS subject_lookup_subject ON subject_lookup (subject_id)",
            SQLITE_SIGNALS_TABLE,
        ]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        new_subjects: Sequence[NewSubject] = (),
        signals: Sequence[bytes] = (),
        links: Sequence[tuple[bytes, UUID]] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        for lookup, subject_id in links:  # taken already: IntegrityError, and a retry
            c.execute(
                "INSERT INTO subject_lookup (lookup, subject_id) VALUES (?, ?)",
                (lookup, subject_id.hex),
            )
        for signal in signals:  # a duplicate fails the whole transaction: IntegrityError
            c.execute(
                "INSERT INTO ingested_signals (signal_key, recorded_at) VALUES (?, ?)",
                (signal, now_text()),
            )
        for subject in new_subjects:
            c.execute(
                "INSERT INTO subject_keys (subject_id, wrapped_key, created_at) VALUES (?, ?, ?)",
                (subject.subject_id.hex, subject.wrapped_key, now_text()),
            )
            c.execute(
                "INSERT INTO subject_lookup (lookup, subject_id) VALUES (?, ?)",
                (subject.lookup, subject.subject_id.hex),
            )
        return super()._insert_events(c, stored_events, **kwargs)

    def create_signals_table(self) -> None:
        """Create the table of ingested signals if this ledger predates it."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(SQLITE_SIGNALS_TABLE)

    def is_ingested(self, signal: bytes) -> bool:
        """Whether a signal (by its keyed hash) was ingested before."""
        return (
            self._read_one("SELECT 1 FROM ingested_signals WHERE signal_key = ?", (signal,))
            is not None
        )

    def mark_ingested(self, signal: bytes) -> bool:
        """Remember a signal that records no event; False if it was ingested before."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "INSERT INTO ingested_signals (signal_key, recorded_at) VALUES (?, ?) "
                "ON CONFLICT (signal_key) DO NOTHING",
                (signal, now_text()),
            )
            return bool(c.sqlite_cursor.rowcount == 1)

    def select_meta(self) -> dict[str, str]:
        """The ledger's metadata."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT name, value FROM ledger_meta")
            return {row["name"]: row["value"] for row in c.fetchall()}

    def write_meta(self, values: Mapping[str, str]) -> None:
        """Add or replace metadata."""
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT INTO ledger_meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def find_subject(self, lookup: bytes) -> UUID | None:
        """The subject found under a lookup key, if any."""
        row = self._read_one("SELECT subject_id FROM subject_lookup WHERE lookup = ?", (lookup,))
        return None if row is None else UUID(row[0])

    def select_wrapped_key(self, subject_id: UUID) -> bytes | None:
        """A subject's wrapped data key, or None."""
        row = self._read_one(
            "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (subject_id.hex,)
        )
        return None if row is None else bytes(row[0])

    def select_lookups(self, subject_ids: Sequence[str]) -> list[tuple[bytes, str]]:
        """The (lookup, str(uuid)) pairs under which these subjects are found."""
        by_hex = {s.replace("-", ""): s for s in subject_ids}
        hexes = list(by_hex)
        found: list[tuple[bytes, str]] = []
        for start in range(0, len(hexes), 500):
            chunk = hexes[start : start + 500]
            marks = ", ".join("?" * len(chunk))  # only placeholders enter the statement
            select = f"SELECT lookup, subject_id FROM subject_lookup WHERE subject_id IN ({marks})"  # noqa: S608
            with self._reader_lock:
                rows = self._reader_connection().execute(select, chunk).fetchall()
            found += [(bytes(lookup), by_hex[hex_id]) for lookup, hex_id in rows]
        return found

    def select_log(self, after: int, limit: int) -> list[Notification]:
        """Up to ``limit`` stored events after position ``after``: the log, read lean."""
        select = (
            "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        with self._reader_lock:
            rows = self._reader_connection().execute(select, (after, limit)).fetchall()
        # The id stays hex text: the mapper's model validation makes the UUID, faster.
        return [
            Notification(
                id=row[0],
                originator_id=row[1],
                originator_version=row[2],
                topic=row[3],
                state=row[4],
            )
            for row in rows
        ]

    def select_rows(self, after: int, limit: int) -> list[tuple[int, str, int, str, bytes]]:
        """Up to ``limit`` stored events after ``after`` as plain rows, for hashing and export.

        Each row is (position, stream id in its 8-4-4-4-12 form, stream version, topic,
        state); SQLite dashes the stored hex id itself, sparing Python a step per row.
        """
        select = f"{_STORED_ROWS}{self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        with self._reader_lock:
            rows: list[tuple[int, str, int, str, bytes]] = (
                self._reader_connection().execute(select, (after, limit)).fetchall()
            )
        return rows

    def select_stream_rows(self, stream_id: UUID) -> list[tuple[int, str, int, str, bytes]]:
        """One stream's stored events in order, as (position, id, version, topic, state)."""
        select = (
            f"{_STORED_ROWS}{self.events_table_name} "
            "WHERE originator_id = ? ORDER BY originator_version"
        )
        with self._reader_lock:
            rows: list[tuple[int, str, int, str, bytes]] = (
                self._reader_connection().execute(select, (stream_id.hex,)).fetchall()
            )
        return rows

    def select_wrapped_keys(self, subject_ids: Sequence[str]) -> dict[str, bytes]:
        """The wrapped data keys of many subjects (those that have one), by ``UUID.hex``."""
        keys: dict[str, bytes] = {}
        for start in range(0, len(subject_ids), 500):
            chunk = subject_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))  # only placeholders enter the statement
            select = (
                f"SELECT subject_id, wrapped_key FROM subject_keys WHERE subject_id IN ({marks})"  # noqa: S608
            )
            with self._reader_lock:
                rows = self._reader_connection().execute(select, chunk).fetchall()
            keys.update(rows)  # the ids are stored as hex
        return keys

    # Reading what verify compares with the log (evidence/derived.py).

    def select_rows_by_stream(
        self, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        """Up to ``limit`` stored events after (stream id, version) ``after``, in stream order.

        Rows as :meth:`select_rows` gives them; streams in id order, each in version order
        (the events table's primary key), so a reader holds one stream at a time.
        """
        stream, version = after if after is not None else ("", 0)
        select = (
            f"{_STORED_ROWS}{self.events_table_name} "
            "WHERE (originator_id, originator_version) > (?, ?) "
            "ORDER BY originator_id, originator_version LIMIT ?"
        )
        with self._reader_lock:
            rows: list[tuple[int, str, int, str, bytes]] = (
                self._reader_connection()
                .execute(select, (stream.replace("-", ""), version, limit))
                .fetchall()
            )
        return rows

    def select_lookups_between(self, low: str | None, high: str | None) -> list[tuple[bytes, str]]:
        """The (lookup, str(uuid)) pairs of subjects with ids in (``low``, ``high``].

        None leaves that end open.
        """
        select = "SELECT lookup, subject_id FROM subject_lookup WHERE subject_id > ?"
        params = [low.replace("-", "") if low is not None else ""]
        if high is not None:
            select += " AND subject_id <= ?"
            params.append(high.replace("-", ""))
        with self._reader_lock:
            rows = self._reader_connection().execute(select, params).fetchall()
        return [(bytes(lookup), _dashed(hex_id)) for lookup, hex_id in rows]

    def select_lookup_subjects(self, lookups: Sequence[bytes]) -> dict[bytes, str]:
        """Who each of ``lookups`` finds (those that find anyone), as str(uuid)."""
        found: dict[bytes, str] = {}
        for start in range(0, len(lookups), 500):
            chunk = lookups[start : start + 500]
            marks = ", ".join("?" * len(chunk))  # only placeholders enter the statement
            select = f"SELECT lookup, subject_id FROM subject_lookup WHERE lookup IN ({marks})"  # noqa: S608
            with self._reader_lock:
                rows = self._reader_connection().execute(select, chunk).fetchall()
            found.update((bytes(lookup), _dashed(hex_id)) for lookup, hex_id in rows)
        return found

    def select_stream_starts(self, stream_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """The position and topic of each stream's first event (of those that exist)."""
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(stream_ids), 500):
            chunk = [stream_id.replace("-", "") for stream_id in stream_ids[start : start + 500]]
            marks = ", ".join("?" * len(chunk))  # only placeholders enter the statement
            select = (
                f"SELECT rowid, originator_id, topic FROM {self.events_table_name} "  # noqa: S608
                f"WHERE originator_id IN ({marks}) AND originator_version = 1"
            )
            with self._reader_lock:
                rows = self._reader_connection().execute(select, chunk).fetchall()
            found.update((_dashed(hex_id), (position, topic)) for position, hex_id, topic in rows)
        return found


def _dashed(hex_id: str) -> str:
    """A stored id (32 hex digits) as ``str(UUID(...))`` writes it, without making the UUID."""
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def select_stored_between(
    connection: sqlite3.Connection, low: int, high: int, table: str = "stored_events"
) -> list[tuple[int, bytes, int, bytes, bytes]]:
    """Stored events at positions low < position <= high, byte for byte as stored.

    (position, id as 32 hex digits, version, topic, state), text columns as bytes: for
    hashing leaves with a connection of its own (in other processes), with no conversion
    between what is stored and what is hashed.
    """
    select = (
        "SELECT rowid, CAST(originator_id AS BLOB), originator_version, CAST(topic AS BLOB), "  # noqa: S608
        f"state FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid"
    )
    rows: list[tuple[int, bytes, int, bytes, bytes]] = connection.execute(
        select, (low, high)
    ).fetchall()
    return rows
