"""Hypothesis strategies: random consent decisions about one person, and a reference model.

The reference model is deliberately naive: to answer "what was the state at t?" it replays
every decision that occurred by t, in order, over every (channel, category, sender) cell
of a small universe, and writes the new state into each cell a decision reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from hypothesis import strategies as st

CHANNELS = ("whatsapp", "sms")
CATEGORIES = ("offers", "order-updates")
SENDERS: tuple[str | None, ...] = (None, "shop-a")
NOTICES = {"whatsapp": "whatsapp-optin@1", "sms": "sms-optin@1"}
EVERY = "*"
BASE = datetime(2026, 1, 1, tzinfo=UTC)

Kind = Literal["opt-in", "confirm", "opt-out", "change", "stop", "resume"]


@dataclass(frozen=True)
class Step:
    """One decision about the person."""

    kind: Kind
    channel: str | None
    sender: str | None
    occurred_at: datetime
    granted: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] | None = ()  # None: every category
    pending: bool = False
    expires_at: datetime | None = None


def _hours(n: int) -> datetime:
    return BASE + timedelta(hours=n)


categories = st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True).map(
    lambda c: tuple(sorted(c))
)
hours = st.integers(min_value=0, max_value=200)


@st.composite
def steps(draw: st.DrawFn) -> Step:
    """A random opt-in, confirmation, opt-out or category change."""
    kind: Kind = draw(
        st.sampled_from(["opt-in", "confirm", "opt-out", "change", "opt-out", "stop", "resume"])
    )
    channel = draw(st.sampled_from(CHANNELS))
    sender = draw(st.sampled_from(SENDERS))
    occurred = draw(hours)
    expires = draw(st.none() | st.integers(min_value=1, max_value=100).map(lambda d: occurred + d))
    expires_at = None if expires is None else _hours(expires)
    if kind == "opt-in":
        return Step(
            kind,
            channel,
            sender,
            _hours(occurred),
            granted=draw(categories),
            pending=draw(st.booleans()),
            expires_at=expires_at,
        )
    if kind in ("stop", "resume"):
        return Step(kind, "whatsapp", sender, _hours(occurred))
    if kind == "confirm":
        return Step(kind, channel, sender, _hours(occurred), granted=draw(categories))
    if kind == "opt-out":
        every_channel = draw(st.booleans())
        return Step(
            kind,
            None if every_channel else channel,
            sender,
            _hours(occurred),
            withdrawn=draw(st.none() | categories),
        )
    roles = draw(
        st.lists(
            st.sampled_from(["grant", "withdraw", "keep"]),
            min_size=len(CATEGORIES),
            max_size=len(CATEGORIES),
        ).filter(lambda r: set(r) != {"keep"})
    )
    granted = tuple(c for c, r in zip(CATEGORIES, roles, strict=True) if r == "grant")
    withdrawn = tuple(c for c, r in zip(CATEGORIES, roles, strict=True) if r == "withdraw")
    return Step(
        kind,
        channel,
        sender,
        _hours(occurred),
        granted=granted,
        withdrawn=withdrawn,
        expires_at=expires_at if granted else None,
    )


@dataclass
class Cell:
    """The model's state of one (channel, category, sender) cell."""

    state: str
    since: datetime
    version: int
    expires_at: datetime | None = None
    waiting: Step | None = None  # the pending opt-in not yet confirmed or withdrawn


