"""Sends: what a message sent to a person carries, and what limits count of past sends.

A send is recorded in the person's consent record (``ConsentRecord.MessageSent``), in the
same log as their consent: it is the evidence of one use of that consent. Frequency limits
count the sends before a new one; quiet hours ask the recipient's local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from datetime import datetime

    from consent_ledger.model.taxonomy import Channel, TemplateCategory


class SentMessage(NamedTuple):
    """A send as limits count it: when, of what category and template category, by whom."""

    sent_at: datetime
    category: str
    template_category: TemplateCategory
    sender: str | None
    channel: Channel


@dataclass(frozen=True, slots=True)
class SendFacts:
    """What a recorded send says: the message (by keyed hash), what it was, and its decision."""

    message: str
    channel: Channel
    category: str
    sender: str | None
    template_name: str | None
    template_language: str | None
    template_category: TemplateCategory
    policy: str
    allowed: bool
    reason: str
    rests_on: int | None

    def fields(self) -> dict[str, Any]:
        """The event's fields."""
        return {name: getattr(self, name) for name in self.__slots__}
