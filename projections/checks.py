"""The views, checked against the log: what ``verify`` compares a decision's inputs with.

Each check recomputes a view's rows from the log with the view's own code (the same fold,
the same row builders) and compares them with the rows the view holds, one page of
streams at a time (:mod:`consent_ledger.evidence.derived` reads the log and calls
:meth:`check` per page). A view is compared up to its position: one that is behind the
log is not damaged, it has yet to catch up, and nothing is written to it.

Rows are fetched by key (subject ids, positions, lookups), so a check reads each row once
and holds one page in memory. Rows no stream accounts for (a subject the log never
registered, a position past the log) are found at the end, by counting, then named.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from uuid import UUID

import orjson
from consent_ledger.projections.audit_check import AuditLogCheck
from consent_ledger.projections.audit_log import AuditLogView
from consent_ledger.projections.consent_status import (
    _STATUS_COLUMNS,
    ConsentStatusView,
    _dump,
    _Folded,
)
from consent_ledger.projections.sends import send_window, sent_json
from consent_ledger.projections.views import POSITIONS_TABLE, View, ViewError

from consent_ledger.evidence.derived import REGISTERED
from consent_ledger.model.consent_record import ConsentRecord

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from consent_ledger.evidence.derived import StreamPage, ViewCheck
    from consent_ledger.storage.log import EventLog
    from consent_ledger.storage.recorder import LedgerRecorder
    from consent_ledger.storage.view_database import ViewDatabase

_SUBJECT_COLUMNS = (
    "subject_id",
    "business_id",
    "identifier_kind",
    "identifier_nonce",
    "identifier_ct",
    "effects",
    "answers",
    "sends",
)
_STATUS = _STATUS_COLUMNS.split(", ")
_PLATFORM = ("subject_id", "sender", "stopped", "since", "event_version", "event_type")


def built_views(database: ViewDatabase, ledger_id: str) -> tuple[list[View], list[str]]:
    """The views built in ``database`` by this version, opened without creating anything.

    Returns them, and the names of views built by another version (not checked: the
    next catch-up rebuilds them).

    Raises:
        ViewError: a view there follows another ledger.
    """
    from consent_ledger.projections.runner import VIEWS  # noqa: PLC0415 (runner imports this)

    if not database.has_table(POSITIONS_TABLE):
        return [], []
    rows = database.query(
        f"SELECT view_name, ledger_id, view_schema FROM {database.table(POSITIONS_TABLE)}"
    )
    built, outdated = [], []
    for name, followed, schema in sorted(rows):
        view_class = VIEWS.get(name)
        if view_class is None:
            continue
        if followed != ledger_id:
            msg = (
                f"view {name} in {database.description} follows ledger {followed}, not "
                f"{ledger_id}: it is not this ledger's"
            )
            raise ViewError(msg)
        if schema != view_class.schema_version:
            outdated.append(name)
        else:  # its tables are there: opening it creates nothing
            built.append(view_class(database))
    return built, outdated


def view_checks(views: Iterable[View], log: EventLog) -> list[ViewCheck]:
    """A check of each view against ``log``, for ``ConsentLedger.verify(views=...)``."""
    checks: list[ViewCheck] = []
    for view in views:
        if isinstance(view, ConsentStatusView):
            checks.append(ConsentStatusCheck(view, log))
        elif isinstance(view, AuditLogView):
            checks.append(AuditLogCheck(view, log))
    return checks


class _Table(NamedTuple):
    """A table of the view, its columns, and how many after ``subject_id`` key a row."""

    name: str
    columns: Sequence[str]
    key_width: int


class _Expected:
    """A person's rows in the consent-status view, as the log gives them."""

    __slots__ = ("platform", "registered_at", "status", "subject")

    def __init__(self, registered_at: int, events: Sequence[Any]) -> None:
        registered = events[0]
        subject = str(registered.originator_id)
        effects = [
            effect
            for event in events[1:]
            if isinstance(event, ConsentRecord.Change)
            for effect in event.effects()
        ]
        folded = _Folded()
        answers = folded.add(subject, registered.business_id, effects)
        self.registered_at = registered_at
        self.subject = (
            subject,
            registered.business_id,
            str(registered.identifier_kind),
            base64.b64decode(registered.identifier.nonce),
            base64.b64decode(registered.identifier.ct),
            _dump(effects),
            answers,
            orjson.dumps(
                send_window(
                    [sent_json(e) for e in events if isinstance(e, ConsentRecord.MessageSent)]
                )
            ).decode(),
        )
        self.status = folded.status
        self.platform = folded.platform


