"""Values that need no pydantic: times as the ledger writes them, the notice a person saw.

Kept apart from :mod:`.values` (which re-exports them) so that reading consent, a
send-time check above all, loads no pydantic: importing pydantic's models costs about as
much as starting Python, click and eventsourcing together. Events still validate these
values: pydantic checks a dataclass field as it checks a model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar


def utc_seconds(moment: datetime) -> str:
    """A moment as messages write it: UTC, to the second (``2026-11-24T10:30:00Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_text(moment: datetime) -> str:
    """A time as the ledger writes it as text: UTC ISO 8601 with microseconds and ``Z``.

    Fixed width, so text order is time order: views store and compare times in this form,
    and JSON and CSV output use it.
    """
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@dataclass(frozen=True, slots=True)
class NoticeRef:
    """The exact notice version a person saw: what they were told, by whom, in which language."""

    # What Immutable says for models: an event whose notice has an unknown key is refused.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    notice_id: str
    version: int
    content_hash: str
    business_name: str
    language: str

    def __str__(self) -> str:
        """The notice as commands name it: ``ID@VERSION``."""
        return f"{self.notice_id}@{self.version}"
