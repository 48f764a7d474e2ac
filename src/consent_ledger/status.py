"""What a person's consent is at a moment, folded from their consent events.

Two times matter to an auditor, and a status query takes both:

* ``at``: the moment whose state is wanted. Events count if they *occurred* by then,
  even if the ledger recorded them later (a paper form entered a week late).
* ``known_at``: what the ledger knew. Events count if they were *recorded* by then.
  ``known_at=T`` with ``at=T`` answers "what would the ledger have said at T?".

Events apply in the order they occurred (ties in the order recorded), so a backdated
opt-in never overrides a later opt-out. Each event is first reduced to *effects*: a grant,
a pending grant, a confirmation or a withdrawal, over a scope of channel, categories and
sender where ``None`` means "every".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .values import NoticeRef

EVERY = "*"
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


class EffectKind(StrEnum):
    """What an event does to the consent it covers."""

    GRANT = "grant"
    GRANT_PENDING = "grant-pending"
    CONFIRM = "confirm"
    WITHDRAW = "withdraw"


class State(StrEnum):
    """The state of consent for one channel, category and sender."""

    GRANTED = "granted"
    PENDING = "pending"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Effect:
    """One event's effect on consent, over a scope (``None``: every channel/category/sender)."""

    kind: EffectKind
    channel: str | None
    categories: tuple[str, ...] | None
    sender: str | None
    occurred_at: datetime
    recorded_at: datetime
    version: int
    event_type: str
    expires_at: datetime | None = None
    notice: NoticeRef | None = None

    def applies_to(self, channel: str, category: str, sender: str | None) -> bool:
        """Whether this effect reaches consent for ``channel``, ``category``, ``sender``.

        ``sender=None`` asks about consent for every sender of the business: an effect
        narrowed to one sender does not reach it.
        """
        return (
            (self.channel is None or self.channel == channel)
            and (self.categories is None or category in self.categories)
            and (self.sender is None or self.sender == sender)
        )

    def rows(self) -> Iterable[tuple[str, str, str | None]]:
        """The (channel, category, sender) rows this effect shows up in."""
        channel = self.channel or EVERY
        for category in self.categories or (EVERY,):
            yield channel, category, self.sender


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A person's consent for one channel, category and sender, and what it rests on.

    ``channel`` or ``category`` is ``"*"`` for a withdrawal that covered every one;
    ``sender`` is ``None`` for consent towards every sender of the business.
    """

    channel: str
    category: str
    sender: str | None
    state: State
    since: datetime
    expires_at: datetime | None
    notice: NoticeRef | None
    event_version: int
    event_type: str


def visible(effects: Iterable[Effect], at: datetime, known_at: datetime) -> list[Effect]:
    """The effects that count at ``at`` as known at ``known_at``, in the order they occurred."""
    seen = [e for e in effects if e.occurred_at <= at and e.recorded_at <= known_at]
    seen.sort(key=lambda e: (e.occurred_at, e.version))
    return seen


def evaluate(
    effects: list[Effect], channel: str, category: str, sender: str | None, at: datetime
) -> ConsentState | None:
    """The consent for one channel/category/sender after ``effects`` (already visible, in order).

    Returns None if no effect ever reached it.
    """
    state: ConsentState | None = None
    for effect in effects:
        if effect.applies_to(channel, category, sender):
            state = _apply(state, effect, channel, category, sender)
    if (
        state is not None
        and state.state is State.GRANTED
        and state.expires_at is not None
        and state.expires_at <= at
    ):
        return replace(state, state=State.EXPIRED, since=state.expires_at)
    return state


def _apply(
    state: ConsentState | None, effect: Effect, channel: str, category: str, sender: str | None
) -> ConsentState | None:
    if effect.kind is EffectKind.CONFIRM:
        if state is None or state.state is not State.PENDING:
            return state  # nothing awaited confirmation: a stray confirmation grants nothing
        return replace(
            state,
            state=State.GRANTED,
            since=effect.occurred_at,
            event_version=effect.version,
            event_type=effect.event_type,
        )
    new_state = {
        EffectKind.GRANT: State.GRANTED,
        EffectKind.GRANT_PENDING: State.PENDING,
        EffectKind.WITHDRAW: State.WITHDRAWN,
    }[effect.kind]
    return ConsentState(
        channel=channel,
        category=category,
        sender=sender,
        state=new_state,
        since=effect.occurred_at,
        expires_at=effect.expires_at if new_state is not State.WITHDRAWN else None,
        notice=effect.notice,
        event_version=effect.version,
        event_type=effect.event_type,
    )


def fold(effects: Iterable[Effect], at: datetime, known_at: datetime) -> list[ConsentState]:
    """Every channel/category/sender a person's events touched, with its state at ``at``."""
    seen = visible(effects, at, known_at)
    keys = sorted({key for effect in seen for key in effect.rows()}, key=_key_order)
    states = (evaluate(seen, *key, at) for key in keys)
    return [s for s in states if s is not None]


def _key_order(key: tuple[str, str, str | None]) -> tuple[str, str, str]:
    channel, category, sender = key
    return channel, category, sender or ""
