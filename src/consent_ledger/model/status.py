"""What a person's consent is at a moment, folded from their consent events.

Two times matter to an auditor, and a status query takes both:

* ``at``: the moment whose state is wanted. Events count if they *occurred* by then,
  even if the ledger recorded them later (a paper form entered a week late).
* ``known_at``: what the ledger knew. Events count if they were *recorded* by then.
  ``known_at=T`` with ``at=T`` answers "what would the ledger have said at T?".

Events apply in the order they occurred (ties in the order recorded), so a backdated
opt-in never overrides a later opt-out. Each event is first reduced to *effects*: a grant,
a pending grant, a confirmation or a withdrawal, over a scope of channel, categories and
sender where ``None`` means "every"; or a WhatsApp marketing stop or resume for a sender.

Expiry needs no event: a *base* state is what the events say (granted until some time);
:func:`expire` turns it into ``expired`` once that time has passed. Views store base states
and expire them when asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from itertools import product
from typing import TYPE_CHECKING, Any, NamedTuple

from consent_ledger.model.plain import NoticeRef

if TYPE_CHECKING:
    from collections.abc import Iterable

EVERY = "*"
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


class EffectKind(StrEnum):
    """What an event does to the consent it covers."""

    GRANT = "grant"
    GRANT_PENDING = "grant-pending"
    CONFIRM = "confirm"
    WITHDRAW = "withdraw"
    MARKETING_STOP = "marketing-stop"
    MARKETING_RESUME = "marketing-resume"


PLATFORM_KINDS = frozenset({EffectKind.MARKETING_STOP, EffectKind.MARKETING_RESUME})


class State(StrEnum):
    """The state of consent for one channel, category and sender."""

    GRANTED = "granted"
    PENDING = "pending"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Effect(NamedTuple):
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
            self.kind not in PLATFORM_KINDS
            and (self.channel is None or self.channel == channel)
            and (self.categories is None or category in self.categories)
            and (self.sender is None or self.sender == sender)
        )

    def rows(self) -> Iterable[tuple[str, str, str | None]]:
        """The (channel, category, sender) rows this effect shows up in."""
        if self.kind in PLATFORM_KINDS:
            return
        channel = self.channel or EVERY
        for category in self.categories or (EVERY,):
            yield channel, category, self.sender

    def to_json(self) -> list[Any]:
        """A compact, positional form orjson writes as it is, for views that keep effects."""
        notice = self.notice
        return [
            self.kind.value,
            self.channel,
            self.categories,
            self.sender,
            self.occurred_at,
            self.recorded_at,
            self.version,
            self.event_type,
            self.expires_at,
            None
            if notice is None
            else [
                notice.notice_id,
                notice.version,
                notice.content_hash,
                notice.business_name,
                notice.language,
            ],
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Effect:
        """The effect of :meth:`to_json`'s output."""
        (
            kind,
            channel,
            categories,
            sender,
            occurred,
            recorded,
            version,
            event_type,
            expires,
            notice,
        ) = data
        return cls(
            kind=EffectKind(kind),
            channel=channel,
            categories=None if categories is None else tuple(categories),
            sender=sender,
            occurred_at=datetime.fromisoformat(occurred),
            recorded_at=datetime.fromisoformat(recorded),
            version=version,
            event_type=event_type,
            expires_at=None if expires is None else datetime.fromisoformat(expires),
            notice=None if notice is None else NoticeRef(*notice),
        )


class ConsentState(NamedTuple):
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


class PlatformState(NamedTuple):
    """Whether the person stopped marketing from a sender on the platform (WhatsApp).

    ``sender`` is ``None`` when the stop covered every sender of the business.
    """

    sender: str | None
    stopped: bool
    since: datetime
    event_version: int
    event_type: str


def visible(effects: Iterable[Effect], at: datetime, known_at: datetime) -> list[Effect]:
    """The effects that count at ``at`` as known at ``known_at``, in the order they occurred."""
    seen = [e for e in effects if e.occurred_at <= at and e.recorded_at <= known_at]
    seen.sort(key=lambda e: (e.occurred_at, e.version))
    return seen


