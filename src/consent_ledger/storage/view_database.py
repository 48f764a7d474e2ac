"""The database views and tamper evidence live in: an SQLite file or a PostgreSQL schema.

Views are derived data, rebuilt from the log at will, so they keep their own connection (so
do the Merkle leaves and checkpoints, beside the log) and speak one portable dialect: ``?``
placeholders (rewritten for psycopg), text columns for times (UTC ISO 8601 with microseconds,
which sort as the times they spell) and ``INSERT ... ON CONFLICT`` upserts. Every write goes
through :meth:`ViewDatabase.transaction`.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consent_ledger.exceptions import ViewDatabaseError
from consent_ledger.storage.stores import PostgresStore, SQLiteStore, Store, parse_store

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg

_PLACEHOLDER = re.compile(r"\?")
MMAP_BYTES = 1 << 30
CACHE_KIB = 64 * 1024
CHECKPOINT_PAGES = 10_000
PAGE_ROWS = 1_000
SCHEMA_LOCK = 0x636F6E73656E74  # an arbitrary advisory-lock key, the same in every process


class Cursor(ABC):
    """The calls views make inside a transaction."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; return its rows (empty for writes)."""

    @abstractmethod
    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of parameters."""

    @abstractmethod
    def rowcount(self) -> int:
        """How many rows the last statement changed."""


class ViewDatabase(ABC):
    """A connection to the database that holds views, safe to share between threads."""

    def __init__(self) -> None:
        """Guard the connection with a lock."""
        self._lock = threading.RLock()

    @abstractmethod
    def table(self, name: str) -> str:
        """The table's name as SQL refers to it (schema-qualified on PostgreSQL)."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A transaction that commits when the block ends and rolls back on error."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only statement."""
        with self.transaction() as cursor:
            return cursor.execute(sql, params)

    @abstractmethod
    def pages(
        self, sql: str, params: Sequence[Any] = (), size: int | None = None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of one read-only statement, ``size`` (default :data:`PAGE_ROWS`) at a time.

        Memory stays flat however many rows there are.
        The statement sees one snapshot of the database however long it is read.
        """

    @abstractmethod
    def has_table(self, name: str) -> bool:
        """Whether the table ``name`` (unqualified) exists: to read views without making them."""

    lock_rows = ""
    """What a SELECT adds to lock the rows it reads until the transaction ends."""
    clustered = ""
    """What a CREATE TABLE adds to keep rows in primary-key order (SQLite: WITHOUT ROWID)."""
    binary = "BLOB"
    """The column type for bytes."""

    def lock_schema(self, cursor: Cursor) -> None:  # noqa: B027 (SQLite needs nothing)
        """Serialise schema changes with other processes until the transaction ends."""

    def lock_table(self, cursor: Cursor, table: str) -> None:  # noqa: B027 (SQLite: BEGIN IMMEDIATE)
        """Keep other writers of ``table`` out until the transaction ends."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the views live, for messages."""


class _SQLiteCursor(Cursor):
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._cursor.execute(sql, params).fetchall()

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, rows)

    def rowcount(self) -> int:
        return self._cursor.rowcount


