"""What WhatsApp ingestion needs of a ledger: a protocol, so that it never imports the front."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from consent_ledger.application.catalogue import BusinessInfo
    from consent_ledger.application.recording import Recorded
    from consent_ledger.model.commands import (
        Evidence,
        OptIn,
        OptOut,
        RecordPlatformPreference,
        RecordSignal,
    )
    from consent_ledger.model.history import SubjectHistory, SubjectStatus
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.taxonomy import Category, TemplateCategory
    from consent_ledger.model.values import Provenance


class Ledger(Protocol):
    """What ingestion needs of a ledger (:class:`consent_ledger.ConsentLedger` is one)."""

    def record_once(
        self, command: OptIn | OptOut | RecordPlatformPreference | RecordSignal, *, signal: str
    ) -> Recorded | None:
        """Record a command for a signal, at most once; None if the signal was seen."""

    def note_once(self, signal: str) -> bool:
        """Remember a signal that records nothing; False if it was seen."""

    def get_business(self, business_id: str) -> BusinessInfo:
        """The business, or BusinessNotFoundError."""

    def list_categories(self, business_id: str) -> list[Category]:
        """The business's categories: the built-in ones and its own, retired ones too."""

    def link_identifiers(
        self,
        business_id: str,
        identifiers: Sequence[Identifier],
        *,
        provenance: Provenance,
        evidence: Evidence | None = None,
    ) -> list[Identifier]:
        """Link identifiers to the one person some of them find; the ones linked now."""

    def find_subject(self, identifier: Identifier | str, *, business_id: str) -> UUID | None:
        """The subject an identifier finds, if any."""

    def get_history(self, identifier: Identifier | str, *, business_id: str) -> SubjectHistory:
        """A person's events, personal data opened."""

    def get_status(self, identifier: Identifier | str, *, business_id: str) -> SubjectStatus:
        """A person's consent now."""

    def set_template_category(  # noqa: PLR0913 (as the catalogue takes it)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        effective_at: datetime | None = None,
        source: str = "operator",
        previous: TemplateCategory | str | None = None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record a template's category from a moment on; False for a signal seen."""

    def announce_template_category(  # noqa: PLR0913 (as the catalogue takes it)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        previous: TemplateCategory | str | None,
        effective_at: datetime | None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record an announced change of category; False for a signal seen."""
