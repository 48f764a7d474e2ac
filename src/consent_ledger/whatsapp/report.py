"""What ingesting webhooks reports: each item's outcome, and the counts of a batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consent_ledger.application.recording import Recorded


@dataclass(frozen=True)
class Outcome:
    """What one item of a webhook body did."""

    path: str
    signal: str | None
    """What the item was (``inbound-message``, ...); None for an ignored part."""
    action: str
    """``opted-out``, ``re-granted``, ``marketing-stopped``, ``marketing-resumed``,
    ``superseded`` (an opt-out recorded, but an opt-in that occurred after it stands),
    ``identity-changed``, ``template-category-changed``, ``template-category-announced``,
    ``noted`` (seen, nothing to change), ``for-review``, ``refused``, ``duplicate``, or
    ``ignored`` (a part of the body that carries no consent signal: nothing kept)."""
    detail: str
    recorded: Recorded | None = None

    @property
    def changed_consent(self) -> bool:
        """Whether consent changed now: an event was recorded that decides something.

        Not a noted signal, nor an opt-out that a later opt-in overrides.
        """
        return (
            self.recorded is not None
            and self.recorded.event_type != "SignalReceived"
            and self.action != "superseded"
        )


@dataclass
class IngestReport:
    """What a batch of webhook bodies did: accepted items, duplicates, rejected ones."""

    outcomes: list[Outcome] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """Each unreadable body or item, with where it is (``line 3: entry[0]...: ...``)."""

    @property
    def accepted(self) -> int:
        """Items taken now (recorded, noted or put up for review)."""
        return sum(1 for outcome in self.outcomes if outcome.action not in _NOT_TAKEN)

    @property
    def duplicates(self) -> int:
        """Items taken before: nothing was done with them again."""
        return sum(1 for outcome in self.outcomes if outcome.action == "duplicate")

    @property
    def ignored(self) -> int:
        """Parts of bodies that carry no consent signal (template status, quality, ...)."""
        return sum(1 for outcome in self.outcomes if outcome.action == "ignored")

    @property
    def changes(self) -> int:
        """Items that changed consent (a noted signal is kept as evidence, not counted)."""
        return sum(1 for outcome in self.outcomes if outcome.changed_consent)

    def summary(self) -> str:
        """``accepted 5 (2 consent changes), duplicates 1, ignored 0, rejected 0``."""
        return (
            f"accepted {self.accepted} ({self.changes} consent changes), "
            f"duplicates {self.duplicates}, ignored {self.ignored}, rejected {len(self.rejected)}"
        )


_NOT_TAKEN = frozenset({"duplicate", "ignored"})