class SQLiteViewDatabase(ViewDatabase):
    """Views in an SQLite file (WAL; may be the ledger's own file)."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Open the file; create it only if ``create``.

        Raises:
            ViewDatabaseError: there is no file and ``create`` is false, or the path is not
                an SQLite database (or its folder is missing).
        """
        super().__init__()
        self.path = path
        if not create and not path.exists():
            msg = (
                f"no view database at {path}: make it with "
                f"consent-ledger projections catch-up --view-db {path}"
            )
            raise ViewDatabaseError(msg)
        try:
            self._connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:  # a folder that is missing, a file of another kind
            msg = f"cannot open {path} as the views' SQLite database: {e}"
            raise ViewDatabaseError(msg) from None
        # Views are rebuilt from the log: after a power loss a view may lose its last
        # transactions, rows and position together, and catch up again.
        self._connection.execute("PRAGMA synchronous=NORMAL")
        # Checks read single rows at random: map the file instead of copying pages in; and
        # keep the trees that take random inserts (lookups) in memory while catching up.
        self._connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self._connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        # Catching up writes many pages per batch: checkpoint (and fsync) the WAL every
        # ~40 MB rather than every 4 MB.
        self._connection.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")

    clustered = " WITHOUT ROWID"

    def table(self, name: str) -> str:
        """Tables are unqualified in SQLite."""
        return name

    def has_table(self, name: str) -> bool:
        """Whether the file holds the table."""
        rows = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """BEGIN IMMEDIATE ... COMMIT, holding the write lock from the start."""
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteCursor(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Reads need no transaction in WAL mode: each statement sees a consistent snapshot."""
        with self._lock:
            return self._connection.execute(sql, params).fetchall()

    def pages(
        self, sql: str, params: Sequence[Any] = (), size: int | None = None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """One statement read page by page (WAL: its snapshot holds until it is done)."""
        with self._lock:
            cursor = self._connection.execute(sql, params)
        try:
            while True:
                with self._lock:
                    rows = cursor.fetchmany(size or PAGE_ROWS)
                if not rows:
                    return
                yield rows
        finally:
            cursor.close()

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    @property
    def description(self) -> str:
        """The file."""
        return str(self.path)


class _PostgresCursor(Cursor):
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(_PLACEHOLDER.sub("%s", sql), params)
        return self._cursor.fetchall() if self._cursor.description else []

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(_PLACEHOLDER.sub("%s", sql), rows)

    def rowcount(self) -> int:
        return self._cursor.rowcount


class PostgresViewDatabase(ViewDatabase):
    """Views in a PostgreSQL schema (may be the ledger's own)."""

    def __init__(self, store: PostgresStore) -> None:
        """Connect, and create the schema if needed."""
        from psycopg import sql  # noqa: PLC0415 (only PostgreSQL views pay for importing it)

        super().__init__()
        self.store = store
        self._connection = store.open_connection()  # a clear error if the server is down
        try:
            self._connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(store.schema))
            )
        except BaseException:
            self._connection.close()
            raise
        self._schema = store.schema.replace('"', '""')

    def table(self, name: str) -> str:
        """``"schema".name``."""
        return f'"{self._schema}".{name}'

    def has_table(self, name: str) -> bool:
        """Whether the schema holds the table."""
        [(found,)] = self.query("SELECT to_regclass(?) IS NOT NULL", (self.table(name),))
        return bool(found)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A psycopg transaction."""
        with self._lock, self._connection.transaction(), self._connection.cursor() as cursor:
            yield _PostgresCursor(cursor)

    def pages(
        self, sql: str, params: Sequence[Any] = (), size: int | None = None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """One statement through a server-side cursor, in one transaction (one snapshot).

        The connection is held until the rows are read (or the iterator is closed).
        """
        with (
            self._lock,
            self._connection.transaction(),
            self._connection.cursor(name="consent_ledger_pages") as cursor,
        ):
            cursor.execute(_PLACEHOLDER.sub("%s", sql), params)
            while rows := cursor.fetchmany(size or PAGE_ROWS):
                yield rows

    lock_rows = " FOR UPDATE"
    binary = "BYTEA"

    def lock_schema(self, cursor: Cursor) -> None:
        """Take a transaction-scoped advisory lock: CREATE ... IF NOT EXISTS races otherwise."""
        cursor.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))

    def lock_table(self, cursor: Cursor, table: str) -> None:
        """``LOCK TABLE ... IN EXCLUSIVE MODE``: readers go on, other writers wait."""
        cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    @property
    def description(self) -> str:
        """The URL, without password."""
        return str(self.store)


def open_view_database(db: str | Path | Store, *, create: bool = True) -> ViewDatabase:
    """The database named by a ``--view-db`` (or ``--db``) value, or a ledger's store.

    ``create``: make an SQLite file that is not there yet (else that is an error).

    Raises:
        ViewDatabaseError: the database is not there (or not one) and is not to be made.
    """
    store = db if isinstance(db, (SQLiteStore, PostgresStore)) else parse_store(db)
    if isinstance(store, PostgresStore):
        return PostgresViewDatabase(store)
    return SQLiteViewDatabase(Path(store.path), create=create)
