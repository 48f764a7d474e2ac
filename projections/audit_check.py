"""The audit-log view, checked against the log (see :mod:`consent_ledger.projections.checks`).

Every event up to the view's position has its row, built by the view's own code and
compared column by column, and a category row for each category the row names. Rows are
read by position, so a page of streams costs one read per table; rows for positions the
log does not hold are found at the end by counting, then named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consent_ledger.projections.audit_log import COLUMNS, AuditLogView
from consent_ledger.projections.audit_rows import Stream, event_row, first_named

if TYPE_CHECKING:
    from collections.abc import Iterator

    from consent_ledger.evidence.derived import StreamPage
    from consent_ledger.storage.log import EventLog

CHUNK = 500  # positions per IN (...) list


class AuditLogCheck:
    """The audit-log view (its rows and its category index) against the log."""

    name = AuditLogView.name

    def __init__(self, view: AuditLogView, log: EventLog) -> None:
        """Compare ``view`` with ``log`` up to the position the view has reached now."""
        self.view = view
        self.log = log
        self.position = view.position()
        self.rows = 0
        self.categories = 0

    def check(self, page: StreamPage) -> list[str]:
        """Each event of the page up to the view's position, against its row."""
        expected: dict[int, tuple[Any, ...]] = {}
        for stream in page.streams:
            count = sum(1 for row in stream.rows if row[0] <= self.position)
            if not count:
                continue
            events = page.decoded(stream)[:count]
            first = events[0] if stream.rows[0][2] == 1 else None
            context = first_named(first) if first is not None else Stream(None, None)
            for row, event in zip(stream.rows[:count], events, strict=True):
                expected[row[0]] = event_row(row[0], event, stream.stream_id, context)
        self.rows += len(expected)
        return self._compare_rows(expected) + self._compare_categories(expected)

    def _compare_rows(self, expected: dict[int, tuple[Any, ...]]) -> list[str]:
        table = self.view.rows
        select = f"SELECT {', '.join(COLUMNS)} FROM {table}"
        held = {row[0]: row for row in self._read(select, expected)}
        problems = []
        for position, row in expected.items():
            found = held.get(position)
            if found is None:
                problems.append(f"{table}: position {position} ({row[4]}) is missing")
            elif tuple(found) != row:
                index = next(i for i, (a, b) in enumerate(zip(found, row, strict=True)) if a != b)
                problems.append(
                    f"{table}: position {position}: {COLUMNS[index]} is {found[index]!r}, "
                    f"the log says {row[index]!r}"
                )
        return problems

    def _compare_categories(self, expected: dict[int, tuple[Any, ...]]) -> list[str]:
        wanted = {
            (category, position)
            for position, row in expected.items()
            for column in (row[9], row[10], row[11])
            for category in column.split()
        }
        self.categories += len(wanted)
        if not wanted:
            return []
        table = self.view.categories
        names = sorted({category for category, _ in wanted})
        marks = ", ".join("?" * len(names))
        held = {
            (category, position)
            for category, position in self._read(
                f"SELECT category, position FROM {table}",
                expected,
                f"category IN ({marks}) AND ",
                names,
            )
        }
        return [
            f"{table}: position {position} has no row for category {category}"
            for category, position in sorted(wanted - held, key=lambda pair: pair[1])
        ]

    def _read(
        self,
        select: str,
        expected: dict[int, Any],
        where: str = "",
        params: list[Any] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``select`` (SELECT ... FROM table) for the expected positions, in chunks."""
        positions = sorted(expected)
        for start in range(0, len(positions), CHUNK):
            chunk = positions[start : start + CHUNK]
            yield from self.view.database.query(
                f"{select} WHERE {where}position IN ({', '.join('?' * len(chunk))})",
                [*(params or []), *chunk],
            )

    def finish(self) -> list[str]:
        """Rows for positions no event accounts for, and category rows no row names."""
        problems = []
        database, rows, categories = self.view.database, self.view.rows, self.view.categories
        [(count,)] = database.query(
            f"SELECT COUNT(*) FROM {rows} WHERE position <= ?", (self.position,)
        )
        if count > self.rows:  # (fewer: each missing row was named with its page)
            problems.append(self._stray_row(count))
        if self.view.position() == self.position:  # else: caught up meanwhile, rows beyond
            beyond = database.query(
                f"SELECT MIN(position) FROM {rows} WHERE position > ?", (self.position,)
            )
            if beyond[0][0] is not None:
                problems.append(
                    f"{rows}: position {beyond[0][0]} is past the view's position "
                    f"{self.position}: no event of the log accounts for it"
                )
        [(count,)] = database.query(
            f"SELECT COUNT(*) FROM {categories} WHERE position <= ?", (self.position,)
        )
        if count > self.categories:
            problems.append(self._stray_category(count))
        return problems

    def _stray_row(self, count: int) -> str:
        """Name a row no event of the log accounts for (a position the log does not hold)."""
        what = f"{self.view.rows}: {count} rows up to position {self.position}, events {self.rows}"
        log_positions = _positions(self.log, self.position)
        held = self.view.database.pages(
            f"SELECT position FROM {self.view.rows} WHERE position <= ? ORDER BY position",
            (self.position,),
        )
        wanted = next(log_positions, None)
        for page in held:
            for (position,) in page:
                while wanted is not None and wanted < position:
                    wanted = next(log_positions, None)
                if wanted != position:
                    return f"{what}; position {position} is not in the log"
        return what

    def _stray_category(self, count: int) -> str:
        """Name a category row that its event's row does not name."""
        categories, rows = self.view.categories, self.view.rows
        found = self.view.database.query(
            f"SELECT c.category, c.position FROM {categories} c "
            f"LEFT JOIN {rows} a ON a.position = c.position WHERE c.position <= ? AND "
            "(a.position IS NULL OR (' ' || a.granted || ' ' || a.withdrawn || ' ' || "
            "a.confirmed || ' ') NOT LIKE (? || c.category || ?)) LIMIT 1",
            (self.position, "% ", " %"),  # (a literal % would be a psycopg placeholder)
        )
        what = f"{categories}: {count} rows where the log gives {self.categories}"
        if found:
            category, position = found[0]
            return f"{what}; position {position} does not name category {category}"
        return what


def _positions(log: EventLog, last: int) -> Iterator[int]:
    """The log's positions up to ``last``, in order."""
    after = -(2**63)
    while rows := log.read_stored(after, 10_000):
        for row in rows:
            if row[0] > last:
                return
            yield row[0]
        after = rows[-1][0]