def expire(state: ConsentState | None, at: datetime) -> ConsentState | None:
    """The state at ``at``: a grant (or a pending one) whose expiry has passed reads expired."""
    if (
        state is not None
        and state.state in _EXPIRING
        and state.expires_at is not None
        and state.expires_at <= at
    ):
        return state._replace(state=State.EXPIRED, since=state.expires_at)
    return state


_EXPIRING = frozenset({State.GRANTED, State.PENDING})


def base_state(
    effects: list[Effect], channel: str, category: str, sender: str | None
) -> ConsentState | None:
    """What ``effects`` (visible, in order) say of one channel/category/sender, before expiry.

    Returns None if no effect ever reached it.
    """
    key = _KeyFold()
    for effect in effects:
        if effect.applies_to(channel, category, sender):
            key.apply(effect, channel, category, sender)
    return key.state


def evaluate(
    effects: list[Effect], channel: str, category: str, sender: str | None, at: datetime
) -> ConsentState | None:
    """The consent for one channel/category/sender at ``at`` (effects visible, in order)."""
    return expire(base_state(effects, channel, category, sender), at)


class _KeyFold:
    """The fold of one channel/category/sender: its state, and the opt-in awaiting confirmation.

    A confirmation grants the pending opt-in it confirms, from the moment it occurs, with
    that opt-in's notice and expiry, where the key still waits for it, and also where a
    narrower grant that came between (one naming this sender) has lapsed by then. It
    never revives a withdrawal, nor a pending opt-in past its expiry.
    """

    __slots__ = ("pending", "state")

    def __init__(self) -> None:
        self.state: ConsentState | None = None
        self.pending: Effect | None = None

    def apply(self, effect: Effect, channel: str, category: str, sender: str | None) -> None:
        if effect.kind is EffectKind.CONFIRM:
            self._confirm(effect)
            return
        self.state = _state(effect, channel, category, sender)
        if effect.kind is EffectKind.GRANT_PENDING:
            self.pending = effect
        elif effect.kind is EffectKind.WITHDRAW:
            self.pending = None

    def _confirm(self, effect: Effect) -> None:
        state, pending, at = self.state, self.pending, effect.occurred_at
        if pending is None or state is None or _lapsed(pending.expires_at, at):
            return  # nothing awaits confirmation (or it expired): a stray one grants nothing
        waiting = state.state is State.PENDING
        if not waiting and not (state.state is State.GRANTED and _lapsed(state.expires_at, at)):
            return
        self.state = state._replace(
            state=State.GRANTED,
            since=at,
            expires_at=pending.expires_at,
            notice=pending.notice,
            event_version=effect.version,
            event_type=effect.event_type,
        )
        self.pending = None


def _lapsed(expires_at: datetime | None, at: datetime) -> bool:
    return expires_at is not None and expires_at <= at


def _state(effect: Effect, channel: str, category: str, sender: str | None) -> ConsentState:
    new_state = _STATE_AFTER[effect.kind]
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


_STATE_AFTER = {
    EffectKind.GRANT: State.GRANTED,
    EffectKind.GRANT_PENDING: State.PENDING,
    EffectKind.WITHDRAW: State.WITHDRAWN,
}


def base_states(effects: list[Effect]) -> list[ConsentState]:
    """Every channel/category/sender the effects (visible, in order) touched, before expiry."""
    keys = sorted({key for effect in effects for key in effect.rows()}, key=_key_order)
    states = (base_state(effects, *key) for key in keys)
    return [s for s in states if s is not None]