@dataclass
class Model:
    """Accepted decisions, in the order the ledger recorded them (version 2 onwards)."""

    accepted: list[tuple[int, Step]] = field(default_factory=list)

    def cells_at(
        self, at: datetime, recorded: int | None = None
    ) -> dict[tuple[str, str, str | None], Cell]:
        """Every cell of the universe that any decision by ``at`` reached, with its state."""
        decisions = [
            (v, s)
            for v, s in self.accepted
            if s.occurred_at <= at and (recorded is None or v <= recorded)
        ]
        decisions.sort(key=lambda vs: (vs[1].occurred_at, vs[0]))
        cells: dict[tuple[str, str, str | None], Cell] = {}
        for version, step in decisions:
            _replay(cells, step, version)
        for cell in cells.values():
            expiring = cell.state in ("granted", "pending")
            if expiring and cell.expires_at is not None and cell.expires_at <= at:
                cell.state, cell.since = "expired", cell.expires_at
        return cells

    def touched(
        self, at: datetime, recorded: int | None = None
    ) -> set[tuple[str, str, str | None]]:
        """The rows a status report lists: the cells decisions named directly."""
        rows = set()
        for version, step in self.accepted:
            if step.occurred_at > at or (recorded is not None and version > recorded):
                continue
            if step.kind in ("stop", "resume"):
                continue
            if step.kind == "opt-out":
                for category in step.withdrawn or (EVERY,):
                    rows.add((step.channel or EVERY, category, step.sender))
            else:
                for category in (*step.granted, *(step.withdrawn or ())):
                    rows.add((step.channel or EVERY, category, step.sender))
        return rows

    def platform_at(
        self, at: datetime, recorded: int | None = None
    ) -> dict[str | None, tuple[bool, datetime, int]]:
        """Per sender: the latest marketing stop or resume by ``at``: (stopped, since, version)."""
        latest: dict[str | None, tuple[bool, datetime, int]] = {}
        decisions = sorted(
            (
                (s.occurred_at, v, s)
                for v, s in self.accepted
                if s.kind in ("stop", "resume")
                and s.occurred_at <= at
                and (recorded is None or v <= recorded)
            ),
            key=lambda t: (t[0], t[1]),
        )
        for occurred, version, step in decisions:
            latest[step.sender] = (step.kind == "stop", occurred, version)
        return latest

    def pending_at(self, step: Step) -> bool:
        """Whether every category a confirmation names awaits confirmation when it occurs."""
        cells = self.cells_at(step.occurred_at)
        return all(_cell_state(cells, step, category) == "pending" for category in step.granted)


def _cell_state(
    cells: dict[tuple[str, str, str | None], Cell], step: Step, category: str
) -> str | None:
    assert step.channel is not None
    # The query cell for the confirmation's own scope, replayed on its own.
    cell = cells.get((step.channel, category, step.sender))
    return None if cell is None else cell.state


def _reaches(
    step: Step, channel: str, category: str, sender: str | None, categories: tuple[str, ...] | None
) -> bool:
    channel_ok = step.channel is None or step.channel == channel
    category_ok = categories is None or category in categories
    sender_ok = step.sender is None or step.sender == sender
    return channel_ok and category_ok and sender_ok


def _universe() -> list[tuple[str, str, str | None]]:
    return [
        (channel, category, sender)
        for channel in (*CHANNELS, EVERY)
        for category in (*CATEGORIES, EVERY)
        for sender in SENDERS
    ]


def _replay(cells: dict[tuple[str, str, str | None], Cell], step: Step, version: int) -> None:
    if step.kind in ("stop", "resume"):
        return  # platform preferences are not consent
    for key in _universe():
        channel, category, sender = key
        if step.kind == "opt-out":
            if _reaches(step, channel, category, sender, step.withdrawn):
                cells[key] = Cell("withdrawn", step.occurred_at, version)
            continue
        if EVERY in (channel, category):
            continue  # only withdrawals of everything reach the "every" rows
        if step.granted and _reaches(step, channel, category, sender, step.granted):
            if step.kind == "confirm":
                _confirm(cells.get(key), step, version)
            else:
                state = "pending" if step.pending else "granted"
                cell = cells.get(key)
                waiting = step if step.pending else (cell.waiting if cell else None)
                cells[key] = Cell(state, step.occurred_at, version, step.expires_at, waiting)
        if step.withdrawn and _reaches(step, channel, category, sender, step.withdrawn):
            cells[key] = Cell("withdrawn", step.occurred_at, version)


def _confirm(cell: Cell | None, step: Step, version: int) -> None:
    """README: a confirmation grants the opt-in that waits for it, unless that expired; also
    where a grant that came between has lapsed. Never after a withdrawal."""
    at = step.occurred_at
    if cell is None or cell.waiting is None:
        return
    waiting = cell.waiting
    if waiting.expires_at is not None and waiting.expires_at <= at:
        return
    lapsed = cell.state == "granted" and cell.expires_at is not None and cell.expires_at <= at
    if cell.state == "pending" or lapsed:
        cell.state, cell.since, cell.version = "granted", at, version
        cell.expires_at, cell.waiting = waiting.expires_at, None
