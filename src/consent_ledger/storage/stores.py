"""Where a ledger lives: an SQLite file (the embedded default) or a PostgreSQL schema.

One ``--db`` value picks either: a file path, or a URL such as
``postgresql://user:password@host:5432/dbname?schema=consent``. A store knows how to
tell whether a ledger exists there without creating anything, and which eventsourcing
environment opens it.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.utils import get_topic

from consent_ledger.exceptions import (
    InvalidInputError,
    LedgerExistsError,
    LedgerNotFoundError,
    NotALedgerError,
    StoreUnavailableError,
)
from consent_ledger.storage.sqlite import SQLiteLedgerRecorder

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

APP_PREFIX = "CONSENTLEDGER_"  # eventsourcing looks up <APPNAME>_<KEY> before <KEY>
META_TABLE_SQLITE = "ledger_meta"
EVENTS_TABLE_PREFIX = "consentledger"
POSTGRES_RECORDER_TOPIC = "consent_ledger.storage.postgres:PostgresLedgerRecorder"
CONNECT_TIMEOUT_SECONDS = 5
LOCK_TIMEOUT_SECONDS = 10


def _env(values: dict[str, str]) -> dict[str, str]:
    # Prefixed keys win over anything in os.environ, prefixed or not.
    return {APP_PREFIX + key: value for key, value in values.items()}


@dataclass(frozen=True)
class SQLiteStore:
    """A ledger in one SQLite file (WAL mode, synchronous=FULL)."""

    path: Path

    def __str__(self) -> str:
        """The path, as given."""
        return str(self.path)

    @property
    def default_key_file(self) -> Path:
        """Where the ledger's key file lives unless told otherwise: beside the database."""
        return self.path.with_name(self.path.name + ".key")

    def env(self, *, create: bool) -> dict[str, str]:
        """The eventsourcing environment that opens (or creates) this ledger."""
        return _env(
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.path),
                "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteLedgerRecorder),
                "CREATE_TABLE": "yes" if create else "no",
            }
        )

    def prepare_new(self) -> None:
        """Raise if something exists where a new ledger would be created; creates nothing.

        Raises:
            LedgerExistsError: the file exists.
            LedgerNotFoundError: its folder does not exist.
        """
        try:
            exists, folder = self.path.exists(), self.path.parent.is_dir()
        except OSError as e:  # a name too long for the file system
            msg = f"cannot create a ledger at {self.path}: {e.strerror or e}"
            raise LedgerNotFoundError(msg) from None
        if exists:
            msg = f"{self.path} exists already; choose another path for a new ledger"
            raise LedgerExistsError(msg)
        if not folder:
            msg = f"folder {self.path.parent} does not exist"
            raise LedgerNotFoundError(msg)

    def check_is_ledger(self) -> None:
        """Raise unless a ledger exists at this path. Creates nothing.

        Raises:
            LedgerNotFoundError: there is no file.
            NotALedgerError: the file is not an SQLite database holding a ledger.
        """
        try:
            is_file = self.path.is_file()
        except OSError as e:  # a name too long for the file system
            msg = f"no ledger at {self.path}: {e.strerror or e}"
            raise LedgerNotFoundError(msg) from None
        if not is_file:
            msg = f"no ledger at {self.path}; create one with: consent-ledger init --db {self.path}"
            raise LedgerNotFoundError(msg)
        try:
            with _read_only(self.path) as connection:
                row = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (META_TABLE_SQLITE,),
                ).fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is None:
            msg = f"{self.path} is not a consent ledger"
            raise NotALedgerError(msg)

    def remove(self) -> None:
        """Delete the database files (used to undo a failed ``init``)."""
        for suffix in ("", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    uri = path.resolve().as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        yield connection


@dataclass(frozen=True)
class PostgresStore:
    """A ledger in a schema of a PostgreSQL database."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    schema: str = "public"

    def __str__(self) -> str:
        """The location without the password."""
        return (
            f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}?schema={self.schema}"
        )

    @property
    def default_key_file(self) -> None:
        """A PostgreSQL ledger has no key file by default: the key is kept elsewhere."""

    def env(self, *, create: bool) -> dict[str, str]:
        """The eventsourcing environment that opens (or creates) this ledger."""
        return _env(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_HOST": self.host,
                "POSTGRES_PORT": str(self.port),
                "POSTGRES_USER": self.user,
                "POSTGRES_PASSWORD": self.password,
                "POSTGRES_DBNAME": self.dbname,
                "POSTGRES_SCHEMA": self.schema,
                "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
                "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
                # The table lock keeps insert order equal to commit order, so readers that
                # tail the log never skip an event. Never trade it for speed.
                "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
                "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
                "CREATE_TABLE": "yes" if create else "no",
            }
        )

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """A plain connection, for checks made before the ledger is opened; closed after.

        Raises:
            StoreUnavailableError: the server cannot be reached or refuses the login.
        """
        with self.open_connection() as connection:
            yield connection

    def open_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        """A new autocommit connection, which the caller closes.

        Raises:
            StoreUnavailableError: the server cannot be reached or refuses the login.
        """
        import psycopg  # noqa: PLC0415 (only PostgreSQL ledgers pay for importing it)

        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=self.dbname,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                autocommit=True,
            )
        except psycopg.OperationalError as e:
            msg = f"cannot connect to {self}: {connection_failure(e)}"
            raise StoreUnavailableError(msg) from None

    def _has_ledger(self, connection: psycopg.Connection[tuple[object, ...]]) -> bool:
        table = f"{EVENTS_TABLE_PREFIX}_meta"
        row = connection.execute(
            "SELECT to_regclass(%s)", (f'"{self.schema}"."{table}"',)
        ).fetchone()
        return row is not None and row[0] is not None

    def prepare_new(self) -> None:
        """Raise if a ledger exists in this schema already, else make sure the schema exists.

        Raises:
            LedgerExistsError: it does.
        """
        from psycopg.sql import SQL, Identifier  # noqa: PLC0415 (as in connect)

        with self.connect() as connection:
            if self._has_ledger(connection):
                msg = f"a ledger exists already at {self}"
                raise LedgerExistsError(msg)
            connection.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.schema))
            )

    def check_is_ledger(self) -> None:
        """Raise unless a ledger exists in this schema. Creates nothing.

        Raises:
            NotALedgerError: the schema holds no ledger.
        """
        with self.connect() as connection:
            if not self._has_ledger(connection):
                msg = (
                    f"no consent ledger at {self}; create one with: "
                    "consent-ledger init --db <this URL> --key-file <path>"
                )
                raise NotALedgerError(msg)

    def remove(self) -> None:
        """Nothing to undo: a failed ``init`` on PostgreSQL leaves empty tables behind."""


Store = SQLiteStore | PostgresStore


def parse_store(db: str | Path) -> Store:
    """The store a ``--db`` value names: a ``postgresql://`` URL, or else a file path.

    Raises:
        InvalidInputError: the URL is malformed.
    """
    text = str(db)
    if not text.startswith(("postgresql://", "postgres://")):
        return SQLiteStore(Path(text))
    url = urlsplit(text)
    query = parse_qs(url.query)
    try:
        port = url.port or 5432
    except ValueError:
        msg = f"the port in {text!r} is not a number"
        raise InvalidInputError(msg) from None
    dbname = unquote(url.path.lstrip("/"))
    if not dbname:
        msg = f"the URL {text!r} names no database (postgresql://user@host:port/DBNAME)"
        raise InvalidInputError(msg)
    return PostgresStore(
        host=url.hostname or "localhost",
        port=port,
        user=unquote(url.username or "postgres"),
        password=unquote(url.password or ""),
        dbname=dbname,
        schema=query.get("schema", ["public"])[0],
    )


def connection_failure(error: Exception) -> str:
    """The reason psycopg gives for a failed connection, on one line.

    Its message is several lines: the reason ('connection to server at "host", port 5999
    failed: Connection refused'), then hints ('Is the server running ...?'). Keep the
    reason, and the hints after it, joined.
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__
