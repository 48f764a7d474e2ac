"""The PostgreSQL recorder: the event log, plus the ledger's metadata, keys and lookups.

Kept apart from ``sqlite.py`` so that an SQLite ledger never imports psycopg.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Composed, Identifier

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from uuid import UUID

    from eventsourcing.persistence import StoredEvent
    from psycopg import Cursor
    from psycopg.rows import DictRow

    from consent_ledger.storage.recorder import NewSubject


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    """The PostgreSQL event log, plus the ledger's metadata, subject keys and lookups."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        """Name the ledger's tables after the events table and add their statements."""
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        schema = Identifier(datastore.schema)
        self.meta_table = SQL("{}.{}").format(schema, Identifier(f"{prefix}_meta"))
        self.keys_table = SQL("{}.{}").format(schema, Identifier(f"{prefix}_subject_keys"))
        self.lookup_table = SQL("{}.{}").format(schema, Identifier(f"{prefix}_subject_lookup"))
        self.events_table = SQL("{}.{}").format(schema, Identifier(events_table_name))
        self.signals_table = SQL("{}.{}").format(schema, Identifier(f"{prefix}_ingested_signals"))
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, value text NOT NULL)"
                ).format(self.meta_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (subject_id uuid PRIMARY KEY, "
                    "wrapped_key bytea NOT NULL, created_at timestamptz NOT NULL)"
                ).format(self.keys_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (lookup bytea PRIMARY KEY, "
                    "subject_id uuid NOT NULL)"
                ).format(self.lookup_table),
                SQL("CREATE INDEX IF NOT EXISTS {} ON {} (subject_id)").format(
                    Identifier(f"{prefix}_subject_lookup_subject"), self.lookup_table
                ),
                self._signals_ddl(),
            ]
        )

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        new_subjects: Sequence[NewSubject] = (),
        signals: Sequence[bytes] = (),
        links: Sequence[tuple[bytes, UUID]] = (),
        **kwargs: Any,
    ) -> None:
        for lookup, subject_id in links:  # taken already: IntegrityError, and a retry
            curs.execute(
                SQL("INSERT INTO {} (lookup, subject_id) VALUES (%s, %s)").format(
                    self.lookup_table
                ),
                (lookup, subject_id),
            )
        for signal in signals:  # a duplicate fails the whole transaction: IntegrityError
            curs.execute(
                SQL("INSERT INTO {} (signal_key, recorded_at) VALUES (%s, %s)").format(
                    self.signals_table
                ),
                (signal, datetime.now(UTC)),
            )
        for subject in new_subjects:
            curs.execute(
                SQL(
                    "INSERT INTO {} (subject_id, wrapped_key, created_at) VALUES (%s, %s, %s)"
                ).format(self.keys_table),
                (subject.subject_id, subject.wrapped_key, datetime.now(UTC)),
            )
            curs.execute(
                SQL("INSERT INTO {} (lookup, subject_id) VALUES (%s, %s)").format(
                    self.lookup_table
                ),
                (subject.lookup, subject.subject_id),
            )
        super()._insert_events(curs, stored_events, **kwargs)

    def create_signals_table(self) -> None:
        """Create the table of ingested signals if this ledger predates it."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._signals_ddl())

    def _signals_ddl(self) -> Composed:
        return SQL(
            "CREATE TABLE IF NOT EXISTS {} (signal_key bytea PRIMARY KEY, "
            "recorded_at timestamptz NOT NULL)"
        ).format(self.signals_table)

    def is_ingested(self, signal: bytes) -> bool:
        """Whether a signal (by its keyed hash) was ingested before."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT 1 FROM {} WHERE signal_key = %s").format(self.signals_table), (signal,)
            )
            return curs.fetchone() is not None

    def mark_ingested(self, signal: bytes) -> bool:
        """Remember a signal that records no event; False if it was ingested before."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "INSERT INTO {} (signal_key, recorded_at) VALUES (%s, %s) "
                    "ON CONFLICT (signal_key) DO NOTHING"
                ).format(self.signals_table),
                (signal, datetime.now(UTC)),
            )
            return curs.rowcount == 1

    def select_meta(self) -> dict[str, str]:
        """The ledger's metadata."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT name, value FROM {}").format(self.meta_table))
            return {row["name"]: row["value"] for row in curs.fetchall()}

    def write_meta(self, values: Mapping[str, str]) -> None:
        """Add or replace metadata."""
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(
                SQL(
                    "INSERT INTO {} (name, value) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ).format(self.meta_table),
                list(values.items()),
            )

    def find_subject(self, lookup: bytes) -> UUID | None:
        """The subject found under a lookup key, if any."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT subject_id FROM {} WHERE lookup = %s").format(self.lookup_table),
                (lookup,),
            )
            row = curs.fetchone()
        return None if row is None else cast("UUID", row["subject_id"])

    def select_wrapped_key(self, subject_id: UUID) -> bytes | None:
        """A subject's wrapped data key, or None."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT wrapped_key FROM {} WHERE subject_id = %s").format(self.keys_table),
                (subject_id,),
            )
            row = curs.fetchone()
        return None if row is None else bytes(row["wrapped_key"])

    def select_wrapped_keys(self, subject_ids: Sequence[str]) -> dict[str, bytes]:
        """The wrapped data keys of many subjects (those that have one), by ``UUID.hex``."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT subject_id, wrapped_key FROM {} WHERE subject_id = ANY(%s::uuid[])"
                ).format(self.keys_table),
                (list(subject_ids),),
            )
            return {row["subject_id"].hex: bytes(row["wrapped_key"]) for row in curs.fetchall()}

    def select_stream_rows(self, stream_id: UUID) -> list[tuple[int, str, int, str, bytes]]:
        """One stream's stored events in order, as (position, id, version, topic, state)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id, originator_id, originator_version, topic, state "
                    "FROM {} WHERE originator_id = %s ORDER BY originator_version"
                ).format(self.events_table),
                (stream_id,),
            )
            return [
                (
                    row["notification_id"],
                    str(row["originator_id"]),
                    row["originator_version"],
                    row["topic"],
                    bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def select_lookups(self, subject_ids: Sequence[str]) -> list[tuple[bytes, str]]:
        """The (lookup, str(uuid)) pairs under which these subjects are found."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT lookup, subject_id FROM {} WHERE subject_id = ANY(%s::uuid[])").format(
                    self.lookup_table
                ),
                (list(subject_ids),),
            )
            return [(bytes(row["lookup"]), str(row["subject_id"])) for row in curs.fetchall()]

    # Reading what verify compares with the log (evidence/derived.py).

    def select_rows_by_stream(
        self, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        """Up to ``limit`` stored events after (stream id, version) ``after``, in stream order.

        As (position, id, version, topic, state); streams in id order, each in version
        order (the events table's primary key), so a reader holds one stream at a time.
        """
        where = SQL("")
        params: tuple[Any, ...] = (limit,)
        if after is not None:
            where = SQL("WHERE (originator_id, originator_version) > (%s::uuid, %s) ")
            params = (*after, limit)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id, originator_id, originator_version, topic, state "
                    "FROM {} {}ORDER BY originator_id, originator_version LIMIT %s"
                ).format(self.events_table, where),
                params,
            )
            return [
                (
                    row["notification_id"],
                    str(row["originator_id"]),
                    row["originator_version"],
                    row["topic"],
                    bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def select_lookups_between(self, low: str | None, high: str | None) -> list[tuple[bytes, str]]:
        """The (lookup, str(uuid)) pairs of subjects with ids in (``low``, ``high``].

        None leaves that end open.
        """
        clauses, params = [], []
        if low is not None:
            clauses.append(SQL("subject_id > %s::uuid"))
            params.append(low)
        if high is not None:
            clauses.append(SQL("subject_id <= %s::uuid"))
            params.append(high)
        where = SQL(" WHERE ") + SQL(" AND ").join(clauses) if clauses else SQL("")
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT lookup, subject_id FROM {}{}").format(self.lookup_table, where), params
            )
            return [(bytes(row["lookup"]), str(row["subject_id"])) for row in curs.fetchall()]

    def select_lookup_subjects(self, lookups: Sequence[bytes]) -> dict[bytes, str]:
        """Who each of ``lookups`` finds (those that find anyone), as str(uuid)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT lookup, subject_id FROM {} WHERE lookup = ANY(%s::bytea[])").format(
                    self.lookup_table
                ),
                (list(lookups),),
            )
            return {bytes(row["lookup"]): str(row["subject_id"]) for row in curs.fetchall()}

    def select_stream_starts(self, stream_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """The position and topic of each stream's first event (of those that exist)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id, originator_id, topic FROM {} "
                    "WHERE originator_id = ANY(%s::uuid[]) AND originator_version = 1"
                ).format(self.events_table),
                (list(stream_ids),),
            )
            return {
                str(row["originator_id"]): (row["notification_id"], row["topic"])
                for row in curs.fetchall()
            }
