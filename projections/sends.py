"""The sends a consent-status view keeps of each person: what frequency limits count.

Each person's row keeps their sends of the last 31 days (the longest window a limit may
count), as JSON, relative to their latest send, so that a view rebuilt from the log keeps
exactly what one caught up as the sends came.
"""

from __future__ import annotations

from typing import Any

import orjson
from consent_ledger.projections.views import parse_timestamp

from consent_ledger.model.plain import utc_text
from consent_ledger.model.sends import SentMessage
from consent_ledger.model.taxonomy import Channel, TemplateCategory
from consent_ledger.sending.limits import MAX_WINDOW


def sent_json(event: Any) -> list[Any]:
    """A send as the view keeps it: when, category, template category, sender, channel."""
    return [
        utc_text(event.provenance.occurred_at),
        event.category,
        str(event.template_category),
        event.sender,
        str(event.channel),
    ]


def send_window(sends: list[list[Any]]) -> list[list[Any]]:
    """The sends a limit may count: those within 31 days of the latest, oldest first.

    Relative to the latest send, not to the clock, so a view rebuilt from the log keeps
    the same rows as one caught up as the sends came.
    """
    if not sends:
        return []
    ordered = sorted(sends, key=lambda s: s[0])
    since = utc_text(parse_timestamp(ordered[-1][0]) - MAX_WINDOW)
    return [s for s in ordered if s[0] > since]


def decode_sends(text: str) -> list[SentMessage]:
    """The sends a view's row keeps, as limits count them."""
    return [
        SentMessage(
            sent_at=parse_timestamp(sent_at),
            category=category,
            template_category=_TEMPLATE_CATEGORIES[template_category],
            sender=sender,
            channel=_CHANNELS[channel],
        )
        for sent_at, category, template_category, sender, channel in orjson.loads(text)
    ]


# Lookups instead of the enum constructors: a check decodes a person's sends each time.
_TEMPLATE_CATEGORIES = {t.value: t for t in TemplateCategory}
_CHANNELS = {c.value: c for c in Channel}


def no_sends() -> list[SentMessage]:
    """The sends of someone the view does not know: none."""
    return []