class ConsentStatusCheck:
    """The consent-status view (every table of it) against the log."""

    name = ConsentStatusView.name

    def __init__(self, view: ConsentStatusView, log: EventLog) -> None:
        """Compare ``view`` with ``log`` up to the position the view has reached now."""
        self.view = view
        self.log = log
        self.position = view.position()
        self.counts = {view.subjects: 0, view.status: 0, view.platform_table: 0}
        self.erased: set[str] = set()

    def check(self, page: StreamPage) -> list[str]:
        """The page's people: their rows, and the lookups the view finds them by."""
        expected = {}
        for stream in page.streams:
            if stream.is_consent_record and stream.rows[0][0] <= self.position:
                events = page.decoded(stream)
                count = sum(1 for row in stream.rows if row[0] <= self.position)
                expected[stream.stream_id] = _Expected(stream.rows[0][0], events[:count])
        self.erased |= page.erased
        problems = self._compare(expected) + self._lookups(page, expected)
        if problems and self.view.position() != self.position:  # caught up meanwhile?
            changed = {s for s, _ in problems if self._changed_since(s)}
            problems = [(s, problem) for s, problem in problems if s not in changed]
        return [problem for _, problem in problems]

    def _compare(self, expected: dict[str, _Expected]) -> list[tuple[str, str]]:
        view = self.view
        subjects = list(expected)
        held = {row[0]: row for row in self._rows(view.subjects, _SUBJECT_COLUMNS, subjects)}
        status = _grouped(self._rows(view.status, _STATUS, subjects))
        platform = _grouped(self._rows(view.platform_table, _PLATFORM, subjects))
        problems = []
        for subject, rows in expected.items():
            self.counts[view.subjects] += 1
            self.counts[view.status] += len(rows.status)
            self.counts[view.platform_table] += len(rows.platform)
            found = [*self._subject_row(subject, held.get(subject), rows)]
            found += _compare_rows(
                _Table(view.status, _STATUS, 3), subject, status.get(subject, []), rows.status
            )
            found += _compare_rows(
                _Table(view.platform_table, _PLATFORM, 1),
                subject,
                platform.get(subject, []),
                rows.platform,
            )
            problems += [(subject, problem) for problem in found]
        return problems

    def _subject_row(
        self, subject: str, held: tuple[Any, ...] | None, rows: _Expected
    ) -> Iterator[str]:
        table = self.view.subjects
        if held is None:
            at = rows.registered_at
            yield f"{table}: subject {subject} (registered at position {at}) is missing"
        elif held != rows.subject:  # (a driver's buffer equals the bytes it holds)
            column = _first_difference(_SUBJECT_COLUMNS, held, rows.subject)
            what = " (what a check reads)" if column == "answers" else ""
            yield f"{table}: subject {subject}: {column}{what} differs from the log"

    def _rows(
        self, table: str, columns: Sequence[str], subjects: list[str]
    ) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(subjects):
            rows += self.view.database.query(
                f"SELECT {', '.join(columns)} FROM {table} "
                f"WHERE subject_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
        return rows

    def _lookups(self, page: StreamPage, expected: dict[str, _Expected]) -> list[tuple[str, str]]:
        """Each identifier named up to the view's position finds its person in the view."""
        named = [(s, n) for s in expected for n in page.lookups.get(s, ())]
        table = self.view.lookups
        finds: dict[bytes, str] = {}
        for chunk in _chunks([n.lookup for _, n in named]):
            rows = self.view.database.query(
                f"SELECT lookup, subject_id FROM {table} "
                f"WHERE lookup IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            finds.update((bytes(lookup), subject) for lookup, subject in rows)
        problems = []
        for subject, lookup in named:
            found = finds.get(lookup.lookup)
            what = f"the identifier of subject {subject} recorded at position {lookup.position}"
            if found is not None and found != subject:
                problems.append((subject, f"{table}: {what} finds subject {found} in the view"))
            elif found is None and lookup.position <= self.position:
                problems.append((subject, f"{table}: {what} finds nobody in the view"))
        return problems

    def _changed_since(self, subject: str) -> bool:
        """Whether a person has events after the compared position (the view moved on)."""
        return any(row[0] > self.position for row in self.log.read_stream(UUID(subject)))

    def finish(self) -> list[str]:
        """Rows of people the log does not register, and lookups the ledger does not hold."""
        problems = self._stray_lookups()
        if self.view.position() != self.position:
            return problems  # caught up meanwhile: new people's rows are no strays
        database = self.view.database
        for table, expected in self.counts.items():
            [(count,)] = database.query(f"SELECT COUNT(*) FROM {table}")
            if count > expected:  # (fewer: each missing row was named with its person)
                problems.append(self._strays(table, count, expected))
        return problems

    def _strays(self, table: str, count: int, expected: int) -> str:
        """Name a row of ``table`` that belongs to nobody the log registered."""
        what = f"{table}: {count} rows where the log gives {expected}"
        subjects = self.view.subjects
        if table != subjects:
            rows = self.view.database.query(
                f"SELECT t.subject_id FROM {table} t WHERE NOT EXISTS "
                f"(SELECT 1 FROM {subjects} s WHERE s.subject_id = t.subject_id) LIMIT 1"
            )
            return f"{what}; subject {rows[0][0]} has rows but is unknown" if rows else what
        recorder = cast("LedgerRecorder", self.log.recorder)
        for page in self.view.database.pages(f"SELECT subject_id FROM {subjects}"):
            ids = [row[0] for row in page]
            starts = recorder.select_stream_starts(ids)
            for subject in ids:
                position, topic = starts.get(subject, (None, None))
                if position is None or position > self.position or topic != REGISTERED:
                    return f"{what}; subject {subject} is not registered in the log"
        return what

    def _stray_lookups(self) -> list[str]:
        """Lookups in the view that the ledger's lookups do not hold (they are copies)."""
        recorder = cast("LedgerRecorder", self.log.recorder)
        table = self.view.lookups
        for page in self.view.database.pages(f"SELECT lookup, subject_id FROM {table}"):
            ledger = recorder.select_lookup_subjects([bytes(lookup) for lookup, _ in page])
            for lookup, subject in page:
                if ledger.get(bytes(lookup)) != subject and subject not in self.erased:
                    problem = (
                        f"{table}: a lookup finds subject {subject} in the view, but not in "
                        "the ledger's lookups (subject_lookup)"
                    )
                    return [problem]
        return []


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """``items`` in lists of ``size``: keys per IN (...) list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _grouped(rows: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    by_subject: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_subject.setdefault(row[0], []).append(row)
    return by_subject


def _first_difference(columns: Sequence[str], found: Sequence[Any], wanted: Sequence[Any]) -> str:
    return next(
        (column for column, a, b in zip(columns, found, wanted, strict=True) if a != b),
        columns[0],
    )


def _compare_rows(
    table: _Table, subject: str, found: list[tuple[Any, ...]], wanted: list[tuple[Any, ...]]
) -> Iterator[str]:
    """A person's rows of one table against the log's, each difference named by its key."""
    if set(found) == set(wanted):  # the rule: no row of a table is keyed twice
        return
    name, columns, key_width = table
    have = {row[1 : 1 + key_width]: row for row in found}
    want = {tuple(row[1 : 1 + key_width]): tuple(row) for row in wanted}
    for key, row in want.items():
        label = "/".join(str(part or "any") for part in key)
        held = have.get(key)
        if held is None:
            yield f"{name}: subject {subject}: no row for {label} (the log gives one)"
        elif held != row:
            column = _first_difference(columns, held, row)
            index = list(columns).index(column)
            yield (
                f"{name}: subject {subject}: {label}: {column} is {held[index]!r}, "
                f"the log says {row[index]!r}"
            )
    for key in have.keys() - want.keys():
        label = "/".join(str(part or "any") for part in key)
        yield f"{name}: subject {subject}: a row for {label} that the log does not give"
