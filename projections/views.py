"""What every view shares: its position in the log, kept in the same transaction as its rows.

A view processes the log in batches. Each batch is one transaction that writes the view's
rows and moves its position from the position it started from to the batch's last event,
compare-and-set: a batch that another process has already applied fails and changes
nothing, and events at or below the position are skipped, so replaying changes nothing.
A view remembers which ledger it follows and refuses events from another, and which
version of its own schema it was built with: a view whose code has changed shape is
dropped and rebuilt from the log, never migrated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from consent_ledger.exceptions import ConsentLedgerError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from consent_ledger.storage.log import EventLog, LoggedEvent
    from consent_ledger.storage.view_database import Cursor, ViewDatabase

POSITIONS_TABLE = "view_positions"


class ViewError(ConsentLedgerError):
    """A view cannot follow the log it was given."""


class ConcurrentCatchUpError(ViewError):
    """Another process moved the view's position while this batch was being applied."""


def parse_timestamp(text: str) -> datetime:
    """A time a view stored as text (:func:`consent_ledger.model.values.utc_text`)."""
    return datetime.fromisoformat(text)


class View(ABC):
    """A read model of the log, in a database of its own choosing."""

    name: ClassVar[str]
    schema_version: ClassVar[int]

    def __init__(self, database: ViewDatabase) -> None:
        """Attach to ``database``, creating the view's tables if they are missing.

        Tables built by another version of the view are dropped, to be rebuilt.
        """
        self.database = database
        self.positions = database.table(POSITIONS_TABLE)
        with database.transaction() as cursor:
            database.lock_schema(cursor)
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.positions} (view_name TEXT PRIMARY KEY, "
                "ledger_id TEXT NOT NULL, log_position BIGINT NOT NULL, "
                "view_schema INTEGER NOT NULL)"
            )
            rows = cursor.execute(
                f"SELECT view_schema FROM {self.positions} WHERE view_name = ?", (self.name,)
            )
            if rows and rows[0][0] != self.schema_version:
                for table in self.table_names():
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
                cursor.execute(f"DELETE FROM {self.positions} WHERE view_name = ?", (self.name,))
            for statement in self.create_statements():
                cursor.execute(statement)

    @abstractmethod
    def create_statements(self) -> list[str]:
        """CREATE TABLE / INDEX IF NOT EXISTS statements for the view's rows."""

    @abstractmethod
    def table_names(self) -> list[str]:
        """The view's tables, to empty on rebuild."""

    @abstractmethod
    def apply(self, cursor: Cursor, events: Sequence[LoggedEvent], log: EventLog) -> None:
        """Write the rows for ``events`` (all after the view's position, in order)."""

    def position(self) -> int:
        """The position of the last event the view has applied (0: none)."""
        rows = self.database.query(
            f"SELECT log_position FROM {self.positions} WHERE view_name = ?", (self.name,)
        )
        return int(rows[0][0]) if rows else 0

    def follows(self) -> str | None:
        """The id of the ledger whose log the view follows, if it has started."""
        rows = self.database.query(
            f"SELECT ledger_id FROM {self.positions} WHERE view_name = ?", (self.name,)
        )
        return str(rows[0][0]) if rows else None

    def check_follows(self, ledger_id: str) -> None:
        """Raise unless the view is new or follows the ledger ``ledger_id``.

        Raises:
            ViewError: the view follows another ledger.
        """
        followed = self.follows()
        if followed is not None and followed != ledger_id:
            raise ViewError(self._other_ledger(followed, ledger_id))

    def _other_ledger(self, followed: str, ledger_id: str) -> str:
        return (
            f"view {self.name} in {self.database.description} follows ledger {followed}, "
            f"not {ledger_id}: rebuild it, or keep views of each ledger apart"
        )

    def process(self, log: EventLog, batch: Sequence[LoggedEvent]) -> int:
        """Apply a batch of ``log`` in one transaction with the new position; return events applied.

        Raises:
            ViewError: the view follows another ledger.
            ConcurrentCatchUpError: another process applied events meanwhile.
        """
        with self.database.transaction() as cursor:
            start = self._start(cursor, log.ledger_id)
            events = [e for e in batch if e.position > start]
            if not events:
                return 0
            self.apply(cursor, events, log)
            cursor.execute(
                f"UPDATE {self.positions} SET log_position = ? "
                "WHERE view_name = ? AND log_position = ?",
                (events[-1].position, self.name, start),
            )
            if cursor.rowcount() != 1:
                msg = f"view {self.name} moved past {start} while this batch was applied"
                raise ConcurrentCatchUpError(msg)
        return len(events)

    def _start(self, cursor: Cursor, ledger_id: str) -> int:
        """The view's position, locked until the transaction ends (SQLite: by BEGIN IMMEDIATE).

        The row is made first if missing: a process that races to make it waits for the
        other's commit, then reads the position the other left.
        """
        cursor.execute(
            f"INSERT INTO {self.positions} (view_name, ledger_id, log_position, view_schema) "
            "VALUES (?, ?, 0, ?) ON CONFLICT (view_name) DO NOTHING",
            (self.name, ledger_id, self.schema_version),
        )
        [(followed, position)] = cursor.execute(
            f"SELECT ledger_id, log_position FROM {self.positions} WHERE view_name = ?"
            + self.database.lock_rows,
            (self.name,),
        )
        if followed != ledger_id:
            raise ViewError(self._other_ledger(followed, ledger_id))
        return int(position)

    def reset(self) -> None:
        """Forget every row and the position, so the view can be rebuilt from the log."""
        with self.database.transaction() as cursor:
            for table in self.table_names():
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute(f"DELETE FROM {self.positions} WHERE view_name = ?", (self.name,))
