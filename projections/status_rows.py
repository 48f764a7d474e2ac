"""The rows of the consent-status view: built from a person's states, read back into them."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from consent_ledger.projections.views import parse_timestamp

from consent_ledger.model.plain import NoticeRef, utc_text
from consent_ledger.model.status import EVERY, ConsentState, PlatformState, State

if TYPE_CHECKING:
    from collections.abc import Sequence

ANY_SENDER = ""  # how a row for every sender is keyed (NULL cannot be part of a key)


def answer_of(
    rows: Sequence[Sequence[Any]], key: tuple[str, str, str | None]
) -> ConsentState | None:
    """Of a person's status rows, the one that answers for ``key``, as the answer for it.

    Rows for the key and its stand-ins ('*' channel or category, every sender) form a
    chain: the one naming most parts is exact (see status.answer_states).
    """
    channel, category, sender = key
    senders = (sender or ANY_SENDER, ANY_SENDER)
    best, best_rank = None, -1
    for row in rows:
        if row[1] in (channel, EVERY) and row[2] in (category, EVERY) and row[3] in senders:
            rank = (row[1] != EVERY) + (row[2] != EVERY) + (row[3] != ANY_SENDER)
            if rank > best_rank:
                best, best_rank = row, rank
    return None if best is None else state_of(best, key)


def status_row(subject: str, business_id: str, state: ConsentState) -> tuple[Any, ...]:
    """A state as the view's status row keeps it."""
    notice = state.notice
    return (
        subject,
        str(state.channel),
        state.category,
        state.sender or ANY_SENDER,
        business_id,
        str(state.state),
        utc_text(state.since),
        utc_text(state.expires_at) if state.expires_at else None,
        notice.notice_id if notice else None,
        notice.version if notice else None,
        notice.content_hash if notice else None,
        notice.business_name if notice else None,
        notice.language if notice else None,
        state.event_version,
        state.event_type,
    )


@functools.lru_cache(maxsize=1024)
def notice_ref(
    notice_id: str, version: int, content_hash: str, business_name: str, language: str
) -> NoticeRef:
    """One shared object per notice version (a ledger has few): rows need not rebuild it."""
    return NoticeRef(
        notice_id=notice_id,
        version=version,
        content_hash=content_hash,
        business_name=business_name,
        language=language,
    )


def state_of(row: Sequence[Any], key: tuple[str, str, str | None] | None = None) -> ConsentState:
    """The state a row holds; with ``key``, as the answer for that key (a stand-in's row)."""
    (
        _,
        channel,
        category,
        sender,
        _,
        state,
        since,
        expires_at,
        notice_id,
        notice_version,
        notice_hash,
        business_name,
        language,
        event_version,
        event_type,
    ) = row
    notice = None
    if notice_id is not None:
        notice = notice_ref(notice_id, notice_version, notice_hash, business_name, language)
    if key is not None:
        channel, category, sender = key
    return ConsentState(
        channel=channel,
        category=category,
        sender=sender or None,
        state=State(state),
        since=parse_timestamp(since),
        expires_at=parse_timestamp(expires_at) if expires_at else None,
        notice=notice,
        event_version=event_version,
        event_type=event_type,
    )


def platform_row(subject: str, state: PlatformState) -> tuple[Any, ...]:
    """A marketing stop or resume as the view's platform row keeps it."""
    return (
        subject,
        state.sender or ANY_SENDER,
        int(state.stopped),
        utc_text(state.since),
        state.event_version,
        state.event_type,
    )


def platform_of(row: Sequence[Any]) -> PlatformState:
    """The stop or resume a platform row keeps."""
    _, sender, stopped, since, event_version, event_type = row
    return PlatformState(
        sender=sender or None,
        stopped=bool(stopped),
        since=parse_timestamp(since),
        event_version=event_version,
        event_type=event_type,
    )