def answer_states(effects: list[Effect]) -> list[ConsentState]:
    """The base states a view must keep to answer any channel/category/sender exactly.

    Every combination of the channels, categories and senders the effects name, plus
    ``"*"`` for "any other channel/category" and None for "any other sender": the state of
    a key no effect names equals that of its ``"*"``/None stand-in, because only effects
    for every channel, category or sender reach it. Keys no effect reaches are left out.

    To answer for a key, take the kept state, among the key and its stand-ins (channel or
    ``"*"``, category or ``"*"``, sender or None), that names most parts: a stand-in reaches
    a subset of what the key reaches, so the kept ones form a chain and the most specific
    one is exact.
    """
    consent = [e for e in effects if e.kind not in PLATFORM_KINDS]
    channels: set[str] = {EVERY}
    categories: set[str] = {EVERY}
    senders: set[str | None] = {None}
    for effect in consent:
        if effect.channel is not None:
            channels.add(effect.channel)
        categories.update(effect.categories or ())
        senders.add(effect.sender)
    # One pass over the effects, each applied to exactly the keys it reaches (what
    # Effect.applies_to says, enumerated): the same fold as base_state for every key.
    folds: dict[tuple[str, str, str | None], _KeyFold] = {}
    for effect in consent:
        reached = product(
            channels if effect.channel is None else (effect.channel,),
            categories if effect.categories is None else effect.categories,
            senders if effect.sender is None else (effect.sender,),
        )
        for key in reached:
            folds.setdefault(key, _KeyFold()).apply(effect, *key)
    return [s for key in sorted(folds, key=_key_order) if (s := folds[key].state) is not None]


def fold(effects: Iterable[Effect], at: datetime, known_at: datetime) -> list[ConsentState]:
    """Every channel/category/sender a person's events touched, with its state at ``at``."""
    states = (expire(s, at) for s in base_states(visible(effects, at, known_at)))
    return [s for s in states if s is not None]


class Overridden(NamedTuple):
    """A withdrawal of every category (or channel) that later grants override, row by row."""

    withdrawal: ConsentState
    later: list[ConsentState]


def overridden_withdrawals(states: Iterable[ConsentState]) -> list[Overridden]:
    """Each ``*`` withdrawal with the later grants (or pending ones) that stand beside it.

    Events apply in the order they occurred: a withdrawal of every category withdraws
    what was granted before it, and a grant that occurred after it stands. The status
    shows both rows; this says which one wins for which category.
    """
    states = list(states)
    found = []
    for withdrawal in states:
        if withdrawal.state is not State.WITHDRAWN or EVERY not in (
            withdrawal.channel,
            withdrawal.category,
        ):
            continue
        later = [
            state
            for state in states
            if state.state in {State.GRANTED, State.PENDING, State.EXPIRED}
            and _within(state, withdrawal)
            and (state.since, state.event_version) > (withdrawal.since, withdrawal.event_version)
        ]
        if later:
            found.append(Overridden(withdrawal, later))
    return found


def _within(state: ConsentState, withdrawal: ConsentState) -> bool:
    """Whether ``withdrawal``'s scope reached the key of ``state``."""
    return (
        withdrawal.channel in {EVERY, state.channel}
        and withdrawal.category in {EVERY, state.category}
        and (withdrawal.sender is None or withdrawal.sender == state.sender)
    )


def platform_states(effects: list[Effect]) -> list[PlatformState]:
    """The latest marketing stop or resume per sender, from effects visible and in order."""
    latest: dict[str | None, PlatformState] = {}
    for effect in effects:
        if effect.kind in PLATFORM_KINDS:
            latest[effect.sender] = PlatformState(
                sender=effect.sender,
                stopped=effect.kind is EffectKind.MARKETING_STOP,
                since=effect.occurred_at,
                event_version=effect.version,
                event_type=effect.event_type,
            )
    return sorted(latest.values(), key=lambda s: s.sender or "")


def marketing_stop(states: Iterable[PlatformState], sender: str | None) -> PlatformState | None:
    """The stop that bars marketing from ``sender``, if any.

    A stop for every sender bars all of them unless a later resume for ``sender`` lifted it.
    With no sender named, any standing stop counts: the check cannot know who will send.
    """
    standing = [s for s in states if s.sender is None or sender is None or s.sender == sender]
    standing.sort(key=lambda s: (s.since, s.event_version))
    if sender is not None:
        latest = standing[-1] if standing else None
        return latest if latest is not None and latest.stopped else None
    stopped = [s for s in standing if s.stopped]
    return stopped[-1] if stopped else None


def _key_order(key: tuple[str, str, str | None]) -> tuple[str, str, str]:
    channel, category, sender = key
    return channel, category, sender or ""
